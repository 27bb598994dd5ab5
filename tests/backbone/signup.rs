//! The first slice: `POST /auth/signup` -> command -> events -> EVENTS -> read model.

use futures::StreamExt;
use jukebox::app::Role;
use jukebox_projections::{AdminUsers, ReadModel};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{eventually, raw_stream_payloads, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn sign_up_travels_from_http_to_the_read_model() {
    let app = spawn_app(&[Role::All]).await;
    let mut commands = app
        .services
        .nats
        .subscribe(app.services.topology.namespace.subject("cmd.>"))
        .await
        .unwrap();

    let response = app.sign_up("Alice@Example.com").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "alice@example.com");
    let user_id = body["user_id"].as_str().unwrap().to_owned();
    let signed_up = body["position"].as_str().unwrap().to_owned();

    // The log tells the story: the address is claimed, the user signs up, and then the
    // mail reactor, answering `UserSignedUp`, issues a verification token (its hash). The
    // reactor's command answers no request of the test: no position to wait for.
    eventually("the reactor's verification token", || async {
        app.log_events().await.len() == 3
    })
    .await;
    let log = app.log_events().await;
    let types: Vec<_> = log.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["EmailClaimed", "UserSignedUp", "VerificationIssued"]
    );
    assert_eq!(
        log[2].metadata_str("command_id").unwrap(),
        jukebox_domain::issue_command_id(&format!("user:{user_id}:1")).to_string(),
        "the reactor's command id comes from the event's"
    );
    assert_eq!(log[1].aggregate_id, user_id);
    let command_id = log[1].metadata_str("command_id").unwrap();
    assert_eq!(body["command_id"], command_id);

    // ... reaches EVENTS as readable JSON ...
    let events_stream = app.services.topology.namespace.events_stream();
    // The reactor's event is among them, and it has no position the test was given.
    eventually("events on EVENTS", || async {
        app.stream_events().await.len() == 3
    })
    .await;
    let published = app.stream_events().await;
    assert_eq!(published[1].event_type, "UserSignedUp");
    // The address is sealed with Alice's key (ADR 34): ciphertext on the stream.
    let sealed = published[1].payload["UserSignedUp"]["email"]
        .as_str()
        .unwrap();
    assert!(
        sealed.starts_with(&format!("sealed:v1:{user_id}:")),
        "{sealed}"
    );
    assert!(!published[1]
        .payload
        .to_string()
        .contains("alice@example.com"));

    // ... and the admin users read model, at the sign-up's position.
    app.applied(&signed_up, &[ReadModel::of::<AdminUsers>()])
        .await;
    let projected =
        sqlx::query_scalar::<_, String>("SELECT email FROM admin_users WHERE user_id = $1::uuid")
            .bind(&user_id)
            .fetch_optional(app.pool())
            .await
            .unwrap();
    assert_eq!(projected.as_deref(), Some("alice@example.com"));

    // The plain password travelled nowhere: not on COMMANDS, EVENTS, nor in the log.
    let command = commands.next().await.unwrap();
    let command_text = String::from_utf8_lossy(&command.payload).into_owned();
    assert!(
        command_text.contains("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{command_text}"
    );
    let mut everything = raw_stream_payloads(&app, &events_stream).await;
    everything.push(command_text);
    everything.extend(log.iter().map(|e| e.payload.to_string()));
    for text in &everything {
        assert!(!text.contains(PASSWORD), "plain password found in {text}");
    }

    // An id alone does not open the outcome: only the capability a 202's `location`
    // carries does (ADR 14; tests/accounts/mail.rs reads one).
    let outcome = app
        .http
        .get(app.api(&format!("/commands/{command_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome.status(), StatusCode::NOT_FOUND);

    app.cleanup().await;
}

#[tokio::test]
async fn an_address_signs_up_once_even_under_concurrency() {
    let app = spawn_app(&[Role::Api, Role::Processor]).await;
    let attempts = futures::future::join_all((0..8).map(|_| app.sign_up("bob@example.com"))).await;
    let statuses: Vec<StatusCode> = attempts.iter().map(|r| r.status()).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        7,
        "{statuses:?}"
    );
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserSignedUp'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(users, 1);

    let again = app.sign_up("BOB@example.com ").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "email_taken");
    app.cleanup().await;
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retry_the_same_command() {
    let app = spawn_app(&[Role::Api, Role::Processor]).await;
    let send = || {
        app.http
            .post(app.api("/auth/signup"))
            .header("Idempotency-Key", "signup-attempt-1")
            .header("X-Client-Nonce", "this-clients-nonce-0001")
            .json(&serde_json::json!({ "email": "carol@example.com", "password": PASSWORD }))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["user_id"], second["user_id"]);
    assert_eq!(first["command_id"], second["command_id"]);
    // One claim, one account.
    assert_eq!(app.log_events().await.len(), 2);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_sign_up_input_gets_a_clear_4xx() {
    let app = spawn_app(&[Role::Api]).await;
    let url = app.api("/auth/signup");
    let json = |body: &str| {
        app.http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let cases: Vec<(reqwest::Response, StatusCode)> = vec![
        (json("{not json").await.unwrap(), StatusCode::BAD_REQUEST),
        (
            json(r#"{"email": "a@b.co"}"#).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json(r#"{"email": 5, "password": "x"}"#).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json(r#"{"email": "a@b.co", "password": "long enough", "admin": true}"#)
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json(r#"{"email": "not-an-email", "password": "long enough"}"#)
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json(r#"{"email": "a@b.co", "password": "short"}"#)
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json(&format!(
                r#"{{"email": "a@b.co", "password": "{}"}}"#,
                "x".repeat(129)
            ))
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json(&format!(
                r#"{{"email": "a@b.co", "password": "{}"}}"#,
                "x".repeat(200_000)
            ))
            .await
            .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            app.http.post(&url).body("email=a").send().await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (response, expected) in cases {
        assert_eq!(response.status(), expected);
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.is_empty() && body["error"]["code"].is_string(),
            "{body}"
        );
    }
    assert_eq!(app.log_events().await.len(), 0);
    app.cleanup().await;
}

/// With no processor to answer in time, sign-up is accepted (202) and points at its
/// outcome; through the web role that location carries the `/api` mount and works.
#[tokio::test]
async fn an_accepted_sign_up_points_at_its_outcome_through_the_web_role() {
    let app = spawn_app_with(&[Role::Web], &[("COMMAND_WAIT_MS", "300".into())]).await;
    let response = app
        .http
        .post(app.web("/api/auth/signup"))
        .json(&serde_json::json!({ "email": "late@example.com", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["location"], location.as_str());
    assert!(location.starts_with("/api/commands/"), "{location}");

    let processor = app
        .start(&[Role::Processor], jukebox_nats::FailPoints::default())
        .await;
    // A 202 has no position yet (the outcome will): poll the location, as a client does.
    eventually("the outcome at the location", || async {
        let outcome = app.http.get(app.web(&location)).send().await.unwrap();
        outcome.status() == StatusCode::OK
            && outcome.json::<Value>().await.unwrap()["status"] == "committed"
    })
    .await;
    processor.stop().await.unwrap();
    app.cleanup().await;
}

/// Crypto-shredding (ADR 34): the log holds the address sealed, the audit history opens
/// it with the user's key, and once the key is gone it reads "erased" there too.
#[tokio::test]
async fn a_sealed_address_reads_as_erased_once_its_key_is_gone() {
    let app = spawn_app(&[Role::Api, Role::Processor]).await;
    let response = app.sign_up("zoe@example.com").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let user_id = body["user_id"].as_str().unwrap().to_owned();
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE aggregate_type = 'user' AND aggregate_id = $1",
    )
    .bind(&user_id)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(payloads.len(), 1);
    assert!(!payloads[0].contains("zoe@"), "{}", payloads[0]);

    let history = || jukebox::ops::history(app.pool(), "user", &user_id, None);
    let before = history().await.unwrap();
    assert_eq!(
        before[0].payload["UserSignedUp"]["email"],
        "zoe@example.com"
    );
    sqlx::query("UPDATE user_keys SET key = NULL, erased_at = now() WHERE user_id = $1::uuid")
        .bind(&user_id)
        .execute(app.pool())
        .await
        .unwrap();
    let after = history().await.unwrap();
    assert_eq!(after[0].payload["UserSignedUp"]["email"], "erased");
    app.cleanup().await;
}
