//! Outbox relay: publishes the Postgres event log to JetStream `EVENTS`, in relay order,
//! exactly once per event: after a crash it goes on after the last event `EVENTS` holds
//! (ADR 21), so no `Nats-Msg-Id` is needed to drop repeats (ADR 50).
//!
//! Relay order is `(transaction_id, global_position)` read strictly below the snapshot's
//! xmin: an identity value is taken at insert, not at commit, so reading by
//! `global_position` alone would skip a transaction that started first and committed last.
//!
//! Reading and publishing overlap: batch N+1 is read while batch N is published, and
//! batch N's ack is awaited only after N+1 and N+2 are out, so the relay rarely waits on
//! either Postgres or NATS, and NATS always has a batch queued. The checkpoint lags the
//! reads and moves past a batch only once its ack and those of all earlier batches have
//! arrived.
//!
//! Order survives a publish lost in flight (ADR 21): every publish names the stream
//! sequence it must follow (`Nats-Expected-Last-Sequence`), so once one message is
//! missing JetStream refuses every later one instead of storing it ahead of the missing
//! one. The refusal fails the batch's ack; the relay starts over after the last event
//! `EVENTS` holds, so nothing is published twice or out of relay order.
//!
//! Only a batch's last message asks for an ack (ADR 54): that chain makes its ack the
//! proof that every message of the batch before it was stored, in order, and JetStream
//! is spared composing and routing an ack for each of the others.

use std::collections::VecDeque;
use std::io::Write;

use anyhow::Context as _;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::HeaderMap;
use jukebox_domain::published;
use jukebox_nats::log::{self, EventText};
use jukebox_nats::names::{CORRELATION_ID_HEADER, GLOBAL_POSITION_HEADER};
use jukebox_nats::{FailPoints, Position, Topology};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use time::format_description::well_known::Rfc3339;
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
    /// Events per batch. Up to `BATCHES_IN_FLIGHT` batches are in flight, well below the
    /// 10,000 messages nats-server queues per stream before it drops plain publishes.
    pub batch_size: i64,
    /// Fallback when a notification is missed, and the pace while a late transaction is
    /// still open below the batch.
    pub poll_interval: Duration,
    pub fail_points: FailPoints,
    /// Woken in memory by this process' processor while this relay leads.
    pub waker: crate::RelayWaker,
}

/// Where the last message on `EVENTS` sits in relay order (the fields of its body that
/// say so).
#[derive(serde::Deserialize)]
struct StoredAt {
    transaction_id: String,
    global_position: i64,
    aggregate_type: String,
}

/// `EVENTS` ends with an event this database's log does not hold: the stream was fed
/// from another database, or this one was restored from an older backup. Relaying on
/// would mix two logs, or skip this one's events below the stranger's position.
#[derive(Debug, thiserror::Error)]
#[error(
    "EVENTS ends with a {aggregate_type} event at position {at} that this database's log \
     does not hold; re-feed EVENTS from the log (docs/operations.md, \"Restore, and \
     re-feed JetStream from the log\"): the relay waits until then"
)]
pub struct StreamOfAnotherLog {
    at: String,
    aggregate_type: String,
}

/// How often a relay that found [`StreamOfAnotherLog`] looks again.
const STRANGE_STREAM_RETRY: Duration = Duration::from_secs(30);

/// Published batches whose ack the relay does not await yet: the oldest is confirmed
/// while the next goes out. With one, nats-server sometimes ran dry while the relay
/// waited for a batch's last acks and wrote its checkpoint; two gave 7 % on nats-server
/// v2.15 (docs/benchmarks.md, sixth session) and the same as one on v2.9.
const UNCONFIRMED: usize = 2;

/// Batches published and not yet confirmed at most: the unconfirmed ones and the one
/// going out (the benchmark's raw baseline of the relay's messages keeps as many).
pub const BATCHES_IN_FLIGHT: usize = UNCONFIRMED + 1;

/// The JetStream header that makes a publish conditional on the stream's last sequence.
const EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";

impl Relay {
    pub fn new(pool: PgPool, client: async_nats::Client, topology: Topology) -> Self {
        Self {
            pool,
            client,
            topology,
            batch_size: 2_000,
            poll_interval: Duration::from_millis(200),
            fail_points: FailPoints::default(),
            waker: crate::RelayWaker::default(),
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
            let pause = match result {
                Ok(()) => return Ok(()),
                Err(error) if error.is::<jukebox_nats::FailPointFired>() => return Err(error),
                Err(error) if error.is::<StreamOfAnotherLog>() => {
                    tracing::error!("{error}");
                    STRANGE_STREAM_RETRY
                }
                Err(error) => {
                    warn!(
                        error = format!("{error:#}"),
                        "relay lost its footing; retrying"
                    );
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
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
        self.waker.set_leading(true);
        let result = self.relay_until(&mut conn, shutdown).await;
        // Writers of this process notify through Postgres again, whoever leads next.
        self.waker.set_leading(false);
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
        let checkpoint = Position {
            transaction_id: transaction_id.parse()?,
            global_position,
        };
        // Relay order is read ahead of the checkpoint: `read` is the last event published,
        // the checkpoint the last one whose ack (and every earlier one's) arrived.
        let js = jetstream::ContextBuilder::new()
            .max_ack_inflight(BATCHES_IN_FLIGHT + 1)
            .build(self.client.clone());
        // EVENTS holds the log in relay order without a gap up to its last message (each
        // publish was conditional on the one before it). Events up to that one are stored,
        // acked or not: go on after it, from its stream sequence.
        let (mut sequence, stored) = self.stream_end(&js).await?;
        let mut read = checkpoint;
        if let Some(stored) = stored.filter(|stored| *stored > read) {
            store_checkpoint(conn, &stored).await?;
            read = stored;
        }
        let mut in_flight: VecDeque<Published> = VecDeque::with_capacity(BATCHES_IN_FLIGHT);
        let mut batch = self.read_batch(read).await?;
        loop {
            if batch.is_empty() {
                // Caught up: settle what is in flight, then wait for more.
                while let Some(published) = in_flight.pop_front() {
                    published.confirm(conn).await?;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    notification = listener.recv() => { notification?; }
                    _ = self.waker.woken() => {}
                    _ = tokio::time::sleep(self.poll_interval) => {}
                }
                batch = self.read_batch(read).await?;
                continue;
            }
            let last = batch.last().expect("non-empty batch");
            read = Position {
                transaction_id: last.transaction_id.parse()?,
                global_position: last.global_position,
            };
            // The next batch is read (and decoded, on another task) while this one is
            // published and earlier ones' acks arrive; a short batch means the log is
            // drained for now.
            let next = (batch.len() as i64 == self.batch_size).then(|| {
                let (relay, after) = (self.clone(), read);
                tokio::spawn(async move { relay.read_batch(after).await })
            });
            // The oldest unconfirmed batch's ack is awaited and its checkpoint written
            // while this one goes out: batches are still confirmed in order, one after the
            // other.
            let previous = if in_flight.len() == UNCONFIRMED {
                in_flight.pop_front()
            } else {
                None
            };
            let (ack, confirmed) = tokio::join!(
                self.publish(&js, &batch, &mut sequence)
                    .instrument(debug_span!("relay.publish", events = batch.len())),
                async {
                    match previous {
                        Some(published) => published.confirm(conn).await,
                        None => Ok(()),
                    }
                },
            );
            confirmed?;
            in_flight.push_back(Published {
                ack: ack?,
                sequence,
                last: read,
            });
            batch = match next {
                Some(next) => next.await??,
                None => Vec::new(),
            };
        }
    }

    /// The next `batch_size` events after `after` in relay order, below xmin, on a pooled
    /// connection (the leader's own one only holds the lock and writes the checkpoint).
    /// Payload and metadata come as their JSON text: the relay passes them through
    /// without parsing them.
    async fn read_batch(&self, after: Position) -> Result<Vec<EventText>, sqlx::Error> {
        log::stable_text_after(&self.pool, after, self.batch_size)
            .instrument(debug_span!("relay.read"))
            .await
    }

    /// `EVENTS`' last stream sequence and the relay position of the event stored there
    /// (`None` when the stream is empty or its last message is gone or not an event).
    /// An event the log does not hold is [`StreamOfAnotherLog`].
    async fn stream_end(&self, js: &jetstream::Context) -> anyhow::Result<(u64, Option<Position>)> {
        let mut stream = js
            .get_stream(self.topology.namespace.events_stream())
            .await?;
        let last = stream.info().await?.state.last_sequence;
        if last == 0 {
            return Ok((0, None));
        }
        let stored = match stream.get_raw_message(last).await {
            Ok(message) => serde_json::from_slice::<StoredAt>(&message.payload)
                .ok()
                .and_then(|at| {
                    let position = Position {
                        transaction_id: at.transaction_id.parse().ok()?,
                        global_position: at.global_position,
                    };
                    Some((position, at.aggregate_type))
                }),
            Err(error) => {
                warn!(%error, sequence = last, "could not read the last message on EVENTS");
                None
            }
        };
        let Some((position, aggregate_type)) = stored else {
            return Ok((last, None));
        };
        if !log::holds(&self.pool, position, &aggregate_type).await? {
            return Err(StreamOfAnotherLog {
                at: position.to_string(),
                aggregate_type,
            }
            .into());
        }
        Ok((last, Some(position)))
    }

    /// Publishes one (non-empty) batch in relay order and returns its last message's ack,
    /// not awaited. Each message must follow stream sequence `sequence`, which moves on
    /// with it; only the last one asks for an ack (ADR 54).
    async fn publish(
        &self,
        js: &jetstream::Context,
        events: &[EventText],
        sequence: &mut u64,
    ) -> anyhow::Result<PublishAckFuture> {
        let namespace = &self.topology.namespace;
        for (index, event) in events.iter().enumerate() {
            if index == events.len() / 2 {
                self.fail_points.check("relay.mid_batch")?;
            }
            let subject = if self.fail_points.check("relay.lose_publish").is_err() {
                // Fault injection: this one message goes where no stream stores it, as a
                // publish lost in flight would, while the ones after it go out.
                namespace.subject("lost")
            } else {
                namespace.event_subject(
                    &event.aggregate_type,
                    &event.aggregate_id,
                    &event.event_type,
                )
            };
            let mut headers = HeaderMap::new();
            headers.insert(
                GLOBAL_POSITION_HEADER,
                event.global_position.to_string().as_str(),
            );
            headers.insert(EXPECTED_LAST_SEQUENCE, sequence.to_string().as_str());
            *sequence += 1;
            if let Some(correlation_id) = &event.correlation_id {
                headers.insert(CORRELATION_ID_HEADER, correlation_id.as_str());
            }
            let payload = body(event)?.into();
            if index + 1 == events.len() {
                return Ok(js.publish_with_headers(subject, headers, payload).await?);
            }
            // The same connection as the acked publish, so nats-server takes them in order.
            self.client
                .publish_with_headers(subject, headers, payload)
                .await?;
        }
        anyhow::bail!("an empty batch has nothing to publish")
    }
}

/// A published batch whose ack may still be arriving.
struct Published {
    /// The ack of the batch's last message.
    ack: PublishAckFuture,
    /// The stream sequence that message must be stored at.
    sequence: u64,
    last: Position,
}

impl Published {
    /// Waits for the ack of the batch's last message, then moves the checkpoint to it.
    /// Every message named the sequence it must follow, so that ack (at the expected
    /// sequence) proves the whole batch stored in order. Batches are confirmed in the
    /// order they were published, so the checkpoint never passes an unstored event.
    async fn confirm(self, conn: &mut PgConnection) -> anyhow::Result<()> {
        let ack = std::future::IntoFuture::into_future(self.ack)
            .instrument(debug_span!("relay.await_ack"))
            .await
            .context("EVENTS did not take a batch in order; starting over after its last event")?;
        anyhow::ensure!(
            ack.sequence == self.sequence,
            "EVENTS stored a batch's last event at sequence {}, not {}; starting over",
            ack.sequence,
            self.sequence
        );
        store_checkpoint(conn, &self.last).await
    }
}

async fn store_checkpoint(conn: &mut PgConnection, at: &Position) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE relay_checkpoint SET transaction_id = $1::text::xid8, global_position = $2,
         updated_at = now() WHERE id = 1",
    )
    .bind(at.transaction_id.to_string())
    .bind(at.global_position)
    .execute(&mut *conn)
    .instrument(debug_span!("relay.checkpoint"))
    .await?;
    Ok(())
}

/// The message body: a [`jukebox_nats::EventRecord`] as JSON, written around the stored payload
/// and metadata text instead of parsing them into values and printing them again (which
/// was most of the relay's CPU).
fn body(event: &EventText) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(event.payload.len() + event.metadata.len() + 320);
    let text = |out: &mut Vec<u8>, key: &str, value: &str| -> serde_json::Result<()> {
        out.extend_from_slice(key.as_bytes());
        serde_json::to_writer(&mut *out, value)
    };
    write!(out, "{{\"global_position\":{}", event.global_position)?;
    text(&mut out, ",\"transaction_id\":", &event.transaction_id)?;
    text(&mut out, ",\"aggregate_type\":", &event.aggregate_type)?;
    text(&mut out, ",\"aggregate_id\":", &event.aggregate_id)?;
    write!(out, ",\"sequence\":{}", event.sequence)?;
    text(&mut out, ",\"event_type\":", &event.event_type)?;
    text(&mut out, ",\"event_version\":", &event.event_version)?;
    out.extend_from_slice(b",\"payload\":");
    // Credential material stays on the write side (ADR 33).
    out.extend_from_slice(published::payload_text(&event.payload).as_bytes());
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(event.metadata.as_bytes());
    let recorded_at = event.recorded_at.format(&Rfc3339)?;
    text(&mut out, ",\"recorded_at\":", &recorded_at)?;
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use jukebox_nats::EventRecord;
    use time::OffsetDateTime;

    use super::*;

    /// The hand-written body reads back as the `EventRecord` the consumers expect.
    #[test]
    fn a_body_is_the_event_record_as_json() {
        let row = EventText {
            global_position: 42,
            transaction_id: "18446744073709551615".into(),
            aggregate_type: "email_claim".into(),
            aggregate_id: "a\"b\\c@example.com".into(),
            sequence: 3,
            event_type: "EmailClaimed".into(),
            event_version: "1.0".into(),
            payload: r#"{"EmailClaimed": {"user_id": "x", "n": 1.5, "s": "\u00e9\n"}}"#.into(),
            metadata: r#"{"command_id":"c","correlation_id":"k"}"#.into(),
            correlation_id: Some("k".into()),
            recorded_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_876_543_123_456_000)
                .unwrap(),
        };
        let record: EventRecord = serde_json::from_slice(&body(&row).unwrap()).unwrap();
        assert_eq!(
            record,
            EventRecord {
                global_position: 42,
                transaction_id: row.transaction_id.clone(),
                aggregate_type: row.aggregate_type.clone(),
                aggregate_id: row.aggregate_id.clone(),
                sequence: 3,
                event_type: row.event_type.clone(),
                event_version: row.event_version.clone(),
                payload: serde_json::from_str(&row.payload).unwrap(),
                metadata: serde_json::from_str(&row.metadata).unwrap(),
                recorded_at: row.recorded_at,
            }
        );
    }

    /// A body carries the payload as published: credential material withheld (ADR 33).
    #[test]
    fn a_body_withholds_credential_material() {
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        let row = EventText {
            global_position: 1,
            transaction_id: "7".into(),
            aggregate_type: "user".into(),
            aggregate_id: "u".into(),
            sequence: 1,
            event_type: "UserSignedUp".into(),
            event_version: "1.0".into(),
            payload: format!(
                r#"{{"UserSignedUp": {{"user_id": "u", "email": "a@b.co", "password_hash": "{phc}"}}}}"#
            ),
            metadata: "{}".into(),
            correlation_id: None,
            recorded_at: OffsetDateTime::UNIX_EPOCH,
        };
        let record: EventRecord = serde_json::from_slice(&body(&row).unwrap()).unwrap();
        assert_eq!(
            record.payload,
            serde_json::json!({"UserSignedUp": {"user_id": "u", "email": "a@b.co"}})
        );
    }
}
