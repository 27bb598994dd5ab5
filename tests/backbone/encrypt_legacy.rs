//! `jukebox events encrypt-legacy` (ADR 43) on a log written before sealing: plain
//! addresses in `User` events (one of an erased user), claim streams named by the address
//! and by `<issuer>|<subject>`, a plain playlist name and description, a plain app
//! credential name, and the mail reactor's record of an old sign-up attempt. Afterwards
//! nothing in the log names anyone, a second run changes nothing, the claims are found
//! under their keyed ids (the address is still taken), the reactor's record follows its
//! event, and the audit history and a read model built from the rewritten log read the
//! values as they were (the erased user's as "erased").

use jukebox::app::Role;
use jukebox_domain::{
    AppCredentialEvent, Email, EmailClaimEvent, ExternalIdentityEvent, PasswordHash, PlaylistEvent,
    UserEvent,
};
use jukebox_handlers::legacy::{encrypt_legacy, LegacyReport};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::{spawn_app, TestApp};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
const IDENTITY: &str = "https://accounts.google.test|legacy-subject-4711";

async fn append(app: &TestApp, aggregate: (&str, &str), sequence: i64, event: impl Serialize) {
    let payload = serde_json::to_value(event).unwrap();
    let event_type = payload.as_object().unwrap().keys().next().unwrap().clone();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ($1, $2, $3, $4, '1.0', $5::json, '{}')",
    )
    .bind(aggregate.0)
    .bind(aggregate.1)
    .bind(sequence)
    .bind(event_type)
    .bind(payload)
    .execute(app.pool())
    .await
    .unwrap();
}

fn signed_up(user_id: Uuid, email: &str) -> UserEvent {
    UserEvent::UserSignedUp {
        user_id,
        email: Email::parse(email).unwrap(),
        password_hash: PasswordHash::parse(HASH).unwrap(),
    }
}

async fn whole_log(app: &TestApp) -> String {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_type || ' ' || aggregate_id || ' ' || payload::text FROM events",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    rows.join("\n")
}

#[tokio::test]
async fn encrypt_legacy_seals_an_old_log_and_rekeys_its_claims() {
    let mut app = spawn_app(&[]).await;
    let (ann, gone, stranger) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let playlist = Uuid::now_v7();
    append(
        &app,
        ("user", &ann.to_string()),
        1,
        signed_up(ann, "old@example.com"),
    )
    .await;
    append(
        &app,
        ("user", &gone.to_string()),
        1,
        signed_up(gone, "gone@example.com"),
    )
    .await;
    // The second user was erased: a key row with no key.
    sqlx::query("INSERT INTO user_keys (user_id, key, erased_at) VALUES ($1, NULL, now())")
        .bind(gone)
        .execute(app.pool())
        .await
        .unwrap();
    let claim = ("email_claim", "old@example.com");
    append(
        &app,
        claim,
        1,
        EmailClaimEvent::EmailClaimed { user_id: ann },
    )
    .await;
    // Written before ADR 43: no address in the event, the claim id was the address.
    append(
        &app,
        claim,
        2,
        EmailClaimEvent::SignUpAttempted {
            user_id: stranger,
            email: None,
        },
    )
    .await;
    append(
        &app,
        ("external_identity", IDENTITY),
        1,
        ExternalIdentityEvent::IdentityLinked { user_id: ann },
    )
    .await;
    let list = ("playlist", playlist.to_string());
    let created = PlaylistEvent::PlaylistCreated {
        playlist_id: playlist,
        owner: ann,
        name: "Old road trip".into(),
        description: "from before sealing".into(),
        public: false,
    };
    append(&app, (list.0, &list.1), 1, created).await;
    let renamed = PlaylistEvent::PlaylistRenamed {
        name: "Older road trip".into(),
    };
    append(&app, (list.0, &list.1), 2, renamed).await;
    let credential = AppCredentialEvent::AppCredentialCreated {
        credential_id: Uuid::now_v7(),
        name: "Old phone".into(),
        nonce: "00".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    append(&app, ("app_credentials", &ann.to_string()), 1, credential).await;
    let entry = format!("{ann}/url:legacy0");
    let corrected: Value = serde_json::json!({"TrackDetailsCorrected": {
        "user_id": ann, "track_id": "url:legacy0",
        "correction": {"title": "Old typed title", "artists": ["Old typed band"]}}});
    append(&app, ("library_entry", &entry), 1, corrected).await;
    sqlx::query(
        "INSERT INTO reactor_effects (reactor, event_id, effect, done_at)
         VALUES ('reactor-mail', 'email_claim:old@example.com:2', 'already_registered', now())",
    )
    .execute(app.pool())
    .await
    .unwrap();
    // A newer processor already wrote under the keyed id (before it re-keyed at start):
    // its event and the reactor's record of it follow the old ones.
    let ids = jukebox_nats::claim_ids::ClaimIds::new(app.pool().clone());
    let keyed = ids.id("email_claim", "old@example.com").await.unwrap();
    append(
        &app,
        ("email_claim", &keyed),
        1,
        EmailClaimEvent::SignUpAttempted {
            user_id: Uuid::now_v7(),
            email: None,
        },
    )
    .await;
    sqlx::query(
        "INSERT INTO reactor_effects (reactor, event_id, effect, done_at)
         VALUES ('reactor-mail', $1, 'none', now())",
    )
    .bind(format!("email_claim:{keyed}:1"))
    .execute(app.pool())
    .await
    .unwrap();
    let secrets = [
        "old@example.com",
        "gone@example.com",
        "legacy-subject-4711",
        "Old road trip",
        "Older road trip",
        "from before sealing",
        "Old phone",
        "Old typed title",
        "Old typed band",
    ];
    let before = whole_log(&app).await;
    for secret in secrets {
        assert!(before.contains(secret), "{secret} is in the old log");
    }

    let report = encrypt_legacy(app.pool()).await.unwrap();
    assert_eq!(
        report,
        LegacyReport {
            claims_rekeyed: 2,
            // two sign-ups, two playlist events, one credential, one correction
            events_sealed: 6,
        }
    );
    let after = whole_log(&app).await;
    for secret in secrets {
        assert!(
            !after.contains(secret),
            "{secret} left in the log:\n{after}"
        );
    }
    // Idempotent: nothing is left to do, and nothing changes.
    assert_eq!(
        encrypt_legacy(app.pool()).await.unwrap(),
        LegacyReport::default()
    );
    assert_eq!(whole_log(&app).await, after);

    // The claim is found under its keyed id, with the reactor's records of its attempts.
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'email_claim' AND aggregate_id = $1
         ORDER BY sequence",
    )
    .bind(&keyed)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        events,
        ["EmailClaimed", "SignUpAttempted", "SignUpAttempted"]
    );
    let effects: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM reactor_effects ORDER BY event_id")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        effects,
        [
            format!("email_claim:{keyed}:2"),
            format!("email_claim:{keyed}:3")
        ]
    );

    // The audit history opens what was sealed; the erased user's reads "erased".
    let history = |kind: &'static str, id: String| {
        let pool = app.pool().clone();
        async move { jukebox::ops::history(&pool, kind, &id, None).await.unwrap() }
    };
    let ann_history = history("user", ann.to_string()).await;
    assert_eq!(
        ann_history[0].payload["UserSignedUp"]["email"],
        "old@example.com"
    );
    let gone_history = history("user", gone.to_string()).await;
    assert_eq!(gone_history[0].payload["UserSignedUp"]["email"], "erased");
    // Asked for by its address, the claim's history is found under the keyed id.
    let claim_history = history("email_claim", "old@example.com".into()).await;
    assert_eq!(claim_history.len(), 3);
    let correction = history("library_entry", entry.clone()).await;
    assert_eq!(
        correction[0].payload["TrackDetailsCorrected"]["correction"]["artists"],
        serde_json::json!(["Old typed band"])
    );
    let identity = history("external_identity", IDENTITY.into()).await;
    assert_eq!(
        identity[0].payload["IdentityLinked"]["user_id"],
        Value::String(ann.to_string())
    );

    // The running system: the address is still taken, and the playlist reads as named.
    app.running = Some(app.start(&[Role::All], Default::default()).await);
    let again = app.sign_up("old@example.com").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    app.projections_caught_up().await;
    let row: (String, String) =
        sqlx::query_as("SELECT name, description FROM playlists WHERE playlist_id = $1")
            .bind(playlist)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        row,
        (
            "Older road trip".to_owned(),
            "from before sealing".to_owned()
        )
    );
    app.cleanup().await;
}
