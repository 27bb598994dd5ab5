//! One download per source, across every downloader process.

use std::time::Duration;

use jukebox_domain::TrackId;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use tracing::info;

/// One download per source: a session-level advisory lock keyed by the track id, held
/// on a connection of its own (never inside a transaction). If the process dies, the
/// connection closes and Postgres releases the lock. The mail reactor takes it too while
/// it discards an erased user's upload (ADR 42), so a discard never deletes objects a
/// downloader is storing again.
pub(crate) struct SourceLock {
    conn: PgConnection,
    key: i64,
}

impl SourceLock {
    pub(crate) async fn acquire(
        pool: &PgPool,
        track_id: &TrackId,
        on_wait: impl FnOnce(),
    ) -> Result<Self, sqlx::Error> {
        let digest = Sha256::digest(format!("jukebox:track:{track_id}").as_bytes());
        let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut conn = pool.acquire().await?.detach();
        let mut on_wait = Some(on_wait);
        loop {
            let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            if got {
                return Ok(Self { conn, key });
            }
            if let Some(on_wait) = on_wait.take() {
                info!(%track_id, "another job is downloading this source; waiting for it");
                on_wait();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}
