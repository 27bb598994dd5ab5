//! Reading your own writes: a read that passes the position of a command's last event
//! (`CommandOutcome::position`) is answered only once every read model it reads has
//! applied everything up to that position that concerns it.
//!
//! A read model counts as caught up with position `p` when its checkpoint is at or past
//! `p`, or when no event of an aggregate type it consumes lies between its checkpoint and
//! `p` (so a model that the write did not touch never blocks, even with its projector
//! stopped). The wait is bounded and woken by the projectors: after each commit a
//! projector sends a coalesced `pg_notify` on [`CHANNEL`]; one listener per process reads
//! the checkpoints then, while any read waits, and hands them to every waiter through a
//! `watch` channel. A slow tick covers a lost notification. Handlers never poll.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jukebox_nats::log;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::position::{Checkpoint, Position};
use crate::runtime::Projection;

/// The channel projectors notify after they commit a batch (and a rebuild after its swap).
pub const CHANNEL: &str = "projection_applied";

/// How often the listener reads the checkpoints without being notified.
const FALLBACK_TICK: Duration = Duration::from_secs(1);

/// A read model as a route reads it: its checkpoint and the aggregates it consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadModel {
    pub name: &'static str,
    pub aggregates: &'static [&'static str],
}

impl ReadModel {
    pub const fn of<P: Projection>() -> Self {
        Self {
            name: P::NAME,
            aggregates: P::AGGREGATES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The read models did not reach the position in time (`503` + `Retry-After`).
    #[error("{0} has not caught up with this position yet")]
    Behind(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

type Checkpoints = Arc<HashMap<String, Position>>;

/// The process' shared view of the read models' checkpoints. Cheap to clone.
#[derive(Clone)]
pub struct Freshness {
    pool: PgPool,
    checkpoints: watch::Receiver<Checkpoints>,
    /// Reads waiting now: the listener reads the checkpoints only for them.
    waiters: Arc<AtomicUsize>,
    /// How long a read waits for its position before it answers `503`.
    pub max_wait: Duration,
}

impl Freshness {
    /// Starts the one listener of this process; it runs until `shutdown`.
    pub fn start(pool: PgPool, max_wait: Duration, shutdown: CancellationToken) -> Self {
        let (tx, checkpoints) = watch::channel(Checkpoints::default());
        let waiters = Arc::new(AtomicUsize::new(0));
        tokio::spawn(listen(pool.clone(), tx, waiters.clone(), shutdown));
        Self {
            pool,
            checkpoints,
            waiters,
            max_wait,
        }
    }

    /// Returns once every model in `models` has applied `after` (see the module's
    /// documentation), or `WaitError::Behind` after `max_wait`.
    pub async fn wait_for(&self, after: Position, models: &[ReadModel]) -> Result<(), WaitError> {
        // Counted before the checkpoints are read below: a commit after that read is
        // notified while this read counts, so the listener refreshes for it.
        let _waiting = Waiting::count(&self.waiters);
        let mut updates = self.checkpoints.clone();
        let _ = updates.borrow_and_update();
        // Read after subscribing: a commit from now on is seen through `updates`.
        let mut targets = Vec::new();
        for model in models {
            if let Some(target) = self.target(model, after).await? {
                targets.push((model.name, target));
            }
        }
        let deadline = tokio::time::Instant::now() + self.max_wait;
        loop {
            let behind = {
                let current = updates.borrow_and_update();
                targets
                    .iter()
                    .find(|(name, target)| current.get(*name).is_none_or(|at| at < target))
                    .map(|(name, _)| *name)
            };
            let Some(name) = behind else {
                return Ok(());
            };
            match tokio::time::timeout_at(deadline, updates.changed()).await {
                Ok(Ok(())) => {}
                // The listener stopped (shutdown): what was read is all there is.
                Ok(Err(_)) | Err(_) => return Err(WaitError::Behind(name)),
            }
        }
    }

    /// Whether `models` reflect `after` now, without waiting.
    pub async fn reached(
        &self,
        after: Position,
        models: &[ReadModel],
    ) -> Result<bool, sqlx::Error> {
        for model in models {
            if self.target(model, after).await?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The position `model` must reach for `after`: `None` when it has already, or when
    /// nothing it consumes lies between its checkpoint and `after`; else the last such
    /// event's position.
    async fn target(
        &self,
        model: &ReadModel,
        after: Position,
    ) -> Result<Option<Position>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let checkpoint = Position::checkpoint(&mut conn, model.name, false).await?;
        if checkpoint >= after {
            return Ok(None);
        }
        log::last_of_types_between(&mut *conn, checkpoint, after, model.aggregates).await
    }
}

/// Reads every checkpoint whenever a projector notifies (and on a slow tick), and
/// publishes them when they changed.
/// One read counted among the waiters while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::SeqCst);
        Self(waiters)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn listen(
    pool: PgPool,
    tx: watch::Sender<Checkpoints>,
    waiters: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    // Read once at the start; after that only while a read waits (each projector batch
    // notifies, and reading every checkpoint for nobody was a statement per batch).
    let mut first = true;
    let mut listener: Option<PgListener> = None;
    loop {
        if listener.is_none() {
            match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(CHANNEL).await {
                    Ok(()) => listener = Some(l),
                    Err(error) => debug!(%error, "could not listen for projection commits"),
                },
                Err(error) => debug!(%error, "could not listen for projection commits"),
            }
        }
        if std::mem::take(&mut first) || waiters.load(Ordering::SeqCst) > 0 {
            if let Err(error) = refresh(&pool, &tx).await {
                debug!(%error, "could not read the projection checkpoints");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            notified = async {
                match listener.as_mut() {
                    Some(l) => l.try_recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            } => {
                if let Err(error) = notified {
                    warn!(%error, "projection listener lost its connection; reconnecting");
                    listener = None;
                }
            }
            _ = tokio::time::sleep(FALLBACK_TICK) => {}
        }
    }
}

async fn refresh(pool: &PgPool, tx: &watch::Sender<Checkpoints>) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT projection, transaction_id::text, global_position FROM projection_checkpoints",
    )
    .fetch_all(pool)
    .await?;
    let fresh: HashMap<String, Position> = rows
        .into_iter()
        .map(|(name, xid, global_position)| {
            let position = Position {
                transaction_id: xid.parse().unwrap_or(0),
                global_position,
            };
            (name, position)
        })
        .collect();
    tx.send_if_modified(|current| {
        if **current == fresh {
            return false;
        }
        *current = Arc::new(fresh);
        true
    });
    Ok(())
}

/// Sends the projectors' notifications without slowing their commits: [`wake`] is cheap
/// and coalesces; one task sends `pg_notify` with at most one in flight.
///
/// [`wake`]: AppliedNotifier::wake
#[derive(Clone, Default)]
pub struct AppliedNotifier {
    pending: Arc<Notify>,
}

impl AppliedNotifier {
    pub fn wake(&self) {
        self.pending.notify_one();
    }

    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.pending.notified() => {}
            }
            if let Err(error) = notify(&pool).await {
                // The readers' fallback tick covers a lost notification.
                debug!(%error, "could not notify the readers");
            }
        }
    }
}

/// One notification on [`CHANNEL`].
pub async fn notify(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}
