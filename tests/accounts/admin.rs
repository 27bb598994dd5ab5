//! Admin bootstrap, `jukebox admin grant|revoke`, `/admin/*` for admins only, and
//! disabling a user.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::support::POSITION;

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
    let page = library(&app, &first).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page: Value = page.json().await.unwrap();
    assert_eq!(
        page,
        serde_json::json!({ "items": [], "next_cursor": null })
    );
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
    // Roles are read from the access state the processor commits with the events: no
    // wait, before or after.
    assert_eq!(roles(&app, &boss).await, serde_json::json!([]));
    // ... and is once verified (an event: RoleGranted).
    let token = body["verification_token"].as_str().unwrap();
    let verified = verify(&app, &boss_tab, token).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let after_verify = app.position_of(&verified);
    assert_eq!(roles(&app, &boss).await, serde_json::json!(["admin"]));
    let users: Value = reqwest::Client::new()
        .get(app.api("/admin/users"))
        .bearer_auth(&boss)
        .header(POSITION, &after_verify)
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
    assert_eq!(me(&app, &first).await.status(), StatusCode::UNAUTHORIZED);
    let page = library(&app, &first).await;
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(page).await, "account_disabled");
    let again = sign_in(&app, &first_tab, "first@example.com", PASSWORD).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(again).await, "account_disabled");
    let refreshed = refresh(&app, &first_tab).await;
    assert!(refreshed.status().is_client_error());
    // One event, however many sessions: `UserDisabled` bumps the session epoch.
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SessionRevoked'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(revoked, 0);

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
    assert_eq!(roles(&app, &other).await, serde_json::json!(["admin"]));
    jukebox::ops::set_admin(&app.config, "other@example.com", false)
        .await
        .unwrap();
    assert_eq!(roles(&app, &other).await, serde_json::json!([]));
    let missing = jukebox::ops::set_admin(&app.config, "nobody@example.com", true).await;
    assert!(missing.unwrap_err().to_string().contains("no account"));
    app.cleanup().await;
}

/// Issue 15: access decisions read the processor's write-side state, so with no projector
/// running at all an admin made a moment ago can act, and a revoked admin's next request
/// is refused. The processor itself refuses admin commands from an issuer who is not (or
/// no longer) an admin, whatever the edge believed.
#[tokio::test]
async fn a_revoked_admin_is_refused_at_once_with_every_projector_stopped() {
    use jukebox::app::Role;
    use jukebox_domain::{Command, Role as UserRole};
    use jukebox_nats::{CommandEnvelope, OutcomeStatus};

    let vars = [
        ("EXPOSE_VERIFICATION_TOKEN", "1".to_owned()),
        ("ADMIN_BOOTSTRAP_EMAIL", "boss@example.com".to_owned()),
    ];
    // No projector: the API, the processor, and the relay feeding the mail reactor, which
    // makes the verification tokens (ADR 15).
    let app = crate::support::spawn_app_with(
        &[Role::Api, Role::Processor, Role::Relay, Role::Reactor],
        &vars,
    )
    .await;
    let (boss_tab, deputy_tab, user_tab) = (browser(), browser(), browser());
    let boss = signed_in(&app, &boss_tab, "boss@example.com").await;
    let deputy = signed_in(&app, &deputy_tab, "deputy@example.com").await;
    let user = signed_in(&app, &user_tab, "user@example.com").await;
    let id = |access: String| {
        let app = &app;
        async move {
            let body: Value = me(app, &access).await.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let (deputy_id, user_id) = (id(deputy.clone()).await, id(user.clone()).await);
    assert_eq!(roles(&app, &boss).await, serde_json::json!(["admin"]));
    let admin_call = |method: reqwest::Method, path: String, access: &str| {
        reqwest::Client::new()
            .request(method, app.api(&path))
            .bearer_auth(access)
            .send()
    };

    // The boss makes the deputy an admin, who can act on the very next request.
    let granted = admin_call(
        reqwest::Method::POST,
        format!("/admin/users/{deputy_id}/admin"),
        &boss,
    )
    .await
    .unwrap();
    assert_eq!(granted.status(), StatusCode::OK);
    assert_eq!(roles(&app, &deputy).await, serde_json::json!(["admin"]));
    let disabled = admin_call(
        reqwest::Method::POST,
        format!("/admin/users/{user_id}/disable"),
        &deputy,
    )
    .await
    .unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(me(&app, &user).await.status(), StatusCode::UNAUTHORIZED);
    let enabled = admin_call(
        reqwest::Method::POST,
        format!("/admin/users/{user_id}/enable"),
        &deputy,
    )
    .await
    .unwrap();
    assert_eq!(enabled.status(), StatusCode::OK);
    // Enabling does not bring back the sessions the disable ended.
    assert_eq!(me(&app, &user).await.status(), StatusCode::UNAUTHORIZED);

    // The boss revokes the deputy: the deputy's next requests are refused.
    let revoked = admin_call(
        reqwest::Method::DELETE,
        format!("/admin/users/{deputy_id}/admin"),
        &boss,
    )
    .await
    .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    for (method, path) in [
        (
            reqwest::Method::POST,
            format!("/admin/users/{user_id}/disable"),
        ),
        (reqwest::Method::GET, "/admin/users".to_owned()),
    ] {
        let refused = admin_call(method, path, &deputy).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(error_code(refused).await, "not_admin");
    }

    // The processor decides against the issuer's current state: a command the revoked
    // deputy (or a plain user) issues straight onto the bus is refused too.
    let bus = app.bus().await;
    for issuer in [&deputy_id, &user_id] {
        let envelope = CommandEnvelope {
            command_id: uuid::Uuid::now_v7(),
            correlation_id: uuid::Uuid::now_v7(),
            issued_by: Some(issuer.parse().unwrap()),
            issued_at: time::OffsetDateTime::now_utc(),
            command: Command::GrantRole {
                user_id: issuer.parse().unwrap(),
                role: UserRole::Admin,
            },
        };
        let outcome = bus
            .send(&envelope, std::time::Duration::from_secs(10))
            .await
            .unwrap()
            .expect("answered");
        assert_eq!(outcome.status, OutcomeStatus::Rejected);
        assert_eq!(outcome.error.unwrap().code.as_str(), "not_admin");
    }
    assert_eq!(roles(&app, &deputy).await, serde_json::json!([]));

    // No read model was written all along.
    let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(projected, 0);
    app.cleanup().await;
}
