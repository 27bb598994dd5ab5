//! Nothing that names a person or that they typed travels on `EVENTS` in plain text
//! (issue 21, ADR 34 and 43): after a sign-up, a second sign-up with the same address, a
//! Google sign-in, a playlist and an app credential, no message a stock NATS consumer
//! reads (subject or body) holds the address, the Google subject, the playlist's name or
//! description or the credential's name, nor does the log; while the API, the read
//! models and the mail to the owner still show each of them.

use futures::StreamExt;
use jukebox_test_support::POSITION;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::google::{google_app, google_flow, me_after_google, start_provider, Identity, Twist};
use crate::helpers::*;
use crate::manage::mail;
use crate::support::smtp::smtp_server;
use crate::support::{eventually, TestApp};

const LEE: &str = "lee.sealed@example.com";
const SUBJECT: &str = "google-subject-73419";
const GWEN: &str = "gwen.sealed@example.com";
const NAME: &str = "Lee's secret mixtape";
const DESCRIPTION: &str = "songs for the night bus";
const DEVICE: &str = "Kitchen radio of Lee";

/// Every message on `EVENTS`, as its subject and body, read with an ordered consumer.
async fn stream_messages(app: &TestApp) -> Vec<String> {
    let stream = app.services.topology.namespace.events_stream();
    let stream = app.js().get_stream(stream).await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let pending = consumer.cached_info().num_pending as usize;
    let mut messages = consumer.messages().await.unwrap().take(pending);
    let mut all = Vec::new();
    while let Some(Ok(message)) = messages.next().await {
        all.push(format!(
            "{} {}",
            message.subject,
            String::from_utf8_lossy(&message.payload)
        ));
    }
    all
}

async fn authed(
    app: &TestApp,
    access: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.http.request(method, app.api(path)).bearer_auth(access);
    if let Some(position) = app.try_latest() {
        request = request.header(POSITION, position);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    app.saw(&response);
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn no_published_message_names_the_person_or_what_they_typed() {
    let (base, provider) = start_provider().await;
    let (smtp_url, messages) = smtp_server();
    let app = google_app(
        &base,
        &[
            ("SMTP_URL", smtp_url.as_str()),
            ("MAIL_FROM", "Jukebox <jukebox@mail.test>"),
            ("PUBLIC_BASE_URL", "http://jukebox.test"),
            ("EMAIL_VERIFY_REQUIRED", "1"),
            ("EXPOSE_VERIFICATION_TOKEN", "1"),
        ],
    )
    .await;
    let tab = browser();
    let signed_up = sign_up(&app, &tab, LEE).await;
    let token = signed_up["verification_token"].as_str().unwrap();
    assert_eq!(verify(&app, &tab, token).await.status(), StatusCode::OK);
    let access = access_token(sign_in(&app, &tab, LEE, PASSWORD).await).await;

    // The address again: refused quietly, and its owner is told by mail, to the address
    // the attempt carries sealed (the claim's id is only a keyed hash of it).
    let again = post(
        &browser(),
        app.api("/auth/signup"),
        json!({ "email": LEE, "password": "another passphrase" }),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    let notice = mail(&messages, LEE, "Someone tried to sign up", 0).await;
    assert!(notice.data.contains("already has one"), "{}", notice.data);

    // A Google account: linked by its subject, which the identity's id no longer shows.
    let gwen = Identity {
        sub: SUBJECT,
        email: GWEN,
        verified: true,
    };
    let google_tab = browser();
    let (response, _) = google_flow(&app, &provider, &google_tab, &gwen, Twist::default()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(me_after_google(&app, &google_tab).await["email"], GWEN);
    // A second sign-in finds the same account through the keyed id.
    let (again, _) = google_flow(&app, &provider, &browser(), &gwen, Twist::default()).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM access_users WHERE email = $1")
        .bind(GWEN)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(accounts, 1);

    // Typed text: a playlist and an app credential, shown back as typed.
    let (status, created) = authed(
        &app,
        &access,
        reqwest::Method::POST,
        "/playlists",
        Some(json!({ "name": NAME, "description": DESCRIPTION })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, credential) = authed(
        &app,
        &access,
        reqwest::Method::POST,
        "/me/app-credentials",
        Some(json!({ "name": DEVICE })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{credential}");
    let (_, playlist) = authed(
        &app,
        &access,
        reqwest::Method::GET,
        &format!("/playlists/{id}"),
        None,
    )
    .await;
    assert_eq!(playlist["name"], NAME, "{playlist}");
    assert_eq!(playlist["description"], DESCRIPTION, "{playlist}");
    let (_, listed) = authed(&app, &access, reqwest::Method::GET, "/playlists", None).await;
    assert_eq!(listed["playlists"][0]["name"], NAME, "{listed}");
    let (_, credentials) = authed(
        &app,
        &access,
        reqwest::Method::GET,
        "/me/app-credentials",
        None,
    )
    .await;
    assert_eq!(
        credentials["credentials"][0]["name"], DEVICE,
        "{credentials}"
    );

    // The whole log is on the stream, then read as any operator would.
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_type || ' ' || aggregate_id || ' ' || payload::text FROM events",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    eventually("the relay publishes the whole log", || async {
        stream_messages(&app).await.len() == logged.len()
    })
    .await;
    let published = stream_messages(&app).await;
    let log = logged.join("\n");
    for kind in [
        "SignUpAttempted",
        "IdentityLinked",
        "PlaylistCreated",
        "AppCredentialCreated",
    ] {
        assert!(log.contains(kind), "{kind} in the log");
        assert!(
            published.iter().any(|m| m.contains(kind)),
            "{kind} on EVENTS"
        );
    }
    for secret in [
        LEE,
        GWEN,
        SUBJECT,
        NAME,
        DESCRIPTION,
        DEVICE,
        "lee.sealed",
        "secret mixtape",
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
        for message in &published {
            assert!(!message.contains(secret), "{secret:?} on EVENTS: {message}");
        }
    }
    app.cleanup().await;
}
