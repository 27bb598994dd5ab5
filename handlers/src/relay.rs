//! Outbox relay: publishes the Postgres event log to JetStream `EVENTS`, in relay order,
//! exactly once per event (`Nats-Msg-Id = type:id:seq` deduplicates a batch that is
//! published again after a crash).
//!
//! Relay order is `(transaction_id, global_position)` read strictly below the snapshot's
//! xmin: an identity value is taken at insert, not at commit, so reading by
//! `global_position` alone would skip a transaction that started first and committed last.
//!
//! Reading and publishing overlap: batch N+1 is read while batch N is published, and
//! batch N's acks are awaited only after N+1 is out, so the relay rarely waits on either
//! Postgres or NATS. The checkpoint lags the reads and moves past a batch only once every
//! ack of it and of all earlier batches has arrived.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::HeaderMap;
use jukebox_nats::names::{
    CORRELATION_ID_HEADER, EVENT_TYPE_HEADER, GLOBAL_POSITION_HEADER, TRANSACTION_ID_HEADER,
};
use jukebox_nats::{EventRecord, FailPoints, Topology};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, info, warn, Instrument};

/// Advisory lock key held by the one active relay ("jukebox relay").
const LEADER_LOCK_KEY: i64 = 0x6a75_6b65_7265_6c61;
pub const NOTIFY_CHANNEL: &str = "events_appended";

#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    client: async_nats::Client,
    topology: Topology,
    /// Events per batch. Up to two batches' acks are in flight (the relay's JetStream
    /// context allows that many unawaited acks).
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
            client,
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
        let (transaction_id, global_position): (String, i64) = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM relay_checkpoint WHERE id = 1",
        )
        .fetch_one(&mut *conn)
        .await?;
        let checkpoint = Checkpoint {
            transaction_id,
            global_position,
        };
        // Relay order is read ahead of the checkpoint: `read` is the last event published,
        // the checkpoint the last one whose ack (and every earlier one's) arrived.
        let js = jetstream::ContextBuilder::new()
            .max_ack_inflight(2 * self.batch_size.max(1) as usize + 1)
            .build(self.client.clone());
        let mut read = checkpoint;
        let mut in_flight: Option<Published> = None;
        let mut batch = read_batch(conn, &read, self.batch_size).await?;
        loop {
            if batch.is_empty() {
                // Caught up: settle what is in flight, then wait for more.
                if let Some(published) = in_flight.take() {
                    published.confirm(conn).await?;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    notification = listener.recv() => { notification?; }
                    _ = tokio::time::sleep(self.poll_interval) => {}
                }
                batch = read_batch(conn, &read, self.batch_size).await?;
                continue;
            }
            let last = batch.last().expect("non-empty batch");
            read = Checkpoint {
                transaction_id: last.transaction_id.clone(),
                global_position: last.global_position,
            };
            let full = batch.len() as i64 == self.batch_size;
            // The next batch is read while this one is published and the previous one's
            // acks arrive; a short batch means the log is drained for now.
            let (next, acks) = tokio::join!(
                async {
                    if full {
                        read_batch(conn, &read, self.batch_size)
                            .instrument(debug_span!("relay.read"))
                            .await
                    } else {
                        Ok(Vec::new())
                    }
                },
                self.publish(&js, &batch)
                    .instrument(debug_span!("relay.publish", events = batch.len())),
            );
            let acks = acks?;
            if let Some(published) = in_flight.take() {
                published.confirm(conn).await?;
            }
            in_flight = Some(Published {
                acks,
                last: read.clone(),
            });
            batch = next?;
        }
    }

    /// Publishes one batch in relay order without awaiting its acks.
    async fn publish(
        &self,
        js: &jetstream::Context,
        events: &[EventRecord],
    ) -> anyhow::Result<Vec<PublishAckFuture>> {
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
                js.publish_with_headers(subject, headers, payload.into())
                    .await?,
            );
        }
        Ok(acks)
    }
}

/// A published batch whose acks may still be arriving.
struct Published {
    acks: Vec<PublishAckFuture>,
    last: Checkpoint,
}

impl Published {
    /// Waits for every ack, then moves the checkpoint to the batch's last event. Batches
    /// are confirmed in the order they were published, so the checkpoint never passes an
    /// event whose ack has not arrived.
    async fn confirm(self, conn: &mut PgConnection) -> anyhow::Result<()> {
        let acks = self.acks.len();
        async {
            for ack in self.acks {
                ack.await?;
            }
            anyhow::Ok(())
        }
        .instrument(debug_span!("relay.await_acks", acks))
        .await?;
        sqlx::query(
            "UPDATE relay_checkpoint SET transaction_id = $1::text::xid8, global_position = $2,
             updated_at = now() WHERE id = 1",
        )
        .bind(&self.last.transaction_id)
        .bind(self.last.global_position)
        .execute(&mut *conn)
        .instrument(debug_span!("relay.checkpoint"))
        .await?;
        Ok(())
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
