//! Bad input on the account endpoints: 4xx with a clear JSON error, never a 500.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn bad_account_input_gets_a_clear_4xx() {
    let app = app(&[]).await;
    let tab = browser();
    let access = signed_in(&app, &tab, "alice@example.com").await;
    let raw = |path: &str, body: String| {
        tab.post(app.api(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let huge = format!(
        r#"{{"email": "a@b.co", "password": "{}"}}"#,
        "x".repeat(100_000)
    );
    let cases: Vec<(&str, reqwest::Response, StatusCode, &str)> = vec![
        (
            "malformed",
            raw("/auth/signin", "{nope".into()).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "huge",
            raw("/auth/signin", huge).await.unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "wrong type",
            raw("/auth/signin", r#"{"email": 1, "password": 2}"#.into())
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "unknown field",
            raw(
                "/auth/signin",
                r#"{"email": "a@b.co", "password": "x", "admin": true}"#.into(),
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "invalid email",
            raw(
                "/auth/signin",
                r#"{"email": "nope", "password": "long enough"}"#.into(),
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            "short password",
            raw(
                "/auth/signup",
                r#"{"email": "b@b.co", "password": "short"}"#.into(),
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_password",
        ),
        (
            "common password",
            raw(
                "/auth/signup",
                r#"{"email": "b@b.co", "password": "password123"}"#.into(),
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "common_password",
        ),
        (
            "garbage token",
            raw("/auth/verify-email", r#"{"token": "garbage"}"#.into())
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_token",
        ),
        (
            "forged token",
            raw(
                "/auth/verify-email",
                format!(
                    r#"{{"token": "{}.{}"}}"#,
                    uuid::Uuid::now_v7(),
                    "A".repeat(43)
                ),
            )
            .await
            .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_token",
        ),
        (
            "resend bad email",
            raw("/auth/resend-verification", r#"{"email": "@"}"#.into())
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            "garbage cookie",
            tab.post(app.api("/auth/refresh"))
                .header("cookie", "jukebox_refresh=abc")
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "no_session",
        ),
        (
            "forged cookie",
            tab.post(app.api("/auth/refresh"))
                .header(
                    "cookie",
                    format!(
                        "jukebox_refresh={}.{}.{}",
                        uuid::Uuid::new_v4(),
                        uuid::Uuid::now_v7(),
                        "A".repeat(43)
                    ),
                )
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_session",
        ),
        (
            "bad admin id",
            reqwest::Client::new()
                .post(app.api("/admin/users/not-a-uuid/disable"))
                .bearer_auth(&access)
                .send()
                .await
                .unwrap(),
            StatusCode::FORBIDDEN,
            "not_admin",
        ),
        (
            "no json",
            tab.post(app.api("/auth/signin"))
                .body("email=a")
                .send()
                .await
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (case, response, status, code) in cases {
        assert_eq!(response.status(), status, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{case}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{case}"
        );
    }
    // Unknown address and wrong password look the same.
    let unknown = sign_in(&app, &tab, "nobody@example.com", PASSWORD).await;
    let wrong = sign_in(&app, &tab, "alice@example.com", "not the password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.text().await.unwrap(), wrong.text().await.unwrap());
    // Resend answers alike whether or not the address has an account.
    for email in ["alice@example.com", "nobody@example.com"] {
        let response = raw(
            "/auth/resend-verification",
            format!(r#"{{"email": "{email}"}}"#),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    app.cleanup().await;
}
