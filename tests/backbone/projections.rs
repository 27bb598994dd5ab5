//! The projection runtime: duplicates change nothing, rebuilds equal the live model.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jukebox::app::Role;
use jukebox_nats::FailPoints;
use jukebox_projections::runtime::apply_batch;
use jukebox_projections::{AdminUsers, ReadModel};
use reqwest::StatusCode;

use crate::support::{spawn_app, TestApp};

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
