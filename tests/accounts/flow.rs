//! The whole account flow over HTTP, as a browser does it, and what never leaves the edge.

use futures::StreamExt;
use jukebox_domain::{Command, Email, PasswordHash};
use jukebox_nats::{CommandEnvelope, OutcomeStatus};
use reqwest::header::SET_COOKIE;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;
use crate::support::raw_stream_payloads;

#[tokio::test]
async fn the_happy_path_works_like_a_browser_and_no_secret_leaves_the_edge() {
    let app = app(&[("EMAIL_VERIFY_REQUIRED", "1")]).await;
    let mut commands = app
        .services
        .nats
        .subscribe(app.services.topology.namespace.subject("cmd.>"))
        .await
        .unwrap();
    let tab = browser();
    let mut secrets = vec![PASSWORD.to_owned()];

    // Sign up: a verification token is issued (and exposed, in this test setup).
    let body = sign_up(&app, &tab, "Alice@Example.com").await;
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["verified"], false);
    let user_id = body["user_id"].as_str().unwrap().to_owned();
    let verification = body["verification_token"].as_str().unwrap().to_owned();
    secrets.push(verification.clone());

    // Unverified accounts cannot sign in while verification is required.
    let early = sign_in(&app, &tab, "alice@example.com", PASSWORD).await;
    assert_eq!(early.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(early).await, "email_not_verified");

    // Verification is single use.
    assert_eq!(
        verify(&app, &tab, &verification).await.status(),
        StatusCode::OK
    );
    let again = verify(&app, &tab, &verification).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(again).await, "invalid_token");

    // Sign in: access token in the body, refresh token in a narrow HttpOnly cookie.
    let response = sign_in(&app, &tab, "alice@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/auth;"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-http test setup: {cookie}"
    );
    let first_refresh = set_refresh_cookie(&response).unwrap();
    secrets.push(first_refresh.clone());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap().to_owned();
    secrets.push(access.clone());

    // Who am I.
    let me_response = me(&app, &access).await;
    assert_eq!(me_response.status(), StatusCode::OK);
    let who: Value = me_response.json().await.unwrap();
    assert_eq!(who["id"], user_id.as_str());
    assert_eq!(who["email"], "alice@example.com");
    assert_eq!(who["verified"], true);
    assert_eq!(who["roles"], serde_json::json!([]));

    // Refresh rotates the cookie and gives a new access token.
    let refreshed = refresh(&app, &tab).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let second_refresh = set_refresh_cookie(&refreshed).unwrap();
    assert_ne!(second_refresh, first_refresh);
    secrets.push(second_refresh);
    let access = access_token(refreshed).await;
    secrets.push(access.clone());
    assert_eq!(me(&app, &access).await.status(), StatusCode::OK);

    // Logout ends the session: the cookie is cleared and refresh no longer works.
    let out = tab.post(app.api("/auth/logout")).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let logged_out = app.position_of(&out);
    assert_eq!(set_refresh_cookie(&out).as_deref(), Some(""));
    let after = refresh(&app, &tab).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    // ... and the access token dies with its session, at once (session state is written
    // with the revocation).
    assert_eq!(me(&app, &access).await.status(), StatusCode::UNAUTHORIZED);

    // The audit trail tells the story.
    let types: Vec<String> = app
        .log_events()
        .await
        .into_iter()
        .filter(|e| e.aggregate_type != "email_claim")
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "UserSignedUp",
            "VerificationIssued",
            "EmailVerified",
            "SessionStarted",
            "SessionRefreshed",
            "SessionRevoked"
        ]
    );

    // No plain secret on COMMANDS, on EVENTS, or in the event log; hashes only. EVENTS
    // is read once the relay has published the logout, the last write.
    app.relayed(&logged_out).await;
    let mut everything = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), commands.next()).await
    {
        everything.push(String::from_utf8_lossy(&message.payload).into_owned());
    }
    assert!(everything.len() >= 7, "saw {} commands", everything.len());
    everything
        .extend(raw_stream_payloads(&app, &app.services.topology.namespace.events_stream()).await);
    let log: Vec<(String, String)> =
        sqlx::query_as("SELECT payload::text, metadata::text FROM events")
            .fetch_all(app.pool())
            .await
            .unwrap();
    everything.extend(log.into_iter().flat_map(|(p, m)| [p, m]));
    let outcomes: Vec<String> = sqlx::query_scalar("SELECT outcome::text FROM command_outcomes")
        .fetch_all(app.pool())
        .await
        .unwrap();
    everything.extend(outcomes);
    let text = everything.join("\n");
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a plain secret was found: {secret}"
        );
        // Nor the random part of a token alone.
        let tail = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(tail), "a token's secret part was found");
    }
    let verification_hash = jukebox_domain::TokenHash::of(&verification);
    assert!(
        text.contains(verification_hash.as_str()),
        "the hash is what is stored"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_address_make_one_account_and_look_alike() {
    let app = app(&[
        ("EMAIL_VERIFY_REQUIRED", "1"),
        ("RATE_LIMIT_PER_ACCOUNT", "100"),
    ])
    .await;
    let tab = browser();
    let attempts = futures::future::join_all((0..6).map(|_| {
        post(
            &tab,
            app.api("/auth/signup"),
            serde_json::json!({ "email": "bob@example.com", "password": PASSWORD }),
        )
    }))
    .await;
    // With verification required a taken address answers like a fresh sign-up.
    for response in attempts {
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserSignedUp'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(users, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn an_old_password_hash_is_replaced_at_the_next_sign_in() {
    let app = app(&[]).await;
    // An account whose hash was made with weaker parameters (m=4096, t=1).
    let weak = {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let params = argon2::Params::new(4096, 1, 1, None).unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string()
    };
    let user_id = Uuid::now_v7();
    let bus = app.bus().await;
    let envelope = CommandEnvelope {
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        issued_by: None,
        issued_at: time::OffsetDateTime::now_utc(),
        command: Command::SignUp {
            user_id,
            email: Email::parse("old@example.com").unwrap(),
            password_hash: PasswordHash::parse(&weak).unwrap(),
        },
    };
    let outcome = bus
        .send(&envelope, std::time::Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Committed);

    let tab = browser();
    let response = sign_in(&app, &tab, "old@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rehashed: String = sqlx::query_scalar(
        "SELECT payload->'PasswordRehashed'->>'password_hash' FROM events
         WHERE aggregate_id = $1 AND event_type = 'PasswordRehashed'",
    )
    .bind(user_id.to_string())
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(
        rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{rehashed}"
    );
    // The new hash still signs the same password in (sign-in reads the access state the
    // rehash was committed with), and is not replaced again.
    assert_eq!(
        sign_in(&app, &tab, "old@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let rehashes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PasswordRehashed'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(rehashes, 1);
    app.cleanup().await;
}
