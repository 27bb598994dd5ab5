//! Issue 15: an `Idempotency-Key` is scoped to its caller (the user, or on anonymous
//! routes the client's nonce), its route and its request (SECURITY.md 26).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const NONCE_A: &str = "nonce-of-tab-a-0123456789";
const NONCE_B: &str = "nonce-of-tab-b-0123456789";

async fn keyed_sign_up(
    app: &crate::support::TestApp,
    nonce: Option<&str>,
    key: &str,
    email: &str,
) -> reqwest::Response {
    let mut request = browser()
        .post(app.api("/auth/signup"))
        .header("Idempotency-Key", key)
        .json(&json!({ "email": email, "password": PASSWORD }));
    if let Some(nonce) = nonce {
        request = request.header("X-Client-Nonce", nonce);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn two_anonymous_callers_with_one_key_get_two_accounts_and_a_replay_the_first_answer() {
    let app = app(&[]).await;
    let ann = keyed_sign_up(&app, Some(NONCE_A), "same-key", "ann@example.com").await;
    assert_eq!(ann.status(), StatusCode::CREATED);
    let ann: Value = ann.json().await.unwrap();
    let bob = keyed_sign_up(&app, Some(NONCE_B), "same-key", "bob@example.com").await;
    assert_eq!(bob.status(), StatusCode::CREATED);
    let bob: Value = bob.json().await.unwrap();
    // Two commands, two accounts, each answer about its own caller only.
    assert_ne!(ann["command_id"], bob["command_id"]);
    assert_ne!(ann["user_id"], bob["user_id"]);
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(bob["email"], "bob@example.com");
    for (body, email) in [(&ann, "ann@example.com"), (&bob, "bob@example.com")] {
        let token = body["verification_token"].as_str().expect("exposed token");
        assert_eq!(
            verify(&app, &browser(), token).await.status(),
            StatusCode::OK
        );
        let signed_in = sign_in(&app, &browser(), email, PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::OK, "{email}");
    }

    // The same caller, key and request again: the first answer, no second account.
    let replay = keyed_sign_up(&app, Some(NONCE_A), "same-key", "ann@example.com").await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(
        (&replay["user_id"], &replay["command_id"]),
        (&ann["user_id"], &ann["command_id"])
    );
    let accounts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserSignedUp'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(accounts, 2);

    // The same caller and key with another body: refused, nothing done.
    let other = keyed_sign_up(&app, Some(NONCE_A), "same-key", "carl@example.com").await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = other.json().await.unwrap();
    assert_eq!(error["error"]["code"], "idempotency_key_reused");
    // An anonymous key needs the nonce it is scoped to.
    let bare = keyed_sign_up(&app, None, "same-key", "dora@example.com").await;
    assert_eq!(bare.status(), StatusCode::BAD_REQUEST);
    let error: Value = bare.json().await.unwrap();
    assert_eq!(error["error"]["code"], "missing_client_nonce");
    app.cleanup().await;
}

#[tokio::test]
async fn one_user_reusing_a_key_for_another_request_gets_422() {
    let app = app(&[]).await;
    let tab = browser();
    let access = signed_in(&app, &tab, "kim@example.com").await;
    let remove = |song: &'static str| {
        reqwest::Client::new()
            .delete(app.api(&format!("/library/{song}")))
            .bearer_auth(&access)
            .header("Idempotency-Key", "k-1")
            .send()
    };
    let first = remove("yt:aaaaaaaaaaa").await.unwrap();
    assert_eq!(first.status(), StatusCode::NOT_FOUND, "not in the library");
    // Same key and user, same request: the first answer again.
    let again = remove("yt:aaaaaaaaaaa").await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    // Same key and user, another request: 422, never the first one's answer.
    let other = remove("yt:bbbbbbbbbbb").await.unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = other.json().await.unwrap();
    assert_eq!(error["error"]["code"], "idempotency_key_reused");
    app.cleanup().await;
}

#[tokio::test]
async fn credential_routes_never_answer_tokens_to_a_replayed_key() {
    let app = app(&[]).await;
    let tab = browser();
    let _ = signed_in(&app, &tab, "lou@example.com").await;
    let keyed_sign_in = || {
        browser()
            .post(app.api("/auth/signin"))
            .header("Idempotency-Key", "signin-1")
            .header("X-Client-Nonce", NONCE_A)
            .json(&json!({ "email": "lou@example.com", "password": PASSWORD }))
            .send()
    };
    let first = keyed_sign_in().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let first_access = access_token(first).await;
    assert_eq!(me(&app, &first_access).await.status(), StatusCode::OK);
    let replay = keyed_sign_in().await.unwrap();
    assert_eq!(replay.status(), StatusCode::CONFLICT);
    assert!(set_refresh_cookie(&replay).is_none(), "no refresh token");
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"]["code"], "replayed");
    assert!(body.get("access_token").is_none());

    // A refresh replayed with its key: refused before anything rotates, so the session
    // (refreshed by the first request) lives on.
    let keyed_refresh = || {
        tab.post(app.api("/auth/refresh"))
            .header("Idempotency-Key", "refresh-1")
            .header("X-Client-Nonce", NONCE_A)
            .send()
    };
    assert_eq!(keyed_refresh().await.unwrap().status(), StatusCode::OK);
    let replayed = keyed_refresh().await.unwrap();
    assert_eq!(replayed.status(), StatusCode::CONFLICT);
    assert_eq!(refresh(&app, &tab).await.status(), StatusCode::OK);
    app.cleanup().await;
}
