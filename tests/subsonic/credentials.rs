//! `/me/app-credentials`: create (the secret once), list (never the secret), revoke.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_of, import_app, ImportApp, Options};

pub async fn create(app: &ImportApp, token: &str, name: &str) -> Value {
    let response = app
        .app
        .http
        .post(app.app.api("/me/app-credentials"))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    app.app.saw(&response);
    response.json().await.unwrap()
}

pub async fn list(app: &ImportApp, token: &str) -> Value {
    let response = app
        .app
        .http
        .get(app.app.api("/me/app-credentials"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

pub async fn revoke(app: &ImportApp, token: &str, id: &str) -> reqwest::Response {
    let response = app
        .app
        .http
        .delete(app.app.api(&format!("/me/app-credentials/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    app.app.saw(&response);
    response
}

#[tokio::test]
async fn a_credential_is_shown_once_listed_without_its_secret_and_revoked() {
    let app = import_app(Options::default()).await;
    let token = app.user("ann@example.com").await;

    let created = create(&app, &token, "Phone").await;
    assert_eq!(created["name"], "Phone");
    assert_eq!(created["username"], "ann@example.com");
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 64, "{secret}");
    let id = created["id"].as_str().unwrap().to_owned();
    let laptop = create(&app, &token, "  Feishin on the laptop ").await;
    assert_eq!(laptop["name"], "Feishin on the laptop");
    assert_ne!(laptop["secret"], created["secret"]);

    let listed = list(&app, &token).await;
    let credentials = listed["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 2, "{listed}");
    assert_eq!(credentials[0]["id"], id.as_str());
    assert_eq!(credentials[0]["name"], "Phone");
    assert!(credentials[0]["created_at"].as_str().unwrap().len() >= 20);
    assert_eq!(credentials[0]["last_used_at"], Value::Null);
    assert_eq!(credentials[0]["last_client"], Value::Null);
    assert!(
        !listed.to_string().contains(secret),
        "the secret is never listed"
    );

    // Nothing in the log can be used as the secret.
    let log = app
        .history("app_credentials", &app.user_id(&token).await.to_string())
        .await;
    assert_eq!(log.len(), 2);
    assert!(!format!("{log:?}").contains(secret));

    let response = revoke(&app, &token, &id).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let listed = list(&app, &token).await;
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(listed["credentials"][0]["name"], "Feishin on the laptop");

    let (status, code, _) = error_of(revoke(&app, &token, &id).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "unknown_credential")
    );
    app.cleanup().await;
}

#[tokio::test]
async fn names_are_checked_and_nobody_revokes_anothers_credential() {
    let app = import_app(Options::default()).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    for name in [
        json!(""),
        json!("   "),
        json!("x".repeat(65)),
        json!("a\u{7}b"),
    ] {
        let response = app
            .app
            .http
            .post(app.app.api("/me/app-credentials"))
            .bearer_auth(&ann)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_credential_name"),
            "{name}"
        );
    }
    let response = app
        .app
        .http
        .post(app.app.api("/me/app-credentials"))
        .bearer_auth(&ann)
        .json(&json!({ "name": "Phone", "secret": "mine" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let anns = create(&app, &ann, "Phone").await;
    let id = anns["id"].as_str().unwrap();
    let (status, code, _) = error_of(revoke(&app, &bob, id).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "unknown_credential")
    );
    assert_eq!(
        list(&app, &ann).await["credentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(list(&app, &bob).await["credentials"], json!([]));
    let (status, code, _) = error_of(revoke(&app, &ann, "not-a-uuid").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_credential_id")
    );
    let response = app
        .app
        .http
        .get(app.app.api("/me/app-credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}
