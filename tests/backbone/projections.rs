//! The projection runtime: duplicates change nothing, rebuilds equal the live model.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::DomainEvent;
use jukebox::app::Role;
use jukebox_domain::PlaylistEvent;
use jukebox_nats::EventRecord;
use jukebox_nats::FailPoints;
use jukebox_projections::playlists::Playlists;
use jukebox_projections::runtime::{apply_batch, refeed_from_log};
use jukebox_projections::{AdminUsers, Position, ReadModel};
use reqwest::StatusCode;

use crate::support::{eventually, spawn_app, spawn_app_with, TestApp};

async fn admin_users(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT row_to_json(u)::text FROM admin_users u ORDER BY user_id")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_applied_twice_leaves_the_read_model_unchanged() {
    let app = spawn_app(&[Role::Api, Role::Processor]).await;
    for i in 0..5 {
        assert_eq!(
            app.sign_up(&format!("u{i}@example.com")).await.status(),
            StatusCode::CREATED
        );
    }
    let events = app.log_events().await;
    let none = FailPoints::default();
    assert_eq!(
        apply_batch::<AdminUsers>(app.pool(), &events, &none)
            .await
            .unwrap(),
        10 // per account: EmailClaimed, UserSignedUp (no reactor runs: no token)
    );
    let once = admin_users(&app).await;
    assert_eq!(once.len(), 5);
    assert_eq!(
        apply_batch::<AdminUsers>(app.pool(), &events, &none)
            .await
            .unwrap(),
        0
    );
    assert_eq!(admin_users(&app).await, once);
    app.cleanup().await;
}

/// A playlist's events as the bus carries them, at relay positions 1, 2, ...
fn playlist_events(playlist: uuid::Uuid, events: Vec<PlaylistEvent>) -> Vec<EventRecord> {
    events
        .into_iter()
        .zip(1..)
        .map(|(event, n)| EventRecord {
            global_position: n,
            transaction_id: n.to_string(),
            aggregate_type: jukebox_domain::playlist::AGGREGATE_TYPE.into(),
            aggregate_id: playlist.to_string(),
            sequence: n,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_value(&event).unwrap(),
            metadata: serde_json::json!({}),
            recorded_at: time::OffsetDateTime::now_utc(),
        })
        .collect()
}

/// A message that waited in the projector past `ack_wait` (behind a batch retried through
/// a Postgres outage) comes again, and both copies can sit in one batch: the fault suite
/// found a playlist's count off by a repeated add. A counting fold takes it once.
#[tokio::test]
async fn an_event_twice_in_one_batch_is_applied_once() {
    let app = spawn_app(&[Role::Api]).await;
    let playlist = uuid::Uuid::now_v7();
    let added = |entry: u64| jukebox_domain::playlist::Entry {
        entry,
        track_id: jukebox_domain::TrackId::parse(&format!("yt:{entry:011}")).unwrap(),
        rank: entry as i64,
    };
    let events = playlist_events(
        playlist,
        vec![
            PlaylistEvent::PlaylistCreated {
                playlist_id: playlist,
                owner: uuid::Uuid::now_v7(),
                name: "Mix".into(),
                description: String::new(),
                public: false,
            },
            PlaylistEvent::PlaylistTracksAdded {
                entries: vec![added(1), added(2)],
            },
            PlaylistEvent::PlaylistTracksAdded {
                entries: vec![added(3)],
            },
        ],
    );
    let batch = [
        events[0].clone(),
        events[1].clone(),
        events[1].clone(),
        events[2].clone(),
        events[1].clone(),
    ];
    let none = FailPoints::default();
    assert_eq!(
        apply_batch::<Playlists>(app.pool(), &batch, &none)
            .await
            .unwrap(),
        3
    );
    let count: i32 = sqlx::query_scalar("SELECT entry_count FROM playlists WHERE playlist_id = $1")
        .bind(playlist)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 3);
    app.cleanup().await;
}

#[tokio::test]
async fn a_rebuild_equals_the_live_model_and_reads_keep_answering() {
    let app = spawn_app(&[Role::All]).await;
    for i in 0..20 {
        assert_eq!(
            app.sign_up(&format!("r{i}@example.com")).await.status(),
            StatusCode::CREATED
        );
    }
    app.applied_latest(&[ReadModel::of::<AdminUsers>()]).await;
    let live = admin_users(&app).await;
    assert_eq!(live.len(), 20);

    // Readers hammer the table while it is rebuilt and swapped.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let pool = app.pool().clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let count: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_users")
                    .fetch_one(&pool)
                    .await
                    .expect("reads keep working during a rebuild");
                assert!(count >= 20, "a reader saw {count} rows");
                reads += 1;
            }
            reads
        })
    };
    let report = jukebox::ops::rebuild_projection(app.pool(), "admin_users", false)
        .await
        .unwrap();
    assert_eq!(report.rows, 20);
    stop.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);
    assert_eq!(admin_users(&app).await, live);

    // Events that arrive after the swap are applied once by the live consumer.
    for i in 20..25 {
        assert_eq!(
            app.sign_up(&format!("r{i}@example.com")).await.status(),
            StatusCode::CREATED
        );
    }
    // The live consumer applies them: the latest sign-up's position says when.
    app.applied_latest(&[ReadModel::of::<AdminUsers>()]).await;
    let after = admin_users(&app).await;
    assert_eq!(after.len(), 25);
    jukebox::ops::rebuild_projection(app.pool(), "admin_users", false)
        .await
        .unwrap();
    assert_eq!(admin_users(&app).await, after);
    app.cleanup().await;
}

/// Issue 21: `EVENTS` keeps `EVENTS_MAX_AGE_SECS`. A projector whose checkpoint is older
/// than the stream's first message re-feeds the gap from the log: here the bus holds
/// nothing at all when the projector starts.
#[tokio::test]
async fn a_projector_behind_the_streams_max_age_refeeds_from_the_log() {
    let app = spawn_app_with(
        &[Role::Api, Role::Processor, Role::Relay],
        &[("EVENTS_MAX_AGE_SECS", "1".into())],
    )
    .await;
    let js = app.js();
    let name = app.services.topology.namespace.events_stream();
    let config = js
        .get_stream(&name)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .config;
    assert_eq!(config.max_age, Duration::from_secs(1));
    assert_eq!(config.duplicate_window, Duration::from_secs(1));

    let mut position = String::new();
    for i in 0..3 {
        let response = app.sign_up(&format!("u{i}@example.com")).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        position = app.position_of(&response);
    }
    app.relayed(&position).await;
    eventually("EVENTS drops the sign-ups (max_age)", || async {
        let state = js
            .get_stream(&name)
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state;
        state.messages == 0 && state.last_sequence >= 6
    })
    .await;

    let projector = app.start(&[Role::Projector], FailPoints::default()).await;
    app.applied(&position, &[ReadModel::of::<AdminUsers>()])
        .await;
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM admin_users ORDER BY email")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(
        emails,
        ["u0@example.com", "u1@example.com", "u2@example.com"]
    );
    projector.stop().await.unwrap();
    app.cleanup().await;
}

/// The gap the live consumer finds before a batch (its first message is not the one after
/// the last it applied): the log's events before the batch, then the batch.
#[tokio::test]
async fn a_gap_before_a_batch_is_refed_from_the_log_then_the_batch_applies() {
    let app = spawn_app(&[Role::Api, Role::Processor]).await;
    for i in 0..3 {
        assert_eq!(
            app.sign_up(&format!("u{i}@example.com")).await.status(),
            StatusCode::CREATED
        );
    }
    let events = app.log_events().await;
    assert_eq!(events.len(), 6); // per account: EmailClaimed, UserSignedUp
                                 // The relay publishes an event once no earlier transaction can still commit (below
                                 // every snapshot's xmin; other tests' transactions count): the bus's events are that.
    eventually("the sign-ups are stable", || async {
        jukebox_nats::log::stable_after(app.pool(), Position::default(), 10)
            .await
            .unwrap()
            .len()
            == 6
    })
    .await;
    // The bus still holds the last two events (the third account); the first four are gone.
    let next = Position::of(&events[4]);
    assert_eq!(
        refeed_from_log::<AdminUsers>(app.pool(), Bound::Excluded(next))
            .await
            .unwrap(),
        4
    );
    assert_eq!(admin_users(&app).await.len(), 2);
    let none = FailPoints::default();
    assert_eq!(
        apply_batch::<AdminUsers>(app.pool(), &events[4..], &none)
            .await
            .unwrap(),
        2
    );
    assert_eq!(admin_users(&app).await.len(), 3);
    // Nothing missing any more: a second look re-feeds nothing.
    assert_eq!(
        refeed_from_log::<AdminUsers>(app.pool(), Bound::Excluded(next))
            .await
            .unwrap(),
        0
    );
    app.cleanup().await;
}

/// ADR 39: one consumer (`proj-all`) feeds every read model, each from its own
/// checkpoint, and the per-model consumers of earlier releases are removed at start.
#[tokio::test]
async fn one_consumer_feeds_every_model_and_retires_the_per_model_ones() {
    let app = spawn_app(&[Role::Api, Role::Processor, Role::Relay]).await;
    let js = app.js();
    let topology = &app.services.topology;
    // What a release before ADR 39 left on the stream.
    for model in ["accounts", "admin_users"] {
        topology
            .projection_consumer(&js, model, Duration::from_secs(30))
            .await
            .unwrap();
    }
    let response = app.sign_up("one@example.com").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let position = app.position_of(&response);

    let projector = app.start(&[Role::Projector], FailPoints::default()).await;
    app.applied(
        &position,
        &[
            ReadModel::of::<AdminUsers>(),
            ReadModel::of::<jukebox_projections::Accounts>(),
        ],
    )
    .await;
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM admin_users")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(emails, ["one@example.com"]);
    let mut names = Vec::new();
    let mut consumers = js
        .get_stream(topology.namespace.events_stream())
        .await
        .unwrap()
        .consumer_names();
    while let Some(name) = futures::StreamExt::next(&mut consumers).await {
        names.push(name.unwrap());
    }
    assert_eq!(names, ["proj-all"]);
    projector.stop().await.unwrap();
    app.cleanup().await;
}

/// Every model's checkpoint, as `(name, position)`, by name.
async fn checkpoints(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT projection, transaction_id::text || '.' || global_position
         FROM projection_checkpoints ORDER BY projection",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn models_with_nothing_in_a_batch_move_their_checkpoints_together_and_only_forward() {
    let app = spawn_app(&[Role::Api, Role::Processor, Role::Relay, Role::Projector]).await;
    let response = app.sign_up("moved@example.com").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let position = app.position_of(&response);
    let last: String = sqlx::query_scalar(
        "SELECT transaction_id::text || '.' || global_position FROM events
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(last, position);
    // Most models take nothing of a sign-up (`jobs`, `plays`, ...): their checkpoints
    // move to the batch's end all the same, in one statement.
    let models = jukebox_projections::every_model().models().len();
    eventually("every checkpoint at the sign-up's last event", || async {
        let at = checkpoints(&app).await;
        at.len() == models && at.iter().all(|(_, p)| *p == last)
    })
    .await;

    // A move to an earlier position changes nothing; a later one moves each named model.
    let before = checkpoints(&app).await;
    let pool = app.pool();
    let earlier = Position {
        transaction_id: 1,
        global_position: 1,
    };
    let moved =
        jukebox_projections::position::advance_checkpoints(pool, &["jobs", "plays"], earlier)
            .await
            .unwrap();
    assert_eq!(moved, 0);
    assert_eq!(checkpoints(&app).await, before);
    let later: Position = last.parse().unwrap();
    let later = Position {
        global_position: later.global_position + 1,
        ..later
    };
    let moved =
        jukebox_projections::position::advance_checkpoints(pool, &["plays", "jobs", "jobs"], later)
            .await
            .unwrap();
    assert_eq!(moved, 2);
    let after = checkpoints(&app).await;
    let later = format!("{}.{}", later.transaction_id, later.global_position);
    for (name, at) in &after {
        let expected = if ["jobs", "plays"].contains(&name.as_str()) {
            &later
        } else {
            &last
        };
        assert_eq!(at, expected, "{name}");
    }
    app.cleanup().await;
}
