//! Wakes the relay after a commit without slowing commits down.
//!
//! A transaction that runs `NOTIFY` takes a cluster-wide lock at commit and holds it
//! through its WAL flush, so a NOTIFY in every event-writing transaction (an `events`
//! trigger) serializes all commits: measured here with pgbench, 16 clients, 4,951 vs
//! 15,771 single-row commits/s. Instead the processor calls [`RelayWaker::wake`] after
//! its commits. When the relay that leads runs in this process (the usual single-process
//! deployment), the wake is an in-memory signal and Postgres sees nothing; otherwise one
//! background task sends `pg_notify` with at most one in flight, so a burst of commits
//! costs one notification. Writers that do not wake the relay are still picked up by its
//! polling fallback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::relay::NOTIFY_CHANNEL;

/// Shared by a process' processor and relay (`src/app.rs`); a default one wakes only
/// through Postgres.
#[derive(Clone, Default)]
pub struct RelayWaker {
    /// A `pg_notify` is wanted.
    pending: Arc<Notify>,
    /// The relay of this process, while it leads.
    local: Arc<LocalRelay>,
}

#[derive(Default)]
struct LocalRelay {
    leading: AtomicBool,
    woken: Notify,
}

impl RelayWaker {
    /// Asks for a notification; cheap, never blocks, coalesces with pending ones.
    pub fn wake(&self) {
        if self.local.leading.load(Ordering::Acquire) {
            self.local.woken.notify_one();
        } else {
            self.pending.notify_one();
        }
    }

    /// The relay of this process leads from now on (`true`) or no longer (`false`).
    pub fn set_leading(&self, leading: bool) {
        self.local.leading.store(leading, Ordering::Release);
    }

    /// Resolves at the next in-process wake (one that came since the last is kept).
    pub async fn woken(&self) {
        self.local.woken.notified().await;
    }

    /// Sends the notifications until `shutdown`.
    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.pending.notified() => {}
            }
            if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
                .bind(NOTIFY_CHANNEL)
                .execute(&pool)
                .await
            {
                // The relay's polling fallback covers a lost notification.
                debug!(%error, "could not notify the relay");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_leading_local_relay_is_woken_in_memory_and_others_through_postgres() {
        let waker = RelayWaker::default();
        waker.wake();
        // Not leading: the wake waits for a pg_notify, the local relay hears nothing.
        let local = tokio::time::timeout(Duration::from_millis(50), waker.woken()).await;
        assert!(
            local.is_err(),
            "a relay that does not lead was woken in memory"
        );
        let notify = tokio::time::timeout(Duration::from_millis(50), waker.pending.notified());
        assert!(notify.await.is_ok(), "no pg_notify was asked for");

        waker.set_leading(true);
        waker.wake();
        let local = tokio::time::timeout(Duration::from_millis(50), waker.woken()).await;
        assert!(local.is_ok(), "the leading relay was not woken");
        let notify = tokio::time::timeout(Duration::from_millis(50), waker.pending.notified());
        assert!(
            notify.await.is_err(),
            "a pg_notify was asked for a local relay"
        );
    }
}
