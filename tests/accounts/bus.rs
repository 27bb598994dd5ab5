//! No credential material on the bus (issue 21, ADR 33): after a sign-up, a verification,
//! refreshes, a reused refresh token, a password reset, a password change and an address
//! change, no message on `EVENTS`, read with a stock NATS consumer, holds a PHC string or
//! any token hash the server stored, while the Postgres log holds every one of them.

use jukebox_domain::TokenHash;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::manage::{authed, mail, mail_app, NEW_PASSWORD};
use crate::support::smtp::link_after;
use crate::support::{eventually, raw_stream_payloads};

#[tokio::test]
async fn no_published_event_holds_a_password_hash_or_a_token_hash() {
    let (app, messages) = mail_app(&[("REFRESH_GRACE_MS", "0")]).await;
    let tab = browser();
    let mut tokens = Vec::new();

    let signed_up = sign_up(&app, &tab, "kim@example.com").await;
    let verification = signed_up["verification_token"].as_str().unwrap().to_owned();
    assert_eq!(
        verify(&app, &tab, &verification).await.status(),
        StatusCode::OK
    );
    tokens.push(verification);
    let signed_in = sign_in(&app, &tab, "kim@example.com", PASSWORD).await;
    let first = set_refresh_cookie(&signed_in).unwrap();
    let refreshed = refresh(&app, &tab).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let second = set_refresh_cookie(&refreshed).unwrap();
    // The first token again, past the (zero) grace window: a reuse, and the family ends.
    let reused = refresh_with(&app, &first).await;
    assert_eq!(error_code(reused).await, "refresh_token_reused");
    tokens.extend([first, second]);

    let forgot = post(
        &tab,
        app.api("/auth/forgot-password"),
        json!({ "email": "kim@example.com" }),
    )
    .await;
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    let reset_mail = mail(
        &messages,
        "kim@example.com",
        "Reset your Jukebox password",
        0,
    )
    .await;
    let reset = link_after(&reset_mail, "?reset=").expect("a reset link");
    let done = post(
        &tab,
        app.api("/auth/reset-password"),
        json!({ "token": reset, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    tokens.push(reset);

    let signed_in = sign_in(&app, &tab, "kim@example.com", NEW_PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    tokens.push(set_refresh_cookie(&signed_in).unwrap());
    let access = access_token(signed_in).await;
    let changed = authed(
        &tab,
        reqwest::Method::POST,
        app.api("/me/password"),
        &access,
        Some(json!({ "current_password": NEW_PASSWORD, "new_password": PASSWORD })),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    tokens.push(set_refresh_cookie(&changed).unwrap());
    let access = access_token(changed).await;
    let asked = authed(
        &tab,
        reqwest::Method::POST,
        app.api("/me/email"),
        &access,
        Some(json!({ "email": "kim@new.example.com", "password": PASSWORD })),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let link_mail = mail(
        &messages,
        "kim@new.example.com",
        "Confirm your new address",
        0,
    )
    .await;
    let confirm = link_after(&link_mail, "?confirm-email=").unwrap();
    let confirmed = post(
        &tab,
        app.api("/auth/confirm-email"),
        json!({ "token": confirm }),
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    tokens.push(confirm);

    // Every event of the log is on the stream before it is read.
    let logged: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM events")
        .fetch_all(app.pool())
        .await
        .unwrap();
    let stream = app.services.topology.namespace.events_stream();
    eventually("the relay publishes the whole log", || async {
        raw_stream_payloads(&app, &stream).await.len() == logged.len()
    })
    .await;
    let published = raw_stream_payloads(&app, &stream).await;
    let log = logged.join("\n");

    // The hashes, computed as the server does, are what the log holds...
    let hashes: Vec<String> = tokens
        .iter()
        .map(|token| TokenHash::of(token).as_str().to_owned())
        .collect();
    for hash in &hashes {
        assert!(log.contains(hash.as_str()), "the log holds {hash}");
    }
    assert_eq!(log.matches("$argon2").count(), 3, "sign-up, reset, change");
    // ... and no published message holds one, nor any PHC string.
    for message in &published {
        assert!(
            !message.contains("$argon2"),
            "a password hash on EVENTS: {message}"
        );
        for hash in &hashes {
            assert!(
                !message.contains(hash.as_str()),
                "a token hash on EVENTS: {message}"
            );
        }
    }
    // No payload names the person: addresses are sealed with their key (ADR 34).
    for message in &published {
        let record: Value = serde_json::from_str(message).unwrap();
        let payload = record["payload"].to_string();
        assert!(!payload.contains("kim@"), "an address on EVENTS: {payload}");
    }
    // The credential events are published all the same, without their credentials.
    let types: Vec<String> = published
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(m).unwrap()["event_type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for kind in [
        "UserSignedUp",
        "VerificationIssued",
        "SessionStarted",
        "SessionRefreshed",
        "RefreshTokenReused",
        "PasswordResetIssued",
        "PasswordReset",
        "PasswordChanged",
        "EmailChangeIssued",
    ] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
    // Read models fold the published events as before.
    app.projections_caught_up().await;
    let account: (String, bool) =
        sqlx::query_as("SELECT email, verified FROM accounts WHERE email = 'kim@new.example.com'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(account, ("kim@new.example.com".to_owned(), true));
    let sessions: (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE revoked_reason = 'refresh_token_reused')
         FROM auth_sessions",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(sessions, (3, 1));
    app.cleanup().await;
}
