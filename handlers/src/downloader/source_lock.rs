//! One download per source, across every downloader process.

use std::time::Duration;

use jukebox_domain::TrackId;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use tracing::info;

/// One download per source: a session-level advisory lock keyed by the track id, held
/// on a connection of its own (never inside a transaction). If the process dies, the
/// connection closes and Postgres releases the lock. A job holds it until its
/// `CompleteImport` committed (shared when it completes from a stored track), and the
/// mail reactor takes it while it discards an erased user's upload (ADR 42): a discard
/// never deletes objects a downloader is storing again, nor comes between a job finding
/// the track stored and completing.
pub struct SourceLock {
    conn: PgConnection,
    key: i64,
    shared: bool,
}

impl SourceLock {
    pub async fn acquire(
        pool: &PgPool,
        track_id: &TrackId,
        on_wait: impl FnOnce(),
    ) -> Result<Self, sqlx::Error> {
        Self::take(pool, track_id, on_wait, false).await
    }

    /// A hold that excludes the exclusive lock but not other shared holds: a job
    /// completing from a stored track, which a discard must not come between (ADR 42).
    pub async fn acquire_shared(pool: &PgPool, track_id: &TrackId) -> Result<Self, sqlx::Error> {
        Self::take(pool, track_id, || {}, true).await
    }

    async fn take(
        pool: &PgPool,
        track_id: &TrackId,
        on_wait: impl FnOnce(),
        shared: bool,
    ) -> Result<Self, sqlx::Error> {
        let digest = Sha256::digest(format!("jukebox:track:{track_id}").as_bytes());
        let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut conn = pool.acquire().await?.detach();
        let mut on_wait = Some(on_wait);
        loop {
            let try_lock = if shared {
                "SELECT pg_try_advisory_lock_shared($1)"
            } else {
                "SELECT pg_try_advisory_lock($1)"
            };
            let (got,): (bool,) = sqlx::query_as(try_lock)
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            if got {
                return Ok(Self { conn, key, shared });
            }
            if let Some(on_wait) = on_wait.take() {
                info!(%track_id, "another job is downloading this source; waiting for it");
                on_wait();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn release(mut self) {
        let unlock = if self.shared {
            "SELECT pg_advisory_unlock_shared($1)"
        } else {
            "SELECT pg_advisory_unlock($1)"
        };
        let _ = sqlx::query(unlock)
            .bind(self.key)
            .execute(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}
