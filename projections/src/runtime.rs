//! The projector runtime: what a read model implements, and the live consumer loop.

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use jukebox_nats::{EventRecord, FailPoints, Topology};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::freshness::AppliedNotifier;
use crate::position::{Checkpoint, Position};

/// A read model kept in one table whose rows are keyed by one column.
///
/// `apply` is pure: the runtime loads the rows an event touches, folds events into them
/// and writes them back. The live consumer and a rebuild share it, so they cannot drift.
pub trait Projection: Send + Sync + 'static {
    const NAME: &'static str;
    /// The aggregate types this model consumes: the runtime, a rebuild and the unit tests
    /// hand `keys` and `apply` only their events (see [`consumes`]), and a read that waits
    /// for a position waits on this model only for them. One list for both, so a wait
    /// cannot miss an event the fold reads; `coverage` tests it against every event.
    ///
    /// [`consumes`]: Projection::consumes
    const AGGREGATES: &'static [&'static str];
    const TABLE: &'static str;
    const KEY_COLUMN: &'static str;
    /// SQL type of the key column (keys travel as text and are cast to it).
    const KEY_TYPE: &'static str;
    /// Every column, in the order of `copy_fields`.
    const COLUMNS: &'static [&'static str];
    type Row: for<'r> sqlx::FromRow<'r, PgRow> + Clone + Debug + PartialEq + Send + Sync + Unpin;

    fn key(row: &Self::Row) -> String;
    /// Keys of the rows this event touches; empty when it does not concern this model.
    fn keys(event: &EventRecord) -> Vec<String>;
    /// Folds one event into the touched rows; removing a row deletes it.
    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord);
    /// The row's values in Postgres' text format (`None` is NULL), in `COLUMNS` order.
    fn copy_fields(row: &Self::Row) -> Vec<Option<String>>;

    /// Whether `event` is of an aggregate type in `AGGREGATES`: the only events the fold
    /// is given.
    fn consumes(event: &EventRecord) -> bool {
        Self::AGGREGATES.contains(&event.aggregate_type.as_str())
    }
}

/// Loads the rows with these keys.
pub async fn load<P: Projection>(
    conn: &mut PgConnection,
    table: &str,
    keys: &[String],
) -> Result<HashMap<String, P::Row>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM {table} WHERE {} = ANY($1::text[]::{}[])",
        P::COLUMNS.join(", "),
        P::KEY_COLUMN,
        P::KEY_TYPE
    );
    let rows: Vec<P::Row> = sqlx::query_as(&sql).bind(keys).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|row| (P::key(&row), row)).collect())
}

/// Bulk-loads rows with COPY (the rebuild's fast path into a bare table).
pub async fn copy_in<P: Projection>(
    conn: &mut PgConnection,
    table: &str,
    rows: impl IntoIterator<Item = P::Row>,
) -> Result<(), sqlx::Error> {
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {table} ({}) FROM STDIN",
            P::COLUMNS.join(", ")
        ))
        .await?;
    let mut buffer = String::with_capacity(1 << 20);
    for row in rows {
        for (i, field) in P::copy_fields(&row).iter().enumerate() {
            if i > 0 {
                buffer.push('\t');
            }
            match field {
                None => buffer.push_str("\\N"),
                Some(value) => copy_escape(value, &mut buffer),
            }
        }
        buffer.push('\n');
        if buffer.len() > (1 << 20) {
            copy.send(std::mem::take(&mut buffer).into_bytes()).await?;
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer.into_bytes()).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Upserts `rows` and deletes `removed` keys, through a staging table and COPY.
async fn write<P: Projection>(
    conn: &mut PgConnection,
    table: &str,
    rows: Vec<P::Row>,
    removed: &[String],
) -> Result<(), sqlx::Error> {
    if !rows.is_empty() {
        let stage = format!("stage_{}", P::NAME);
        sqlx::query(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS"
        ))
        .execute(&mut *conn)
        .await?;
        copy_in::<P>(conn, &stage, rows).await?;
        let columns = P::COLUMNS.join(", ");
        let updates: Vec<String> = P::COLUMNS
            .iter()
            .filter(|c| **c != P::KEY_COLUMN)
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}
             ON CONFLICT ({}) DO UPDATE SET {}",
            P::KEY_COLUMN,
            updates.join(", ")
        ))
        .execute(&mut *conn)
        .await?;
    }
    if !removed.is_empty() {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {} = ANY($1::text[]::{}[])",
            P::KEY_COLUMN,
            P::KEY_TYPE
        ))
        .bind(removed)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Applies events (already known to be after the checkpoint) to `table`.
pub async fn apply_events<P: Projection>(
    conn: &mut PgConnection,
    table: &str,
    events: &[EventRecord],
) -> Result<(), sqlx::Error> {
    let consumed: Vec<&EventRecord> = events.iter().filter(|e| P::consumes(e)).collect();
    let mut touched: Vec<String> = consumed.iter().flat_map(|e| P::keys(e)).collect();
    touched.sort();
    touched.dedup();
    if touched.is_empty() {
        return Ok(());
    }
    let mut rows = load::<P>(conn, table, &touched).await?;
    let existed: Vec<String> = rows.keys().cloned().collect();
    for event in consumed {
        P::apply(&mut rows, event);
    }
    let removed: Vec<String> = existed
        .into_iter()
        .filter(|k| !rows.contains_key(k))
        .collect();
    let changed = touched.iter().filter_map(|k| rows.remove(k)).collect();
    write::<P>(conn, table, changed, &removed).await
}

/// Applies a batch from the bus with the checkpoint, in one transaction. Events at or
/// below the checkpoint are skipped, so a batch delivered twice changes nothing.
/// Returns how many events were new.
pub async fn apply_batch<P: Projection>(
    pool: &PgPool,
    events: &[EventRecord],
    fail_points: &FailPoints,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let checkpoint = Position::checkpoint(&mut tx, P::NAME, true).await?;
    let fresh: Vec<EventRecord> = events
        .iter()
        .filter(|e| Position::of(e) > checkpoint)
        .cloned()
        .collect();
    let Some(last) = fresh.iter().map(Position::of).max() else {
        return Ok(0);
    };
    apply_events::<P>(&mut tx, P::TABLE, &fresh).await?;
    fail_points.check("projector.mid_batch")?;
    last.store(&mut tx, P::NAME).await?;
    tx.commit().await?;
    Ok(fresh.len())
}

#[derive(Clone)]
pub struct ProjectionRunner {
    pool: PgPool,
    client: async_nats::Client,
    topology: Topology,
    pub batch_size: usize,
    pub ack_wait: Duration,
    pub fail_points: FailPoints,
    /// Shared with the process' other consumers (`/metrics`).
    pub redeliveries: jukebox_nats::Redeliveries,
}

impl ProjectionRunner {
    pub fn new(pool: PgPool, client: async_nats::Client, topology: Topology) -> Self {
        Self {
            pool,
            client,
            topology,
            batch_size: 1_000,
            ack_wait: Duration::from_secs(30),
            fail_points: FailPoints::default(),
            redeliveries: jukebox_nats::Redeliveries::default(),
        }
    }

    /// Consumes `EVENTS` into projection `P` until `shutdown`.
    pub async fn run<P: Projection>(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let js = jetstream::new(self.client.clone());
        let consumer = self
            .topology
            .projection_consumer(&js, P::NAME, self.ack_wait)
            .await?;
        let mut batches = consumer.messages().await?.ready_chunks(self.batch_size);
        // The stream sequence that continues what was applied (everything up to the ack
        // floor was). See `contiguous`.
        let mut next = consumer.cached_info().ack_floor.stream_sequence + 1;
        let mut gap_reported = 0;
        let consumer_name = format!("proj-{}", P::NAME);
        self.redeliveries.watch(&consumer_name);
        // Readers waiting for a position are woken after each commit.
        let applied = AppliedNotifier::default();
        let notifier_stop = shutdown.child_token();
        tokio::spawn(
            applied
                .clone()
                .run(self.pool.clone(), notifier_stop.clone()),
        );
        let _stop_notifier = notifier_stop.drop_guard();
        info!(projection = P::NAME, "projector started");
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = batches.next() => match batch {
                    Some(batch) => batch,
                    None => anyhow::bail!("{}: event consumer closed", P::NAME),
                },
            };
            let messages: Vec<jetstream::Message> = batch
                .into_iter()
                .filter_map(|m| {
                    m.map_err(|error| warn!(%error, "event consumer error"))
                        .ok()
                })
                .collect();
            for message in &messages {
                self.redeliveries.observe(&consumer_name, message);
            }
            let sequence = |m: &jetstream::Message| m.info().map_or(0, |i| i.stream_sequence);
            let mut messages = messages;
            messages.sort_by_key(sequence);
            let kept = contiguous(messages.iter().map(sequence), &mut next);
            if kept < messages.len() && gap_reported != next {
                gap_reported = next;
                warn!(
                    projection = P::NAME,
                    expected = next,
                    "events arrived past a gap in the stream; waiting for the missing ones to be redelivered"
                );
            }
            let messages = &messages[..kept];
            let Some(last) = messages.last() else {
                continue;
            };
            let events: Vec<EventRecord> = messages
                .iter()
                .filter_map(|m| match serde_json::from_slice(&m.payload) {
                    Ok(event) => Some(event),
                    Err(error) => {
                        warn!(%error, subject = %m.subject, "unreadable event skipped");
                        None
                    }
                })
                .collect();
            // Keep the batch in hand until it is applied: a database outage delays the
            // read model, it does not lose events.
            loop {
                match apply_batch::<P>(&self.pool, &events, &self.fail_points).await {
                    Ok(applied_now) => {
                        if applied_now > 0 {
                            applied.wake();
                        }
                        break;
                    }
                    Err(error) if error.is::<jukebox_nats::FailPointFired>() => return Err(error),
                    Err(error) => {
                        warn!(
                            projection = P::NAME,
                            error = format!("{error:#}"),
                            "batch failed, retrying"
                        );
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                }
            }
            self.fail_points.check("projector.before_ack")?;
            if let Err(error) = last.ack().await {
                warn!(%error, "ack failed; the batch will be redelivered and skipped");
            }
        }
        info!(projection = P::NAME, "projector stopped");
        Ok(())
    }
}

/// How many of a batch's messages (by stream sequence) to apply now: those that continue
/// the stream from `next` without a hole (repeats of earlier ones included: the
/// checkpoint skips them), up to the first that comes after a missing one. `next` moves
/// past what is kept.
///
/// JetStream redelivers an unacked message only after `ack_wait`, and meanwhile delivers
/// newer ones: after a projector dies mid-batch (or a NATS restart loses deliveries in
/// flight) the newer events would arrive first, move the checkpoint past the missing
/// ones, and the missing ones would be skipped as "already applied" when they come back.
/// The events after the hole are left unacked, so they come back too, in order.
fn contiguous(sequences: impl Iterator<Item = u64>, next: &mut u64) -> usize {
    let mut kept = 0;
    for sequence in sequences {
        if sequence > *next {
            break;
        }
        if sequence == *next {
            *next += 1;
        }
        kept += 1;
    }
    kept
}

/// Escapes a value for COPY's text format.
fn copy_escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

/// A text array literal (`{"a","b"}`) for COPY.
pub fn text_array(values: &[String]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_after_a_hole_wait_for_the_missing_ones() {
        let mut next = 5;
        assert_eq!(contiguous([5, 6, 7].into_iter(), &mut next), 3);
        assert_eq!(next, 8);
        // A redelivered repeat is kept (the checkpoint skips it); 10 comes after a hole.
        assert_eq!(contiguous([6, 8, 9, 11, 12].into_iter(), &mut next), 3);
        assert_eq!(next, 10);
        // Nothing continues the stream: nothing is applied or acked.
        assert_eq!(contiguous([11, 12].into_iter(), &mut next), 0);
        assert_eq!(next, 10);
        assert_eq!(contiguous([10, 11, 12].into_iter(), &mut next), 3);
        assert_eq!(next, 13);
    }

    #[test]
    fn copy_text_is_escaped() {
        let mut out = String::new();
        copy_escape("a\tb\\c\nd", &mut out);
        assert_eq!(out, "a\\tb\\\\c\\nd");
        assert_eq!(
            text_array(&["admin".into(), "a\"b".into()]),
            "{\"admin\",\"a\\\"b\"}"
        );
    }
}
