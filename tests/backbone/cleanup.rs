//! The shared test-support crate keeps its promise: a test leaves nothing behind on the
//! shared Postgres and NATS, even when it ends without `cleanup`.

use crate::support::{admin_database_url, spawn_app};
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn an_app_dropped_without_cleanup_removes_its_database_and_streams() {
    let app = spawn_app(&[]).await;
    let database = app.database.clone();
    let js = app.js();
    let stream = app.services.topology.namespace.events_stream();
    app.services.topology.ensure_streams(&js).await.unwrap();
    assert!(js.get_stream(&stream).await.is_ok());

    drop(app);

    let mut admin = PgConnection::connect(&admin_database_url()).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&database)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, 0, "{database} is still there");
    assert!(
        js.get_stream(&stream).await.is_err(),
        "{stream} is still there"
    );
}
