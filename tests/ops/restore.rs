//! docs/operations.md's restore, done for real: pg_dump, more activity, pg_restore of the
//! dump, then the runbook's re-feed (drop EVENTS, purge COMMANDS, reset the relay's
//! checkpoint, recreate the streams, start the roles). Afterwards EVENTS holds the
//! restored log exactly once, the read models match it, and new commands work.

use std::process::Command;

use jukebox::app::{Role, Services};
use jukebox_nats::FailPoints;
use jukebox_projections::{Position, MODELS};
use reqwest::StatusCode;
use secrecy::ExposeSecret;

use crate::support::{spawn_app, TestApp};

const ROLES: &[Role] = &[Role::Api, Role::Processor, Role::Relay, Role::Projector];

async fn emails(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT email FROM accounts ORDER BY email")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

/// Waits until EVENTS holds exactly the log, in relay order.
async fn stream_matches_log(app: &TestApp, when: &str) {
    let positions = |events: Vec<jukebox_nats::EventRecord>| -> Vec<i64> {
        events.iter().map(|e| e.global_position).collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stream = positions(app.stream_events().await);
        let log = positions(app.log_events().await);
        if stream == log {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{when}: EVENTS {stream:?} is not the log {log:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn pg(tool: &str, args: &[&str]) {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (it comes with PostgreSQL)"));
    assert!(
        output.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_restored_database_re_feeds_events_as_the_runbook_says() {
    let mut app = spawn_app(ROLES).await;
    for email in ["ada@example.com", "bob@example.com"] {
        assert_eq!(app.sign_up(email).await.status(), StatusCode::CREATED);
    }
    // The backup holds read models that have applied both sign-ups.
    app.applied_latest(MODELS).await;
    let backup = tempfile::tempdir().unwrap();
    let dump = backup.path().join("jukebox.dump");
    let database_url = app.config.database_url.expose_secret().to_owned();
    pg(
        "pg_dump",
        &["-Fc", "-f", dump.to_str().unwrap(), &database_url],
    );
    let backed_up = app.log_events().await;

    // After the backup: a third account, which the restore will undo.
    assert_eq!(
        app.sign_up("cyd@example.com").await.status(),
        StatusCode::CREATED
    );
    app.applied_latest(MODELS).await;
    stream_matches_log(&app, "before the restore").await;

    // 1-2. Stop the roles, as their processes would: connections closed too (the
    // relay's leader lock lives on one). Restore the database.
    app.running.take().unwrap().stop().await.unwrap();
    app.services.pool.close().await;
    app.services = Services::connect(&app.config).await.unwrap();
    pg(
        "pg_restore",
        &[
            "--clean",
            "--if-exists",
            "--no-owner",
            "-d",
            &database_url,
            dump.to_str().unwrap(),
        ],
    );
    assert_eq!(app.log_events().await.len(), backed_up.len());
    // EVENTS is now ahead of the log: it still has cyd's sign-up.
    assert!(app.stream_events().await.len() > backed_up.len());

    // 3. Drop EVENTS (and its consumers) and the commands accepted after the backup.
    let js = app.js();
    let topology = &app.services.topology;
    js.delete_stream(topology.namespace.events_stream())
        .await
        .unwrap();
    js.get_stream(topology.namespace.commands_stream())
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    // 4. The relay starts again from the beginning of the log (operations.md's SQL).
    sqlx::query(
        "UPDATE relay_checkpoint SET transaction_id = '0', global_position = 0, updated_at = now()",
    )
    .execute(app.pool())
    .await
    .unwrap();
    // 5. The streams again (what db-migrate does), then the roles.
    topology.ensure_streams(&js).await.unwrap();
    app.running = Some(app.start(ROLES, FailPoints::default()).await);

    stream_matches_log(&app, "re-fed").await;
    let restored_end = Position::of(backed_up.last().unwrap()).to_string();
    app.applied(&restored_end, MODELS).await;
    assert_eq!(emails(&app).await, ["ada@example.com", "bob@example.com"]);
    // The recreated consumers go on with new commands.
    let dee = app.sign_up("dee@example.com").await;
    assert_eq!(dee.status(), StatusCode::CREATED);
    app.applied(&app.position_of(&dee), MODELS).await;
    stream_matches_log(&app, "after a new sign-up").await;
    assert_eq!(
        emails(&app).await,
        ["ada@example.com", "bob@example.com", "dee@example.com"]
    );
    app.cleanup().await;
}
