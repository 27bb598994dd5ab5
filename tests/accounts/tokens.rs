//! Access-token attacks (SECURITY.md 6), refresh rotation and reuse (7), logout (8),
//! cross-site refusal (10).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::JWT_SECRET;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn forge(claims: &Value, algorithm: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn every_access_token_attack_gets_401() {
    let app = app(&[]).await;
    let tab = browser();
    let access = signed_in(&app, &tab, "alice@example.com").await;
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let with = |changes: Value| {
        let mut forged = claims.clone();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                forged.as_object_mut().unwrap().remove(key);
            } else {
                forged[key] = value.clone();
            }
        }
        forged
    };

    // Positive control: a token we forge with the right key and claims is accepted, so
    // every refusal below is about the one thing changed.
    let good = forge(&with(json!({ "iat": now() })), Algorithm::HS256);
    assert_eq!(me(&app, &good).await.status(), StatusCode::OK);
    assert_eq!(library(&app, &good).await.status(), StatusCode::OK);
    // Well signed, but nobody's: refused by the access check in the page's statement too.
    let nobody = forge(
        &with(json!({ "sub": uuid::Uuid::now_v7() })),
        Algorithm::HS256,
    );
    let page = library(&app, &nobody).await;
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(page).await, "invalid_token");

    let header_none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut tampered = access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let attacks: Vec<(&str, String)> = vec![
        ("alg none", format!("{header_none}.{body}.")),
        ("tampered signature", tampered),
        ("signature of another token", {
            let parts: Vec<&str> = access.split('.').collect();
            let other = forge(
                &with(json!({ "sub": uuid::Uuid::now_v7() })),
                Algorithm::HS256,
            );
            format!(
                "{}.{}.{}",
                parts[0],
                other.split('.').nth(1).unwrap(),
                parts[2]
            )
        }),
        (
            "expired",
            forge(&with(json!({ "exp": now() - 60 })), Algorithm::HS256),
        ),
        (
            "not yet valid",
            forge(&with(json!({ "nbf": now() + 3600 })), Algorithm::HS256),
        ),
        (
            "wrong audience",
            forge(&with(json!({ "aud": "someone-else" })), Algorithm::HS256),
        ),
        (
            "wrong issuer",
            forge(&with(json!({ "iss": "evil" })), Algorithm::HS256),
        ),
        (
            "not an access token",
            forge(&with(json!({ "typ": "refresh" })), Algorithm::HS256),
        ),
        (
            "exp as a string",
            forge(
                &with(json!({ "exp": (now() + 600).to_string() })),
                Algorithm::HS256,
            ),
        ),
        (
            "nbf as a string",
            forge(&with(json!({ "nbf": "0" })), Algorithm::HS256),
        ),
        (
            "missing exp",
            forge(&with(json!({ "exp": null })), Algorithm::HS256),
        ),
        (
            "missing nbf",
            forge(&with(json!({ "nbf": null })), Algorithm::HS256),
        ),
        (
            "missing aud",
            forge(&with(json!({ "aud": null })), Algorithm::HS256),
        ),
        ("HS512", forge(&claims, Algorithm::HS512)),
        ("garbage", "not.a.jwt".into()),
    ];
    for (attack, token) in attacks {
        let response = me(&app, &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{attack}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].is_string(), "{attack}: {body}");
    }
    let missing = reqwest::get(app.api("/auth/me")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_family() {
    // No grace window: the copy comes back at once (the window is tested in `manage`).
    let app = app(&[("REFRESH_GRACE_MS", "0")]).await;
    let tab = browser();
    sign_up(&app, &tab, "carol@example.com").await;
    let response = sign_in(&app, &tab, "carol@example.com", PASSWORD).await;
    let first = set_refresh_cookie(&response).unwrap();

    let rotated = refresh_with(&app, &first).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let second = set_refresh_cookie(&rotated).unwrap();
    let live_access = access_token(rotated).await;
    assert_eq!(me(&app, &live_access).await.status(), StatusCode::OK);

    // The first token comes back (a thief's copy): the family is revoked ...
    let reused = refresh_with(&app, &first).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(set_refresh_cookie(&reused).as_deref(), Some(""));
    assert_eq!(error_code(reused).await, "refresh_token_reused");
    // ... including the live token and its access token.
    let live = refresh_with(&app, &second).await;
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(live).await, "session_revoked");
    let page = library(&app, &live_access).await;
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(page).await, "session_revoked");
    assert_eq!(
        me(&app, &live_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // ... and the reuse is on record.
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'session' ORDER BY sequence",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        types,
        [
            "SessionStarted",
            "SessionRefreshed",
            "RefreshTokenReused",
            "SessionRevoked"
        ]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn logout_kills_refresh_and_cookie_endpoints_refuse_cross_site_calls() {
    let app = app(&[]).await;
    let tab = browser();
    sign_up(&app, &tab, "dave@example.com").await;
    let response = sign_in(&app, &tab, "dave@example.com", PASSWORD).await;
    let token = set_refresh_cookie(&response).unwrap();
    let cookie = format!("jukebox_refresh={token}");

    // Cross-site attempts are refused before anything happens.
    let plain = reqwest::Client::new();
    let cases = [
        (None, None),
        (Some("http://evil.test"), None),
        (Some(crate::support::ORIGIN), Some("cross-site")),
    ];
    for (origin, fetch_site) in cases {
        for path in ["/auth/refresh", "/auth/logout"] {
            let mut request = plain.post(app.api(path)).header("cookie", &cookie);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(site) = fetch_site {
                request = request.header("sec-fetch-site", site);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} {origin:?}"
            );
        }
    }
    // The session survived those; logout (same origin) ends it.
    let out = tab.post(app.api("/auth/logout")).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let after = refresh_with(&app, &token).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(after).await, "session_revoked");
    app.cleanup().await;
}

#[tokio::test]
async fn the_web_app_serves_the_same_flow_under_api_with_its_own_cookie_path() {
    let app = app(&[]).await;
    let tab = browser();
    let body = sign_up(&app, &tab, "erin@example.com").await;
    let token = body["verification_token"].as_str().unwrap();
    // The verification link lands on the web app's page, which posts the token.
    let page = tab
        .get(app.web(&format!("/?verify={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let verified = post(
        &tab,
        app.web("/api/auth/verify-email"),
        json!({ "token": token }),
    )
    .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let signed = post(
        &tab,
        app.web("/api/auth/signin"),
        json!({ "email": "erin@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(signed.status(), StatusCode::OK);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Path=/api/auth;"), "{cookie}");
    let refreshed = tab.post(app.web("/api/auth/refresh")).send().await.unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    let access = access_token(refreshed).await;
    let me = tab
        .get(app.web("/api/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    app.cleanup().await;
}
