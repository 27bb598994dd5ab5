//! A log written before issue 16 (sign-ins on `User`, disables that revoked each session,
//! one `Library` per user) and before issue 15's access state still works: migration
//! 0010 backfills the access state from it, old sessions keep their meaning, and old
//! libraries seed their per-track entries.

use std::time::Duration;

use jukebox::app::Role;
use jukebox_domain::{
    Command, Email, LibraryEvent, PasswordHash, RevokeReason, Role as UserRole, SessionEvent,
    SignInMethod, SourceRef, TokenHash, TrackId, UserEvent,
};
use jukebox_nats::{CommandBus, CommandEnvelope, CommandOutcome, FailPoints, OutcomeStatus};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::{spawn_app, TestApp};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

async fn append(app: &TestApp, aggregate: (&str, &str), sequence: i64, event: impl Serialize) {
    let payload = serde_json::to_value(event).unwrap();
    let event_type = match &payload {
        serde_json::Value::String(unit) => unit.clone(),
        object => object.as_object().unwrap().keys().next().unwrap().clone(),
    };
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

async fn send(bus: &CommandBus, command: Command) -> CommandOutcome {
    let envelope = CommandEnvelope {
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        issued_by: None,
        issued_at: OffsetDateTime::now_utc(),
        command,
    };
    bus.send(&envelope, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("answered")
}

async fn events_of(app: &TestApp, aggregate_type: &str, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = $1 AND aggregate_id = $2
         ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_all(app.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_log_from_before_small_aggregates_still_signs_in_disables_and_fills_libraries() {
    let mut app = spawn_app(&[]).await;
    // As if this database predated migration 0010.
    sqlx::raw_sql(
        "DROP TABLE access_users, access_sessions;
         DROP INDEX events_legacy_library_track;
         DELETE FROM _sqlx_migrations WHERE version = 10",
    )
    .execute(app.pool())
    .await
    .unwrap();

    // The old shape of history: an admin signed in twice, was disabled (which revoked the
    // first session), enabled, and signed in again.
    let user_id = Uuid::now_v7();
    let user = user_id.to_string();
    let (old, newer) = (Uuid::new_v4(), Uuid::new_v4());
    let expires_at = OffsetDateTime::now_utc() + time::Duration::days(30);
    let started = |user_id| SessionEvent::SessionStarted {
        user_id,
        token_hash: TokenHash::of("r"),
        expires_at,
        method: SignInMethod::Password,
        epoch: None, // written before epochs: the field is absent
    };
    let signed_in = |session_id| UserEvent::SignedIn {
        session_id,
        method: SignInMethod::Password,
    };
    let history = [
        UserEvent::UserSignedUp {
            user_id,
            email: Email::parse("old@example.com").unwrap(),
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
        UserEvent::EmailVerified,
        UserEvent::RoleGranted {
            role: UserRole::Admin,
        },
        signed_in(old),
    ];
    for (i, event) in history.into_iter().enumerate() {
        append(&app, ("user", &user), i as i64 + 1, event).await;
    }
    append(&app, ("session", &old.to_string()), 1, started(user_id)).await;
    append(
        &app,
        ("session", &old.to_string()),
        2,
        SessionEvent::SessionRevoked {
            reason: RevokeReason::UserDisabled,
        },
    )
    .await;
    append(&app, ("user", &user), 5, UserEvent::UserDisabled).await;
    append(&app, ("user", &user), 6, UserEvent::UserEnabled).await;
    append(&app, ("user", &user), 7, signed_in(newer)).await;
    append(&app, ("session", &newer.to_string()), 1, started(user_id)).await;
    // A per-user library: three tracks added, the second one removed.
    let tracks: Vec<TrackId> = (0..3)
        .map(|i| TrackId::parse(&format!("url:legacy{i}")).unwrap())
        .collect();
    let mut sequence = 0;
    for track_id in &tracks {
        sequence += 1;
        let added = LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id: track_id.clone(),
            job_id: Uuid::now_v7(),
        };
        append(&app, ("library", &user), sequence, added).await;
    }
    let removed = LibraryEvent::TrackRemovedFromLibrary {
        user_id,
        track_id: tracks[1].clone(),
    };
    append(&app, ("library", &user), sequence + 1, removed).await;

    jukebox::ops::migrate(&app.config).await.unwrap();
    let pool = app.pool().clone();
    let authenticate = |session| jukebox_projections::access::authenticate(&pool, user_id, session);
    let (account, over) = authenticate(newer).await.unwrap().unwrap();
    assert_eq!(
        (account.verified, account.disabled, account.roles.clone()),
        (true, false, vec!["admin".to_owned()])
    );
    assert!(!over, "the session opened after the enable is live");
    assert!(
        authenticate(old).await.unwrap().unwrap().1,
        "the revoked one is over"
    );
    let email = jukebox_projections::access::by_email(&pool, "old@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(email.password_hash.as_deref(), Some(HASH));

    app.running = Some(app.start(&[Role::Processor], FailPoints::default()).await);
    let bus = app.bus().await;

    // The old user signs in and is disabled the new way: one event, every session over.
    let session = Uuid::new_v4();
    let sign_in = Command::SignIn {
        user_id,
        session_id: session,
        method: SignInMethod::Password,
        require_verified: true,
        refresh_token_hash: TokenHash::of("s"),
        session_expires_at: expires_at,
        rehash: None,
    };
    assert_eq!(send(&bus, sign_in).await.status, OutcomeStatus::Committed);
    assert!(!authenticate(session).await.unwrap().unwrap().1);
    let disable = send(&bus, Command::DisableUser { user_id }).await;
    assert_eq!(disable.status, OutcomeStatus::Committed);
    assert_eq!(disable.events.len(), 1);
    for session in [newer, session] {
        assert!(authenticate(session).await.unwrap().unwrap().1);
    }
    assert_eq!(
        events_of(&app, "user", &user).await.last().unwrap(),
        "UserDisabled"
    );

    // The old library seeds its entries: a held track is not added twice, a removed one
    // cannot be removed again, a held one can. (A completion needs its track stored.)
    let stored =
        jukebox_domain::TrackEvent::TrackStored(crate::support::imports::stored_track(&tracks[0]));
    append(&app, ("track", tracks[0].as_str()), 1, stored).await;
    let job_id = Uuid::now_v7();
    let request = Command::RequestImport {
        job_id,
        user_id,
        source: SourceRef::url("https://example.com/legacy0").unwrap(),
    };
    assert_eq!(send(&bus, request).await.status, OutcomeStatus::Committed);
    let complete = Command::CompleteImport {
        job_id,
        user_id,
        track_id: tracks[0].clone(),
    };
    let completed = send(&bus, complete).await;
    assert_eq!(completed.status, OutcomeStatus::Committed);
    let types: Vec<&str> = completed
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["ImportCompleted"], "already in the library");
    let remove = |track_id: &TrackId| Command::RemoveFromLibrary {
        user_id,
        track_id: track_id.clone(),
    };
    let refused = send(&bus, remove(&tracks[1])).await;
    assert_eq!(refused.error.unwrap().code.as_str(), "not_in_library");
    assert_eq!(
        send(&bus, remove(&tracks[2])).await.status,
        OutcomeStatus::Committed
    );
    let entry = format!("{user}/{}", tracks[2].as_str());
    assert_eq!(
        events_of(&app, "library_entry", &entry).await,
        ["TrackRemovedFromLibrary"]
    );
    // The old stream still folds (audit `as_of`).
    let payloads: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload::jsonb FROM events WHERE aggregate_type = 'library'
         AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&user)
    .fetch_all(app.pool())
    .await
    .unwrap();
    let state = jukebox_domain::audit::state_after("library", &payloads)
        .unwrap()
        .unwrap();
    assert_eq!(state["tracks"].as_array().unwrap().len(), 2);
    app.cleanup().await;
}

/// The processor's group load (ADR 52): the loads of several steps in one statement are
/// each what the step's own load reads: events in order, an old library's seed, an empty
/// aggregate, a stored outcome.
#[tokio::test]
async fn the_loads_of_several_steps_in_one_statement_are_each_steps_own() {
    use jukebox_nats::log::{for_command, for_commands, CommandLoad, LoadKey};

    let app = spawn_app(&[Role::Processor]).await;
    let bus = app.bus().await;
    let user_id = Uuid::now_v7();
    let signed_up = send(
        &bus,
        Command::SignUp {
            user_id,
            email: Email::parse("loads@example.com").unwrap(),
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
    )
    .await;
    assert_eq!(signed_up.status, OutcomeStatus::Committed);
    let user = user_id.to_string();
    let track = |i| TrackId::parse(&format!("url:grouped{i}")).unwrap();
    for (sequence, i) in [(1, 0), (2, 1)] {
        let added = LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id: track(i),
            job_id: Uuid::now_v7(),
        };
        append(&app, ("library", &user), sequence, added).await;
    }
    let removed = LibraryEvent::TrackRemovedFromLibrary {
        user_id,
        track_id: track(0),
    };
    append(&app, ("library", &user), 3, removed).await;

    let key = |aggregate_type: &str, aggregate_id: &str| LoadKey {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        answered: None,
        legacy_library: None,
    };
    let seeded = |i: i32| LoadKey {
        legacy_library: Some((user.clone(), track(i).as_str().to_owned())),
        ..key("library_entry", &format!("{user}/{}", track(i).as_str()))
    };
    let keys = vec![
        key("user", &user),
        seeded(0),
        LoadKey {
            answered: Some(signed_up.command_id),
            ..key("user", &user)
        },
        key("user", &Uuid::now_v7().to_string()),
        seeded(1),
        LoadKey {
            answered: Some(Uuid::now_v7()),
            ..seeded(2)
        },
    ];
    let together = for_commands(app.pool(), &keys).await.unwrap();
    let mut alone = Vec::new();
    for key in &keys {
        alone.push(for_command(app.pool(), key.clone()).await.unwrap());
    }
    assert_eq!(together, alone);

    let events = |load: &CommandLoad| match load {
        CommandLoad::Events { events, seed } => {
            let types: Vec<String> = events
                .iter()
                .map(|(_, p)| p.split('"').nth(1).unwrap().to_owned())
                .collect();
            let seed = seed
                .as_ref()
                .map(|s| s.split('"').nth(1).unwrap().to_owned());
            (types, seed)
        }
        CommandLoad::Answered(outcome) => (vec![format!("answered {}", outcome.command_id)], None),
    };
    let sequences: Vec<i64> = match &together[0] {
        CommandLoad::Events { events, .. } => events.iter().map(|(s, _)| *s).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>());
    assert_eq!(events(&together[0]).0[0], "UserSignedUp");
    assert_eq!(
        events(&together[1]),
        (vec![], Some("TrackRemovedFromLibrary".to_owned()))
    );
    assert_eq!(
        events(&together[2]),
        (vec![format!("answered {}", signed_up.command_id)], None)
    );
    assert_eq!(events(&together[3]), (vec![], None));
    assert_eq!(
        events(&together[4]),
        (vec![], Some("TrackAddedToLibrary".to_owned()))
    );
    assert_eq!(events(&together[5]), (vec![], None), "no such track");
    app.cleanup().await;
}
