//! The event log's one reader: every read of the Postgres `events` table (the write
//! side's source of truth) goes through these typed functions, whoever reads it: the
//! relay, a rebuild, the read-your-writes wait, lag and backlog figures, the audit
//! routes, `jukebox events show` and the processor's own look-ups. So relay order, the
//! xmin rule and the column list are written once (ADR 17).
//!
//! Relay order is `(transaction_id, global_position)`. "Stable" reads stop below the
//! snapshot's xmin: no transaction can still commit an event before them. `ORDER BY`
//! names the table's columns (`events.transaction_id`): the SELECT list's text copy of
//! the xid would sort "1000" before "999".
//!
//! Functions take any executor (pool, connection or transaction), so a caller that must
//! read inside its own transaction (a rebuild's swap) does.

use futures::stream::BoxStream;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::envelope::EventRecord;
use crate::position::Position;

mod command_load;
pub use command_load::{for_command, for_commands, CommandLoad, LoadKey};

/// The columns that make an [`EventRecord`].
const COLUMNS: &str = EventRecord::COLUMNS;

/// One event with its payload and metadata as the stored JSON text: what the relay passes
/// through to NATS without parsing it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventText {
    pub global_position: i64,
    pub transaction_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// JSON text, valid by construction (a `json` column).
    pub payload: String,
    pub metadata: String,
    pub correlation_id: Option<String>,
    pub recorded_at: OffsetDateTime,
}

/// One event a command wrote, without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenEvent {
    pub sequence: i64,
    pub event_type: String,
    pub position: Position,
}

/// How far behind the head of the log a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Events after the checkpoint, counted up to the cap.
    pub events: i64,
    /// Age of the oldest of them (0 when there are none).
    pub oldest_age_seconds: f64,
}

fn position(transaction_id: &str, global_position: i64) -> Position {
    Position {
        transaction_id: transaction_id.parse().unwrap_or(u64::MAX),
        global_position,
    }
}

/// Every stable event, in relay order (a rebuild's fold).
pub fn stable<'e, 'c: 'e, E: PgExecutor<'c> + 'e>(
    executor: E,
) -> BoxStream<'e, Result<EventRecord, sqlx::Error>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM events
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY events.transaction_id, events.global_position"
        )
    });
    sqlx::query_as(SQL.as_str()).fetch(executor)
}

/// Up to `limit` stable events after `after`, in relay order.
pub async fn stable_after<'e, E: PgExecutor<'e>>(
    executor: E,
    after: Position,
    limit: i64,
) -> Result<Vec<EventRecord>, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM events
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY events.transaction_id, events.global_position LIMIT $3"
        )
    });
    sqlx::query_as(SQL.as_str())
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// [`stable_after`] with payload and metadata as JSON text, and the correlation id the
/// relay puts in a header.
pub async fn stable_text_after<'e, E: PgExecutor<'e>>(
    executor: E,
    after: Position,
    limit: i64,
) -> Result<Vec<EventText>, sqlx::Error> {
    sqlx::query_as(
        "SELECT global_position, transaction_id::text AS transaction_id, aggregate_type,
                aggregate_id, sequence, event_type, event_version, payload::text AS payload,
                metadata::text AS metadata, metadata ->> 'correlation_id' AS correlation_id,
                recorded_at
         FROM events
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY events.transaction_id, events.global_position
         LIMIT $3",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// How many events the log holds.
pub async fn count<'e, E: PgExecutor<'e>>(executor: E) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(executor)
        .await?;
    Ok(count)
}

/// How many events lie after `after` in relay order (committed ones, stable or not).
pub async fn count_after<'e, E: PgExecutor<'e>>(
    executor: E,
    after: Position,
) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM events WHERE (transaction_id, global_position) > ($1::text::xid8, $2)",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .fetch_one(executor)
    .await?;
    Ok(count)
}

/// Per checkpoint, in the order given: the events after it (up to `cap`) and the age of
/// the oldest. Cheap enough for every metrics scrape: both subqueries walk the
/// relay-order index from the checkpoint on and stop at `cap` rows or at one.
pub async fn backlogs<'e, E: PgExecutor<'e>>(
    executor: E,
    checkpoints: &[Position],
    cap: i64,
) -> Result<Vec<Backlog>, sqlx::Error> {
    let xids: Vec<String> = checkpoints
        .iter()
        .map(|p| p.transaction_id.to_string())
        .collect();
    let positions: Vec<i64> = checkpoints.iter().map(|p| p.global_position).collect();
    let rows: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT
             (SELECT count(*) FROM (
                 SELECT 1 FROM events e
                 WHERE (e.transaction_id, e.global_position) > (c.xid::xid8, c.global_position)
                 LIMIT $3) AS after),
             COALESCE(EXTRACT(EPOCH FROM now() - (
                 SELECT e.recorded_at FROM events e
                 WHERE (e.transaction_id, e.global_position) > (c.xid::xid8, c.global_position)
                 ORDER BY e.transaction_id, e.global_position LIMIT 1)), 0)::float8
         FROM UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS c(xid, global_position, n)
         ORDER BY c.n",
    )
    .bind(&xids)
    .bind(&positions)
    .bind(cap)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(events, oldest_age_seconds)| Backlog {
            events,
            oldest_age_seconds: oldest_age_seconds.max(0.0),
        })
        .collect())
}

/// The position of the last event of one of `aggregate_types` in `(after, upto]`, if any.
/// It walks the relay-order index backwards from `upto` and stops at the first match.
pub async fn last_of_types_between<'e, E: PgExecutor<'e>>(
    executor: E,
    after: Position,
    upto: Position,
    aggregate_types: &[&str],
) -> Result<Option<Position>, sqlx::Error> {
    let last: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
           AND (transaction_id, global_position) <= ($3::text::xid8, $4)
           AND aggregate_type = ANY($5)
         ORDER BY transaction_id DESC, global_position DESC
         LIMIT 1",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(upto.transaction_id.to_string())
    .bind(upto.global_position)
    .bind(aggregate_types)
    .fetch_optional(executor)
    .await?;
    Ok(last.map(|(xid, global_position)| position(&xid, global_position)))
}

/// The uploads (`upload:` tracks) `user` ever added to a library that no other user ever
/// added: what an erasure discards (ADR 42). Any other user's entry, held or removed
/// since, keeps the track, unless that user was erased too (their erasure kept it for
/// this one). With `track`, only that one is asked about (an empty answer: it is not).
pub async fn uploads_only_of<'e, E: PgExecutor<'e>>(
    executor: E,
    user: Uuid,
    track: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH mine AS (
             SELECT substr(aggregate_id, length($1) + 2) AS track_id FROM events
             WHERE aggregate_type = 'library_entry' AND aggregate_id LIKE $1 || '/upload:%'
             UNION
             SELECT payload::jsonb -> event_type ->> 'track_id' FROM events
             WHERE aggregate_type = 'library' AND aggregate_id = $1
         )
         SELECT track_id FROM mine m
         WHERE track_id LIKE 'upload:%' AND ($2::text IS NULL OR track_id = $2)
           AND NOT EXISTS (SELECT 1 FROM events o
                           WHERE o.aggregate_type = 'library_entry'
                             AND o.aggregate_id LIKE '%/' || m.track_id
                             AND o.aggregate_id NOT LIKE $1 || '/%'
                             AND NOT EXISTS (SELECT 1 FROM events u
                                 WHERE u.aggregate_type = 'user'
                                   AND u.aggregate_id = split_part(o.aggregate_id, '/', 1)
                                   AND u.event_type = 'UserErased'))
           AND NOT EXISTS (SELECT 1 FROM events o
                           WHERE o.aggregate_type = 'library' AND o.aggregate_id <> $1
                             AND o.payload::jsonb -> o.event_type ->> 'track_id' = m.track_id
                             AND NOT EXISTS (SELECT 1 FROM events u
                                 WHERE u.aggregate_type = 'user'
                                   AND u.aggregate_id = o.aggregate_id
                                   AND u.event_type = 'UserErased'))
         ORDER BY track_id",
    )
    .bind(user.to_string())
    .bind(track)
    .fetch_all(executor)
    .await
}

/// One aggregate's events in order, those recorded at or before `as_of` when given, at
/// most `limit` when given.
pub async fn aggregate<'e, E: PgExecutor<'e>>(
    executor: E,
    aggregate_type: &str,
    aggregate_id: &str,
    as_of: Option<OffsetDateTime>,
    limit: Option<i64>,
) -> Result<Vec<EventRecord>, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM events
             WHERE aggregate_type = $1 AND aggregate_id = $2
               AND ($3::timestamptz IS NULL OR recorded_at <= $3)
             ORDER BY sequence LIMIT $4"
        )
    });
    sqlx::query_as(SQL.as_str())
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(as_of)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// An aggregate's first event (the one that made it: `EmailClaimed`, `IdentityLinked`).
pub async fn first<'e, E: PgExecutor<'e>>(
    executor: E,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<EventRecord>, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM events
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1"
        )
    });
    sqlx::query_as(SQL.as_str())
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_optional(executor)
        .await
}

/// The events one request caused (one correlation id), in relay order, at most `limit`.
pub async fn correlated<'e, E: PgExecutor<'e>>(
    executor: E,
    correlation_id: &str,
    limit: i64,
) -> Result<Vec<EventRecord>, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM events WHERE metadata ->> 'correlation_id' = $1
             ORDER BY events.transaction_id, events.global_position LIMIT $2"
        )
    });
    sqlx::query_as(SQL.as_str())
        .bind(correlation_id)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// The events command `command_id` wrote on one aggregate, in order.
pub async fn written_by<'e, E: PgExecutor<'e>>(
    executor: E,
    command_id: &str,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<WrittenEvent>, sqlx::Error> {
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT sequence, event_type, transaction_id::text, global_position FROM events
         WHERE metadata ->> 'command_id' = $1 AND aggregate_type = $2 AND aggregate_id = $3
         ORDER BY sequence",
    )
    .bind(command_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(sequence, event_type, xid, global_position)| WrittenEvent {
                sequence,
                event_type,
                position: position(&xid, global_position),
            },
        )
        .collect())
}

/// SQL condition, true when the command whose id is the text expression `command_id` has
/// written no event on the aggregate `(aggregate_type, aggregate_id)` (expressions too,
/// such as `$8::text`, `$1`, `$2`). For a write that must decide in its own statement,
/// so the reader owns the text it reads the log with.
pub fn no_event_written_by(command_id: &str, aggregate_type: &str, aggregate_id: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM events
                     WHERE metadata ->> 'command_id' = {command_id}
                       AND aggregate_type = {aggregate_type} AND aggregate_id = {aggregate_id})"
    )
}

/// The distinct ids of `aggregate_type`'s streams not starting with `prefix` (claim
/// streams still under their plain id, ADR 43).
pub async fn ids_without_prefix<'e, E: PgExecutor<'e>>(
    executor: E,
    aggregate_type: &str,
    prefix: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events
         WHERE aggregate_type = $1 AND left(aggregate_id, length($2)) <> $2",
    )
    .bind(aggregate_type)
    .bind(prefix)
    .fetch_all(executor)
    .await
}

/// Whether the log holds an event of `aggregate_type` at relay position `at` (the relay
/// asks it of the last event `EVENTS` holds, to tell a stream of another log).
pub async fn holds<'e, E: PgExecutor<'e>>(
    executor: E,
    at: Position,
    aggregate_type: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE transaction_id = $1::text::xid8
         AND global_position = $2 AND aggregate_type = $3)",
    )
    .bind(at.transaction_id.to_string())
    .bind(at.global_position)
    .bind(aggregate_type)
    .fetch_one(executor)
    .await
}

/// The last sequence of one aggregate's stream (0 when it has none).
pub async fn last_sequence<'e, E: PgExecutor<'e>>(
    executor: E,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(max(sequence), 0) FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(executor)
    .await
}

/// Up to `limit` events of `aggregate_type` after `(aggregate_id, sequence)` in key
/// order, as (id, sequence, payload): a scan of every stream of one type.
pub async fn payloads_after<'e, E: PgExecutor<'e>>(
    executor: E,
    aggregate_type: &str,
    after: (&str, i64),
    limit: i64,
) -> Result<Vec<(String, i64, serde_json::Value)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT aggregate_id, sequence, payload::jsonb FROM events
         WHERE aggregate_type = $1 AND (aggregate_id, sequence) > ($2, $3)
         ORDER BY aggregate_id, sequence LIMIT $4",
    )
    .bind(aggregate_type)
    .bind(after.0)
    .bind(after.1)
    .bind(limit)
    .fetch_all(executor)
    .await
}
