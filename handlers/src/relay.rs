//! Outbox relay: publishes the Postgres event log to JetStream `EVENTS`, in relay order,
//! exactly once per event (`Nats-Msg-Id = type:id:seq` deduplicates a batch that is
//! published again after a crash).
//!
//! Relay order is `(transaction_id, global_position)` read strictly below the snapshot's
//! xmin: an identity value is taken at insert, not at commit, so reading by
//! `global_position` alone would skip a transaction that started first and committed last.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use jukebox_nats::names::{
    CORRELATION_ID_HEADER, EVENT_TYPE_HEADER, GLOBAL_POSITION_HEADER, TRANSACTION_ID_HEADER,
};
use jukebox_nats::{EventRecord, FailPoints, Topology};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Advisory lock key held by the one active relay ("jukebox relay").
const LEADER_LOCK_KEY: i64 = 0x6a75_6b65_7265_6c61;
pub const NOTIFY_CHANNEL: &str = "events_appended";

#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    topology: Topology,
    /// Events per batch; every publish of a batch is in flight before the first ack is
    /// awaited, so this must stay below async-nats' cap of 5,000 unawaited acks (past
    /// it a publish waits for an ack nobody awaits yet).
    pub batch_size: i64,
    /// Fallback when a notification is missed, and the pace while a late transaction is
    /// still open below the batch.
    pub poll_interval: Duration,
    pub fail_points: FailPoints,
}

/// The relay's position in the log, in relay order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Checkpoint {
    transaction_id: String,
    global_position: i64,
}

impl Relay {
    pub fn new(pool: PgPool, client: async_nats::Client, topology: Topology) -> Self {
        Self {
            pool,
            js: jetstream::new(client),
            topology,
            batch_size: 2_000,
            poll_interval: Duration::from_millis(200),
            fail_points: FailPoints::default(),
        }
    }

    /// Waits to become leader, then relays until `shutdown`. A lost database connection
    /// gives up leadership and starts over.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let result = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                result = self.lead(&shutdown) => result,
            };
            match result {
                Ok(()) => return Ok(()),
                Err(error) if error.is::<jukebox_nats::FailPointFired>() => return Err(error),
                Err(error) => {
                    warn!(
                        error = format!("{error:#}"),
                        "relay lost its footing; retrying"
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn lead(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        // Detached from the pool: the leader lock is session-level, and a cancelled `lead`
        // (shutdown) must not hand a connection still holding it back to the pool, where
        // the next relay in this process would never lead again. Dropped, it closes.
        let mut conn = self.pool.acquire().await?.detach();
        loop {
            let (leader,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                .bind(LEADER_LOCK_KEY)
                .fetch_one(&mut conn)
                .await?;
            if leader {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        info!("relay is the leader");
        let result = self.relay_until(&mut conn, shutdown).await;
        // Closing the session releases the lock.
        let _ = sqlx::Connection::close(conn).await;
        result
    }

    async fn relay_until(
        &self,
        conn: &mut PgConnection,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let mut checkpoint: Checkpoint = {
            let (transaction_id, global_position): (String, i64) = sqlx::query_as(
                "SELECT transaction_id::text, global_position FROM relay_checkpoint WHERE id = 1",
            )
            .fetch_one(&mut *conn)
            .await?;
            Checkpoint {
                transaction_id,
                global_position,
            }
        };
        loop {
            let relayed = self.relay_batch(conn, &mut checkpoint).await?;
            if relayed as i64 == self.batch_size {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                notification = listener.recv() => { notification?; }
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Publishes one batch (pipelined), waits for every ack, then moves the checkpoint.
    async fn relay_batch(
        &self,
        conn: &mut PgConnection,
        checkpoint: &mut Checkpoint,
    ) -> anyhow::Result<usize> {
        let events = read_batch(conn, checkpoint, self.batch_size).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let namespace = &self.topology.namespace;
        let mut acks = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            if index == events.len() / 2 {
                self.fail_points.check("relay.mid_batch")?;
            }
            let subject = namespace.event_subject(
                &event.aggregate_type,
                &event.aggregate_id,
                &event.event_type,
            );
            let mut headers = HeaderMap::new();
            headers.insert(
                "Nats-Msg-Id",
                format!(
                    "{}:{}:{}",
                    event.aggregate_type, event.aggregate_id, event.sequence
                )
                .as_str(),
            );
            headers.insert(
                GLOBAL_POSITION_HEADER,
                event.global_position.to_string().as_str(),
            );
            headers.insert(TRANSACTION_ID_HEADER, event.transaction_id.as_str());
            headers.insert(EVENT_TYPE_HEADER, event.event_type.as_str());
            if let Some(correlation_id) = event.metadata_str("correlation_id") {
                headers.insert(CORRELATION_ID_HEADER, correlation_id);
            }
            let payload = serde_json::to_vec(event)?;
            acks.push(
                self.js
                    .publish_with_headers(subject, headers, payload.into())
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
        let last = events.last().expect("non-empty batch");
        *checkpoint = Checkpoint {
            transaction_id: last.transaction_id.clone(),
            global_position: last.global_position,
        };
        sqlx::query(
            "UPDATE relay_checkpoint SET transaction_id = $1::text::xid8, global_position = $2,
             updated_at = now() WHERE id = 1",
        )
        .bind(&checkpoint.transaction_id)
        .bind(checkpoint.global_position)
        .execute(&mut *conn)
        .await?;
        Ok(events.len())
    }
}

async fn read_batch(
    conn: &mut PgConnection,
    after: &Checkpoint,
    limit: i64,
) -> Result<Vec<EventRecord>, sqlx::Error> {
    // ORDER BY names the table's columns: a bare `transaction_id` would mean the SELECT
    // list's text copy, and "1000" sorts before "999".
    let sql = format!(
        "SELECT {} FROM events
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY events.transaction_id, events.global_position
         LIMIT $3",
        EventRecord::COLUMNS
    );
    sqlx::query_as(&sql)
        .bind(&after.transaction_id)
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
}
