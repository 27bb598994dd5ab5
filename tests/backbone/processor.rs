//! The command processor: exactly-once effect across a crash, conflicts retried.

use std::time::Duration;

use jukebox::app::Role;
use jukebox_domain::{Command, Email, ImportStage, PasswordHash, SourceRef};
use jukebox_nats::{CommandEnvelope, FailPoints, OutcomeStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::{eventually, spawn_app, spawn_app_with, TestApp};

fn envelope(command: Command) -> CommandEnvelope {
    CommandEnvelope {
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        issued_by: None,
        issued_at: OffsetDateTime::now_utc(),
        command,
    }
}

fn sign_up(user_id: Uuid, email: &str) -> Command {
    Command::SignUp {
        user_id,
        email: Email::parse(email).unwrap(),
        password_hash: PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").unwrap(),
    }
}

/// Publishes `copies` copies of `command` straight to `COMMANDS` under distinct message
/// ids (JetStream keeps every copy), as redeliveries and republishes would arrive.
async fn publish_copies(app: &TestApp, command: &CommandEnvelope, copies: usize) {
    let js = async_nats::jetstream::new(app.services.nats.clone());
    let namespace = &app.services.topology.namespace;
    for copy in 0..copies {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}-copy-{copy}", command.command_id).as_str(),
        );
        js.publish_with_headers(
            namespace.command_subject(command.command.subject_suffix()),
            headers,
            serde_json::to_vec(command).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(app.pool()).await.unwrap()
}

/// Kills the processor at the `nth` commit of a sign-up (1: after the email claim, 2: after
/// the user's events and the outcome), restarts it, and checks the command took effect once.
async fn kill_after_commit_then_restart(nth: u64) {
    let app = spawn_app(&[]).await;
    let bus = app.bus().await;
    let command = envelope(sign_up(Uuid::now_v7(), "dave@example.com"));
    bus.send(&command, Duration::ZERO).await.unwrap();

    let fail_points = FailPoints::armed();
    fail_points.arm("processor.after_commit", nth);
    let doomed = app.start(&[Role::Processor], fail_points).await;
    let died = tokio::time::timeout(Duration::from_secs(20), doomed.wait())
        .await
        .unwrap();
    assert!(
        died.is_err(),
        "the processor should have died at the fail point"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, nth as i64);
    assert_eq!(
        count(&app, "SELECT count(*) FROM command_outcomes").await,
        nth as i64 - 1,
        "the outcome commits with the last step's events"
    );

    // A fresh processor gets the redelivery, sees what was committed, and finishes.
    let survivor = app.start(&[Role::Processor], FailPoints::default()).await;
    // A redelivery answers no request of the test: no position, watch the processor's work.
    eventually("the outcome is stored", || async {
        count(&app, "SELECT count(*) FROM command_outcomes").await == 1
    })
    .await;
    eventually("the command is acked", || async {
        let mut stream = app
            .js()
            .get_stream(app.services.topology.namespace.commands_stream())
            .await
            .unwrap();
        stream.info().await.unwrap().state.messages == 0
    })
    .await;
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 2);
    let (status, events): (String, i64) = sqlx::query_as(
        "SELECT status, jsonb_array_length(outcome -> 'events')::int8 FROM command_outcomes",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!((status.as_str(), events), ("committed", 2));
    survivor.stop().await.unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn a_processor_killed_between_two_steps_finishes_the_command_once() {
    kill_after_commit_then_restart(1).await;
}

#[tokio::test]
async fn a_processor_killed_after_commit_before_ack_applies_the_command_once() {
    kill_after_commit_then_restart(2).await;
}

#[tokio::test]
async fn concurrent_commands_on_one_aggregate_are_all_applied_once() {
    let app = spawn_app(&[Role::Processor]).await;
    let bus = app.bus().await;
    let user_id = Uuid::now_v7();
    let outcome = bus
        .send(
            &envelope(sign_up(user_id, "erin@example.com")),
            Duration::from_secs(20),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Committed);

    let sign_ins: Vec<CommandEnvelope> = (0..40)
        .map(|_| envelope(Command::RecordSignIn { user_id }))
        .collect();
    let outcomes = futures::future::join_all(
        sign_ins
            .iter()
            .map(|c| bus.send(c, Duration::from_secs(30))),
    )
    .await;
    for outcome in outcomes {
        assert_eq!(
            outcome.unwrap().expect("answered").status,
            OutcomeStatus::Committed
        );
    }
    let sequences: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM events WHERE aggregate_type = 'user' ORDER BY sequence",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(sequences, (1..=41).collect::<Vec<i64>>());
    let distinct_commands = count(
        &app,
        "SELECT count(DISTINCT metadata->>'command_id') FROM events WHERE event_type = 'UserSignedIn'",
    )
    .await;
    assert_eq!(distinct_commands, 40);
    app.cleanup().await;
}

#[tokio::test]
async fn a_command_for_an_unknown_user_is_rejected_with_a_reason() {
    let app = spawn_app(&[Role::Processor]).await;
    let outcome = app
        .bus()
        .await
        .send(
            &envelope(Command::RecordSignIn {
                user_id: Uuid::now_v7(),
            }),
            Duration::from_secs(20),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Rejected);
    assert_eq!(outcome.error.unwrap().code.as_str(), "unknown_user");
    app.cleanup().await;
}

/// Copies of one command that arrive as separate messages and run at the same time (a
/// redelivery past `ack_wait` while the first delivery still runs, or a republish after
/// the duplicate window) apply it once: each step's commit sees the other copy's events
/// or collides with them on the events primary key.
#[tokio::test]
async fn copies_of_one_command_running_at_once_apply_it_once() {
    let app = spawn_app(&[]).await;
    let bus = app.bus().await;
    let user_id = Uuid::now_v7();
    let first = app.start(&[Role::Processor], FailPoints::default()).await;
    let signed_up = bus
        .send(
            &envelope(sign_up(user_id, "copies@example.com")),
            Duration::from_secs(20),
        )
        .await
        .unwrap()
        .expect("answered");
    assert_eq!(signed_up.status, OutcomeStatus::Committed);
    first.stop().await.unwrap();

    // Ten sign-ins, each published 8 times under distinct message ids (JetStream keeps
    // every copy), all waiting in the stream before the processor starts.
    let js = async_nats::jetstream::new(app.services.nats.clone());
    let namespace = &app.services.topology.namespace;
    let commands: Vec<CommandEnvelope> = (0..10)
        .map(|_| envelope(Command::RecordSignIn { user_id }))
        .collect();
    for command in &commands {
        publish_copies(&app, command, 8).await;
    }
    let processor = app.start(&[Role::Processor], FailPoints::default()).await;
    // Copies published straight to COMMANDS get no answer: watch the processor's work.
    eventually("every copy handled", || async {
        count(&app, "SELECT count(*) FROM command_outcomes").await == 11
    })
    .await;
    eventually("the stream drained", || async {
        let mut stream = js.get_stream(namespace.commands_stream()).await.unwrap();
        stream.info().await.unwrap().state.messages == 0
    })
    .await;

    let sign_ins = count(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'UserSignedIn'",
    )
    .await;
    assert_eq!(sign_ins, 10, "each of the ten sign-ins recorded once");
    let sequences: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM events WHERE aggregate_type = 'user' ORDER BY sequence",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(sequences, (1..=11).collect::<Vec<i64>>());
    processor.stop().await.unwrap();
    app.cleanup().await;
}

/// Group commit (`handlers/src/processor/group.rs`): commands waiting together commit in
/// shared statements, and each still applies once. Sixty imports wait in the stream, ten
/// of them in four copies each (a copy lands in a group beside its twin's aggregate, or
/// after its twin's group committed: it must be recognised, not applied again); two
/// group-commit workers, so steps queue behind them and groups form.
#[tokio::test]
async fn commands_committed_in_groups_each_apply_once() {
    let app = spawn_app_with(&[], &[("COMMIT_GROUP_WORKERS", "2".into())]).await;
    let js = async_nats::jetstream::new(app.services.nats.clone());
    let namespace = &app.services.topology.namespace;
    let user_id = Uuid::now_v7();
    let commands: Vec<CommandEnvelope> = (0..60)
        .map(|i| {
            envelope(Command::RequestImport {
                job_id: Uuid::now_v7(),
                user_id,
                source: SourceRef::url(&format!("https://example.com/{i}.mp3")).unwrap(),
            })
        })
        .collect();
    for (i, command) in commands.iter().enumerate() {
        publish_copies(&app, command, if i % 6 == 0 { 4 } else { 1 }).await;
    }
    let processor = app.start(&[Role::Processor], FailPoints::default()).await;
    // Published straight to COMMANDS, so no answer comes: watch the processor's work.
    eventually("every copy handled", || async {
        let mut stream = js.get_stream(namespace.commands_stream()).await.unwrap();
        stream.info().await.unwrap().state.messages == 0
    })
    .await;
    processor.stop().await.unwrap();
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM command_outcomes WHERE status = 'committed'"
        )
        .await,
        60
    );
    let transactions = count(
        &app,
        "SELECT count(DISTINCT transaction_id::text) FROM events",
    )
    .await;
    assert!(
        transactions < 60,
        "60 commands waiting together should share commits, but took {transactions}"
    );

    // Then five stage changes per job, all waiting, two workers: steps on one job load the
    // same sequence and meet in different groups, whose statements then fail on the
    // events primary key and are committed step by step instead.
    let stages = [ImportStage::Downloading, ImportStage::Transcoding];
    let mut changes = Vec::new();
    for command in &commands {
        let Command::RequestImport { job_id, .. } = command.command else {
            unreachable!()
        };
        for n in 0..5 {
            changes.push(envelope(Command::ChangeImportStage {
                job_id,
                stage: stages[n % 2],
            }));
        }
    }
    for change in &changes {
        publish_copies(&app, change, 1).await;
    }
    let processor = app.start(&[Role::Processor], FailPoints::default()).await;
    eventually("every stage change handled", || async {
        count(&app, "SELECT count(*) FROM command_outcomes").await == 360
    })
    .await;
    processor.stop().await.unwrap();
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM command_outcomes WHERE status = 'committed'"
        )
        .await,
        360
    );
    // No step applied twice, every job's log without a hole, and every outcome's events
    // are in the log under its command.
    assert_eq!(
        count(&app, "SELECT count(*) FROM (SELECT 1 FROM events GROUP BY metadata ->> 'command_id' HAVING count(*) > 1) twice").await,
        0
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM (SELECT 1 FROM events GROUP BY aggregate_id HAVING max(sequence) <> count(*)) holes").await,
        0
    );
    let unbacked = count(
        &app,
        "SELECT count(*) FROM command_outcomes o, jsonb_array_elements(o.outcome -> 'events') r
         WHERE NOT EXISTS (SELECT 1 FROM events e
                           WHERE e.aggregate_id = r ->> 'aggregate_id'
                             AND e.sequence = (r ->> 'sequence')::bigint
                             AND e.metadata ->> 'command_id' = o.command_id::text)",
    )
    .await;
    assert_eq!(unbacked, 0);
    let per_job: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT aggregate_id, count(*), max(sequence) FROM events
         WHERE event_type = 'ImportRequested' GROUP BY aggregate_id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(per_job.len(), 60, "every import requested");
    assert!(
        per_job.iter().all(|(_, n, last)| (*n, *last) == (1, 1)),
        "each exactly once: {per_job:?}"
    );
    // Every stored outcome names its own command's event at the position it committed.
    let mismatched = count(
        &app,
        "SELECT count(*) FROM command_outcomes o JOIN events e
           ON e.metadata ->> 'command_id' = o.command_id::text
         WHERE o.outcome ->> 'position' <> e.transaction_id::text || '.' || e.global_position
            OR o.outcome -> 'events' -> 0 ->> 'aggregate_id' <> e.aggregate_id",
    )
    .await;
    assert_eq!(mismatched, 0);
    app.cleanup().await;
}

/// A long plan delivered three times at once (redeliveries past `ack_wait` while the
/// first delivery still runs, and copies published twice): whichever delivery stores the
/// outcome, it lists every job the command requested, once, including the ones another
/// delivery committed. (Before the fix an outcome listed 0 or 19 of 40: a delivery that
/// found a step taken decided "already there" instead of adopting it.)
#[tokio::test]
async fn copies_of_a_long_plan_answer_every_step_they_share() {
    let app = spawn_app(&[]).await;
    let js = async_nats::jetstream::new(app.services.nats.clone());
    let namespace = &app.services.topology.namespace;
    let user_id = Uuid::now_v7();
    let url = "https://example.com/feed.xml";
    let collection_id = jukebox_domain::collection::id(user_id, url);
    let entries: Vec<jukebox_domain::collection::CollectionEntry> = (0..40)
        .map(|i| jukebox_domain::collection::CollectionEntry {
            source: SourceRef::url(&format!("https://example.com/{i}.mp3")).unwrap(),
            track_id: jukebox_domain::TrackId::parse(&format!("url:copies{i:04}")).unwrap(),
            title: None,
        })
        .collect();
    let command = envelope(Command::ImportCollection {
        playlist_id: jukebox_domain::collection::playlist_id(&collection_id),
        collection_id,
        batch_id: Uuid::now_v7(),
        user_id,
        url: url.into(),
        title: "Feed".into(),
        entries,
        skipped: Vec::new(),
        listed: 40,
        capped: false,
    });
    publish_copies(&app, &command, 3).await;
    let processor = app.start(&[Role::Processor], FailPoints::default()).await;
    eventually("every copy handled", || async {
        let mut stream = js.get_stream(namespace.commands_stream()).await.unwrap();
        stream.info().await.unwrap().state.messages == 0
    })
    .await;
    processor.stop().await.unwrap();
    let outcome: serde_json::Value =
        sqlx::query_scalar("SELECT outcome FROM command_outcomes WHERE command_id = $1")
            .bind(command.command_id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    let requested = outcome["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ImportRequested")
        .count();
    assert_eq!(requested, 40, "{outcome}");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type = 'ImportRequested'"
        )
        .await,
        40
    );
    app.cleanup().await;
}
