//! The projection runtime: what a read model implements, and how its rows are loaded,
//! folded and written, with its checkpoint. The live consumer is `projector`'s.

use std::collections::HashMap;
use std::fmt::Debug;
use std::ops::Bound;

use jukebox_domain::published;
use jukebox_nats::{sealed, user_keys};
use jukebox_nats::{EventRecord, FailPoints};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool};
use tracing::warn;

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
    /// Keys of more rows this event touches that only the rows already loaded name (an
    /// entry's album, read from its track's row), asked just before the event is folded,
    /// with the rows `keys` named and those earlier events of the batch left. Most models
    /// need none.
    fn more_keys(_rows: &HashMap<String, Self::Row>, _event: &EventRecord) -> Vec<String> {
        Vec::new()
    }
    /// Folds one event into the touched rows; removing a row deletes it.
    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord);
    /// The row's values in Postgres' text format (`None` is NULL), in `COLUMNS` order.
    fn copy_fields(row: &Self::Row) -> Vec<Option<String>>;

    /// Whether `event` is of an aggregate type in `AGGREGATES`: the only events the fold
    /// is given.
    fn consumes(event: &EventRecord) -> bool {
        Self::AGGREGATES.contains(&event.aggregate_type.as_str())
    }

    /// The (uuid) column naming the user a row belongs to: a `UserErased` deletes that
    /// user's rows where it stands in the log, live and in a rebuild (ADR 42). `None`:
    /// the model keeps nothing of a user's.
    const USER_COLUMN: Option<&'static str> = None;

    /// Keys of rows of no user that an erasure of `row`'s user changes (the track row
    /// counting the entry among its holders). Most models need none.
    fn erased_keys(_row: &Self::Row) -> Vec<String> {
        Vec::new()
    }
    /// Folds the erasure of `gone` (a row of the erased user, already dropped) into the
    /// rows `erased_keys` named, where they are in `rows`.
    fn erased(_rows: &mut HashMap<String, Self::Row>, _gone: &Self::Row) {}
}

/// The user this event erases, when `P` keeps rows of users (ADR 42). Erasures reach the
/// runtime, not the fold: they delete rows that no key names.
pub fn erasure<P: Projection>(event: &EventRecord) -> Option<uuid::Uuid> {
    P::USER_COLUMN?;
    (event.aggregate_type == "user" && event.event_type == "UserErased")
        .then(|| event.aggregate_id.parse().ok())
        .flatten()
}

/// Whether a batch holding `event` has work for `P`: its fold's events, or an erasure.
pub fn takes<P: Projection>(event: &EventRecord) -> bool {
    P::consumes(event) || erasure::<P>(event).is_some()
}

/// Forgets an erased user's rows of a rebuild's in-memory fold (the live runtime deletes
/// them in SQL: [`apply_events`]).
pub fn forget_user<P: Projection>(rows: &mut HashMap<String, P::Row>, user: uuid::Uuid) {
    let Some(column) = P::USER_COLUMN else { return };
    let index = P::COLUMNS
        .iter()
        .position(|c| *c == column)
        .expect("USER_COLUMN is one of COLUMNS");
    let user = user.to_string();
    let gone: Vec<String> = rows
        .iter()
        .filter(|(_, row)| P::copy_fields(row)[index].as_deref() == Some(user.as_str()))
        .map(|(key, _)| key.clone())
        .collect();
    for key in gone {
        if let Some(row) = rows.remove(&key) {
            P::erased(rows, &row);
        }
    }
}

/// Deletes an erased user's rows in SQL, first folding their erasure into the rows of no
/// user they bear on (`Projection::erased`), as [`forget_user`] does in memory.
async fn erase_user<P: Projection>(
    conn: &mut PgConnection,
    table: &str,
    column: &str,
    user: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    let gone: Vec<P::Row> = sqlx::query_as(&format!(
        "SELECT {} FROM {table} WHERE {column} = $1",
        P::COLUMNS.join(", ")
    ))
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    let mut keys: Vec<String> = gone.iter().flat_map(P::erased_keys).collect();
    keys.sort();
    keys.dedup();
    if !keys.is_empty() {
        let mut rows = load::<P>(conn, table, &keys).await?;
        let existed: Vec<String> = rows.keys().cloned().collect();
        for row in &gone {
            P::erased(&mut rows, row);
        }
        let removed: Vec<String> = existed
            .into_iter()
            .filter(|k| !rows.contains_key(k))
            .collect();
        write::<P>(conn, table, rows.into_values().collect(), &removed).await?;
    }
    sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
        .bind(user)
        .execute(&mut *conn)
        .await?;
    Ok(())
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

/// Applies events (already known to be after the checkpoint) to `table`. An erasure
/// deletes the user's rows where it stands: the events before it are folded first.
pub async fn apply_events<P: Projection>(
    conn: &mut PgConnection,
    table: &str,
    events: &[EventRecord],
) -> Result<(), sqlx::Error> {
    let mut start = 0;
    for (i, event) in events.iter().enumerate() {
        if let (Some(user), Some(column)) = (erasure::<P>(event), P::USER_COLUMN) {
            fold_events::<P>(conn, table, &events[start..i]).await?;
            erase_user::<P>(conn, table, column, user).await?;
            start = i + 1;
        }
    }
    fold_events::<P>(conn, table, &events[start..]).await
}

async fn fold_events<P: Projection>(
    conn: &mut PgConnection,
    table: &str,
    events: &[EventRecord],
) -> Result<(), sqlx::Error> {
    // What a fold sees, whichever way its events came (the stream, a re-feed from the
    // log, a rebuild's catch-up): the published shape (ADR 33), with the personal fields
    // sealed per user opened by the keys that exist (ADR 34). Only this model's events.
    let mut consumed: Vec<EventRecord> =
        events.iter().filter(|e| P::consumes(e)).cloned().collect();
    for event in &mut consumed {
        published::withhold(&mut event.payload);
    }
    user_keys::open_records(&mut *conn, &mut consumed, sealed::ERASED).await?;
    let mut touched: Vec<String> = consumed.iter().flat_map(|e| P::keys(e)).collect();
    touched.sort();
    touched.dedup();
    if touched.is_empty() {
        return Ok(());
    }
    let mut rows = load::<P>(conn, table, &touched).await?;
    let mut existed: Vec<String> = rows.keys().cloned().collect();
    for event in &consumed {
        // A key asked before is never loaded again: an earlier event may have removed it.
        let more: Vec<String> = P::more_keys(&rows, event)
            .into_iter()
            .filter(|k| touched.binary_search(k).is_err())
            .collect();
        if !more.is_empty() {
            let loaded = load::<P>(conn, table, &more).await?;
            existed.extend(loaded.keys().cloned());
            rows.extend(loaded);
            touched.extend(more);
            touched.sort();
            touched.dedup();
        }
        P::apply(&mut rows, event);
    }
    let removed: Vec<String> = existed
        .into_iter()
        .filter(|k| !rows.contains_key(k))
        .collect();
    let changed = touched.iter().filter_map(|k| rows.remove(k)).collect();
    write::<P>(conn, table, changed, &removed).await
}

/// Applies a batch from the bus with the checkpoint, in one transaction. An event at or
/// below the checkpoint, or at or below one before it in the batch, is skipped, so a
/// repeat changes nothing: a batch delivered twice, or a message twice in one batch.
/// Returns how many events were new.
pub async fn apply_batch<P: Projection>(
    pool: &PgPool,
    events: &[EventRecord],
    fail_points: &FailPoints,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    // Each position once, in relay order: the checkpoint moves past every event taken.
    let mut through = Position::checkpoint(&mut tx, P::NAME, true).await?;
    let fresh: Vec<EventRecord> = events
        .iter()
        .filter(|e| {
            let position = Position::of(e);
            let new = position > through;
            if new {
                through = position;
            }
            new
        })
        .cloned()
        .collect();
    let Some(last) = fresh.last().map(Position::of) else {
        return Ok(0);
    };
    apply_events::<P>(&mut tx, P::TABLE, &fresh).await?;
    fail_points.check("projector.mid_batch")?;
    last.store(&mut tx, P::NAME).await?;
    tx.commit().await?;
    Ok(fresh.len())
}

/// Events re-fed from the log per transaction when the bus no longer holds them.
const REFEED_BATCH: i64 = 5_000;

/// Applies, from the Postgres log, the events after `P`'s checkpoint up to `until` (the
/// first event the bus delivers, excluded; or the relay's checkpoint, included, when the
/// bus holds nothing) when there are any: `EVENTS` dropped them (`max_age`) before this
/// projector read them, or its consumer is new. In chunks, each with its checkpoint, as
/// the live consumer would have. Returns how many events.
pub async fn refeed_from_log<P: Projection>(
    pool: &PgPool,
    until: Bound<Position>,
) -> anyhow::Result<u64> {
    let wanted = |p: Position| match until {
        Bound::Excluded(next) => p < next,
        Bound::Included(last) => p <= last,
        Bound::Unbounded => true,
    };
    let mut total = 0u64;
    loop {
        let mut tx = pool.begin().await?;
        let checkpoint = Position::checkpoint(&mut tx, P::NAME, true).await?;
        // The first look asks for one event: when nothing is missing it is `next` itself.
        let limit = if total == 0 { 1 } else { REFEED_BATCH };
        let mut missing = jukebox_nats::log::stable_after(&mut *tx, checkpoint, limit).await?;
        missing.retain(|e| wanted(Position::of(e)));
        let Some(last) = missing.last().map(Position::of) else {
            return Ok(total);
        };
        if total == 0 {
            warn!(
                projection = P::NAME,
                %checkpoint,
                until = ?until,
                "EVENTS no longer holds the events after this projection's checkpoint \
                 (EVENTS_MAX_AGE_SECS, or a new consumer): re-feeding them from the log"
            );
        }
        apply_events::<P>(&mut tx, P::TABLE, &missing).await?;
        last.store(&mut tx, P::NAME).await?;
        tx.commit().await?;
        total += missing.len() as u64;
    }
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
