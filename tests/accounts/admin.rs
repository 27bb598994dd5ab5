//! Admin bootstrap, `jukebox admin grant|revoke`, `/admin/*` for admins only, and
//! disabling a user.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::support::eventually;

async fn roles(app: &crate::support::TestApp, access: &str) -> Value {
    let response = me(app, access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["roles"].clone()
}

#[tokio::test]
async fn the_bootstrap_address_becomes_admin_once_verified_and_admins_can_disable_users() {
    let app = app(&[("ADMIN_BOOTSTRAP_EMAIL", "boss@example.com")]).await;
    let (first_tab, boss_tab) = (browser(), browser());
    // Being first makes nobody an admin.
    let first = signed_in(&app, &first_tab, "first@example.com").await;
    let first_id = {
        let body: Value = me(&app, &first).await.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    };
    assert_eq!(roles(&app, &first).await, serde_json::json!([]));
    let refused = reqwest::Client::new()
        .get(app.api("/admin/users"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // The bootstrap address is not admin before verification ...
    let body = sign_up(&app, &boss_tab, "boss@example.com").await;
    let signed = sign_in(&app, &boss_tab, "boss@example.com", PASSWORD).await;
    let boss = access_token(signed).await;
    app.projections_caught_up().await;
    assert_eq!(roles(&app, &boss).await, serde_json::json!([]));
    // ... and is once verified (an event: RoleGranted).
    let token = body["verification_token"].as_str().unwrap();
    assert_eq!(
        verify(&app, &boss_tab, token).await.status(),
        StatusCode::OK
    );
    eventually("boss is admin", || async {
        roles(&app, &boss).await == serde_json::json!(["admin"])
    })
    .await;
    let users: Value = reqwest::Client::new()
        .get(app.api("/admin/users"))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"].as_array().unwrap().len(), 2);

    // Disabling a user ends their sessions and refuses their sign-in.
    let disabled = reqwest::Client::new()
        .post(app.api(&format!("/admin/users/{first_id}/disable")))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    eventually("the disabled user's access token stops working", || async {
        me(&app, &first).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    let again = sign_in(&app, &first_tab, "first@example.com", PASSWORD).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(again).await, "account_disabled");
    let refreshed = refresh(&app, &first_tab).await;
    assert!(refreshed.status().is_client_error());
    let revoked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'SessionRevoked'
         AND payload->'SessionRevoked'->>'reason' = 'user_disabled'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(revoked, 1);

    // A non-admin cannot disable anyone.
    let tab = browser();
    let other = signed_in(&app, &tab, "other@example.com").await;
    let forbidden = reqwest::Client::new()
        .post(app.api(&format!("/admin/users/{first_id}/enable")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    // The operator's CLI grants and revokes the role.
    let message = jukebox::ops::set_admin(&app.config, "Other@example.com", true)
        .await
        .unwrap();
    assert!(message.contains("is now an admin"), "{message}");
    eventually("other is admin", || async {
        roles(&app, &other).await == serde_json::json!(["admin"])
    })
    .await;
    jukebox::ops::set_admin(&app.config, "other@example.com", false)
        .await
        .unwrap();
    eventually("other is no longer admin", || async {
        roles(&app, &other).await == serde_json::json!([])
    })
    .await;
    let missing = jukebox::ops::set_admin(&app.config, "nobody@example.com", true).await;
    assert!(missing.unwrap_err().to_string().contains("no account"));
    app.cleanup().await;
}
