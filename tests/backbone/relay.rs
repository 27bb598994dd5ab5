//! The outbox relay: every event reaches EVENTS once, in relay order.

use std::time::Duration;

use jukebox::app::Role;
use jukebox_nats::FailPoints;
use sqlx::Connection;

use crate::support::{eventually, spawn_app, TestApp};

/// Appends one event the way postgres-es does, on its own connection.
async fn append(conn: &mut sqlx::PgConnection, id: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('probe', $1, 1, 'Probed', '1.0', '{}', '{}')",
    )
    .bind(id)
    .execute(conn)
    .await
    .unwrap();
}

fn keys(events: &[jukebox_nats::EventRecord]) -> Vec<(String, String, i64)> {
    events
        .iter()
        .map(|e| (e.aggregate_type.clone(), e.aggregate_id.clone(), e.sequence))
        .collect()
}

async fn database_url(app: &TestApp) -> String {
    use secrecy::ExposeSecret;
    app.config.database_url.expose_secret().to_owned()
}

/// A new app with no role running and `count` events in its log, and a connection to it.
async fn app_with_events(count: usize) -> (TestApp, sqlx::PgConnection) {
    let app = spawn_app(&[]).await;
    let mut conn = sqlx::PgConnection::connect(&database_url(&app).await)
        .await
        .unwrap();
    for i in 0..count {
        append(&mut conn, &format!("p{i}")).await;
    }
    (app, conn)
}

#[tokio::test]
async fn a_relay_restarted_mid_batch_publishes_every_event_once_in_order() {
    let (app, _conn) = app_with_events(500).await;
    let fail_points = FailPoints::armed();
    fail_points.arm("relay.mid_batch", 1);
    let doomed = app.start(&[Role::Relay], fail_points).await;
    let died = tokio::time::timeout(Duration::from_secs(20), doomed.wait())
        .await
        .unwrap();
    assert!(died.is_err(), "the relay should have died mid batch");
    let partial = app.stream_events().await.len();
    assert!(
        partial > 0 && partial < 500,
        "half a batch was published: {partial}"
    );

    let relay = app.start(&[Role::Relay], FailPoints::default()).await;
    // The relay under test is what moves, on rows no command wrote: watch its output.
    eventually("all events relayed", || async {
        app.stream_events().await.len() >= 500
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        keys(&app.stream_events().await),
        keys(&app.log_events().await)
    );
    relay.stop().await.unwrap();
    app.cleanup().await;
}

/// A publish lost in flight while later ones (the rest of its batch, and the next batch,
/// which goes out before this one's ack is awaited) are stored: JetStream refuses every
/// message after the hole (each names the sequence it must follow), and the relay goes on
/// after the last event EVENTS holds. Nothing is stored ahead of an earlier event, which
/// projections would then skip (ADR 21).
#[tokio::test]
async fn a_publish_lost_in_flight_is_not_overtaken_by_later_ones() {
    // Three batches (2,000 each), all in flight when the 1,500th is lost: the relay
    // confirms the first while the third goes out.
    lose_one_publish(1_500).await;
}

/// The one message of a batch that asks for an ack (its last, ADR 54) lost: the batch is
/// not confirmed, and the next batch, which names the lost one's sequence, is refused.
#[tokio::test]
async fn a_lost_last_publish_of_a_batch_is_not_overtaken_by_later_ones() {
    lose_one_publish(2_000).await;
}

/// Relays 5,000 events while the `nth` publish goes where no stream stores it, then checks
/// that EVENTS holds the log once, in relay order.
async fn lose_one_publish(nth: u64) {
    let app = spawn_app(&[]).await;
    let total = 5_000;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'probe', 'p' || i, 1, 'Probed', '1.0', '{}', '{}' FROM generate_series(1, $1) AS i",
    )
    .bind(total as i64)
    .execute(app.pool())
    .await
    .unwrap();
    let log = app.log_events().await;
    let fail_points = FailPoints::armed();
    fail_points.arm("relay.lose_publish", nth);
    let relay = app.start(&[Role::Relay], fail_points.clone()).await;
    let last = log.last().unwrap();
    let end = (last.transaction_id.clone(), last.global_position);
    // The relay under test is what moves, on rows no command wrote: watch its checkpoint.
    eventually("the relay's checkpoint at the end of the log", || async {
        let at: (String, i64) =
            sqlx::query_as("SELECT transaction_id::text, global_position FROM relay_checkpoint")
                .fetch_one(app.pool())
                .await
                .unwrap();
        at == end
    })
    .await;
    assert!(
        !fail_points.is_armed("relay.lose_publish"),
        "a publish was lost"
    );
    assert_eq!(keys(&app.stream_events().await), keys(&log));
    relay.stop().await.unwrap();
    app.cleanup().await;
}

/// `EVENTS` fed from another database (a fresh Postgres cluster, or a restore from an
/// older backup, with the stream kept) ends with an event this log does not hold. The
/// relay must neither mix the logs nor jump its checkpoint to the stranger's position,
/// which would skip this log's events below it: it publishes nothing until re-fed.
#[tokio::test]
async fn a_stream_of_another_log_is_not_relayed_onto() {
    let (app, mut conn) = app_with_events(3).await;
    let relay = app.start(&[Role::Relay], FailPoints::default()).await;
    // The relay under test is what moves, on rows no command wrote: watch its output.
    eventually("three events relayed", || async {
        app.stream_events().await.len() == 3
    })
    .await;
    relay.stop().await.unwrap();
    let checkpoint = || async {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT transaction_id::text, global_position FROM relay_checkpoint",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    };
    let before = checkpoint().await;

    // Another log's event, far ahead of this one in relay order.
    let namespace = &app.services.topology.namespace;
    let stranger = serde_json::json!({
        "global_position": 9_000_000, "transaction_id": "9000000", "aggregate_type": "probe",
        "aggregate_id": "elsewhere", "sequence": 1, "event_type": "Probed",
        "event_version": "1.0", "payload": {}, "metadata": {},
        "recorded_at": "2026-12-06T00:00:00Z"
    });
    app.js()
        .publish(
            namespace.event_subject("probe", "elsewhere", "Probed"),
            serde_json::to_vec(&stranger).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    append(&mut conn, "p3").await;
    let relay = app.start(&[Role::Relay], FailPoints::default()).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(checkpoint().await, before, "the checkpoint moved");
    let stored = app.stream_events().await;
    assert_eq!(
        stored.len(),
        4,
        "something was published after the stranger"
    );
    assert_eq!(stored[3].aggregate_id, "elsewhere");
    relay.stop().await.unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn a_transaction_that_starts_first_and_commits_last_is_not_skipped() {
    let app = spawn_app(&[Role::Relay]).await;
    let url = database_url(&app).await;
    let mut early = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut late = sqlx::PgConnection::connect(&url).await.unwrap();

    let mut first = early.begin().await.unwrap();
    append(&mut first, "started-first").await;
    append(&mut late, "committed-first").await; // autocommit: commits now
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The open transaction holds back everything after it, so nothing is skipped.
    assert!(app.stream_events().await.is_empty());

    first.commit().await.unwrap();
    // The relay under test is what moves, on rows no command wrote: watch its output.
    eventually("both relayed", || async {
        app.stream_events().await.len() == 2
    })
    .await;
    let ids: Vec<String> = app
        .stream_events()
        .await
        .into_iter()
        .map(|e| e.aggregate_id)
        .collect();
    assert_eq!(ids, ["started-first", "committed-first"]);
    app.cleanup().await;
}

/// A relay stopped in the middle of leading must give the leader lock back: the next relay
/// started in the same process (same pool) leads and publishes.
#[tokio::test]
async fn a_relay_started_again_in_the_same_process_leads() {
    let app = spawn_app(&[]).await;
    let mut conn = sqlx::PgConnection::connect(&database_url(&app).await)
        .await
        .unwrap();
    append(&mut conn, "before").await;
    let first = app.start(&[Role::Relay], FailPoints::default()).await;
    // The relay under test is what moves, on rows no command wrote: watch its output.
    eventually("the first relay publishes", || async {
        app.stream_events().await.len() == 1
    })
    .await;
    first.stop().await.unwrap();
    // Otherwise the lock would stay with a pooled connection that the next relay may or
    // may not be handed.
    eventually("the stopped relay released the leader lock", || async {
        let (held,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database =
               (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(app.pool())
        .await
        .unwrap();
        held == 0
    })
    .await;

    let second = app.start(&[Role::Relay], FailPoints::default()).await;
    append(&mut conn, "after").await;
    // As above: the relay's output is what is tested.
    eventually("the second relay publishes", || async {
        app.stream_events().await.len() == 2
    })
    .await;
    second.stop().await.unwrap();
    app.cleanup().await;
}
