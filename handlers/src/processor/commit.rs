//! A step's commit: its events, the access state they change and, on the last step, the
//! command's outcome, in one statement (`one`), or with other steps in a group (`many`).

use std::collections::HashMap;

use cqrs_es::DomainEvent;
use jukebox_nats::{log, sealed, user_keys, CommandOutcome, EventRef, OutcomeStatus};
use tracing::{debug_span, Instrument};

use super::run::Run;
use crate::access::{AccessState, ACCESS_CTES};

impl Run<'_> {
    /// Appends the events to postgres-es' `events` table (its columns, its primary key
    /// as the optimistic-concurrency check), writes the access state they change
    /// (`access.rs`) and, for the last step, stores the outcome, in one statement: one
    /// round trip and one commit, shared with other commands' steps when it writes no
    /// access state (`group.rs`). A conflict leaves nothing behind.
    pub(super) async fn commit<A: AccessState>(
        &self,
        aggregate_id: &str,
        current_sequence: usize,
        events: &[A::Event],
        after: &A,
        last: bool,
    ) -> Result<bool, sqlx::Error> {
        if events.is_empty() && !last {
            return Ok(true); // nothing to append, nothing changed
        }
        let changed = !events.is_empty();
        let user_access = after.user_access().filter(|_| changed).map(to_json);
        let session_access = after
            .session_access(aggregate_id)
            .filter(|_| changed)
            .map(to_json);
        let mut refs = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        for (offset, event) in events.iter().enumerate() {
            payloads.push(serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(e.into()))?);
            versions.push(event.event_version());
            refs.push(EventRef {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                sequence: (current_sequence + offset + 1) as i64,
                event_type: event.event_type(),
            });
        }
        self.seal::<A>(aggregate_id, after, &mut payloads).await?;
        let mut committed = self.committed.lock().expect("run lock").clone();
        committed.extend(refs.iter().cloned());
        let append = Append {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_owned(),
            sequences: refs.iter().map(|r| r.sequence).collect(),
            event_types: refs.iter().map(|r| r.event_type.clone()).collect(),
            versions,
            payloads,
            metadata: self.metadata(),
            command_id: self.envelope.command_id,
            issued_by: self.envelope.issued_by,
            outcome: CommandOutcome {
                command_id: self.envelope.command_id,
                status: OutcomeStatus::Committed,
                error: None,
                position: self.position_token(),
                events: committed,
            },
            last,
        };
        let user_access = user_access.transpose()?;
        let session_access = session_access.transpose()?;
        let pool = &self.processor.pool;
        let (xid, global_position, fresh) = async {
            match &self.processor.group {
                // A step that writes no access state may commit with other commands' steps.
                Some(group) if user_access.is_none() && session_access.is_none() => {
                    group.commit(pool, append).await
                }
                _ => one(pool, &append, user_access, session_access).await,
            }
        }
        .instrument(debug_span!("processor.commit", aggregate = A::TYPE))
        .await?;
        if !fresh {
            return Ok(false);
        }
        if let (Some(xid), Some(global_position)) = (xid, global_position) {
            self.advance((xid.parse().unwrap_or(0), global_position));
        }
        self.committed.lock().expect("run lock").extend(refs);
        Ok(true)
    }

    /// Seals the personal fields and typed text of the step's events with their owner's
    /// key, made on first use (ADR 34, 43). An erased user has none: nothing personal is
    /// written for them again (a `User` step fails; other text is sealed with a key nobody keeps).
    async fn seal<A: AccessState>(
        &self,
        aggregate_id: &str,
        after: &A,
        payloads: &mut [serde_json::Value],
    ) -> Result<(), sqlx::Error> {
        let names = A::sealed_keys();
        if names.is_empty() || !payloads.iter().any(|p| sealed::has_fields(p, names)) {
            return Ok(());
        }
        let owner = after.sealed_for(aggregate_id);
        let key = match owner {
            Some(user) => user_keys::for_sealing(&self.processor.pool, user)
                .await?
                .map(|key| (user, key)),
            None => None,
        };
        match key {
            Some((user, key)) => payloads
                .iter_mut()
                .for_each(|p| sealed::seal_fields(p, user, &key, names)),
            None if A::TYPE == <jukebox_domain::User as cqrs_es::Aggregate>::TYPE => {
                return Err(sqlx::Error::Protocol(format!(
                    "user {aggregate_id} is erased"
                )));
            }
            None => payloads
                .iter_mut()
                .for_each(|p| sealed::seal_fields_for_nobody(p, owner, names)),
        }
        Ok(())
    }

    fn metadata(&self) -> HashMap<String, String> {
        let envelope = self.envelope;
        let mut metadata = HashMap::from([
            ("command_id".to_owned(), envelope.command_id.to_string()),
            (
                "correlation_id".to_owned(),
                envelope.correlation_id.to_string(),
            ),
            ("causation_id".to_owned(), envelope.command_id.to_string()),
            (
                "command".to_owned(),
                envelope.command.subject_suffix().to_owned(),
            ),
        ]);
        if let Some(user_id) = envelope.issued_by {
            metadata.insert("user_id".to_owned(), user_id.to_string());
        }
        metadata
    }
}

/// One step's commit, as `one` or a group (`group.rs`) writes it.
pub(super) struct Append {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub sequences: Vec<i64>,
    pub event_types: Vec<String>,
    pub versions: Vec<String>,
    pub payloads: Vec<serde_json::Value>,
    pub metadata: HashMap<String, String>,
    pub command_id: uuid::Uuid,
    pub issued_by: Option<uuid::Uuid>,
    /// The outcome to store (on the last step), without the position the statement adds.
    pub outcome: CommandOutcome,
    pub last: bool,
}

impl Append {
    pub fn aggregate(&self) -> (&str, &str) {
        (self.aggregate_type, &self.aggregate_id)
    }
}

/// What a step's commit answers: the transaction id and global position of its last
/// event (none when it appended nothing), and whether it was fresh (false: this command
/// had already written events on this aggregate, and nothing was written now).
pub(super) type Committed = (Option<String>, Option<i64>, bool);

/// Commits one step, with the access rows it changes (JSON objects), in one statement.
pub(super) async fn one(
    pool: &sqlx::PgPool,
    append: &Append,
    user_access: Option<serde_json::Value>,
    session_access: Option<serde_json::Value>,
) -> Result<Committed, sqlx::Error> {
    sqlx::query_as(COMMIT_SQL.as_str())
        .bind(append.aggregate_type)
        .bind(&append.aggregate_id)
        .bind(&append.sequences)
        .bind(&append.event_types)
        .bind(&append.versions)
        .bind(sqlx::types::Json(&append.metadata))
        .bind(&append.payloads)
        .bind(append.command_id)
        .bind(append.issued_by)
        .bind(sqlx::types::Json(&append.outcome))
        .bind(append.last)
        .bind(user_access)
        .bind(session_access)
        .fetch_one(pool)
        .await
}

/// Commits steps on distinct aggregates that write no access state, in one statement:
/// each as `one` would, all or none. Answers in the order given.
pub(super) async fn many(
    pool: &sqlx::PgPool,
    appends: &[&Append],
) -> Result<Vec<Committed>, sqlx::Error> {
    let mut step_of_event = Vec::new();
    let (mut sequences, mut event_types, mut versions, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (step, append) in appends.iter().enumerate() {
        for (i, sequence) in append.sequences.iter().enumerate() {
            step_of_event.push(step as i64 + 1);
            sequences.push(*sequence);
            event_types.push(append.event_types[i].as_str());
            versions.push(append.versions[i].as_str());
            payloads.push(&append.payloads[i]);
        }
    }
    let outcomes = appends
        .iter()
        .map(|a| to_json(&a.outcome))
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = appends
        .iter()
        .map(|a| to_json(&a.metadata))
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query_as(MANY_SQL.as_str())
        .bind(appends.iter().map(|a| a.aggregate_type).collect::<Vec<_>>())
        .bind(
            appends
                .iter()
                .map(|a| a.aggregate_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(appends.iter().map(|a| a.command_id).collect::<Vec<_>>())
        .bind(appends.iter().map(|a| a.issued_by).collect::<Vec<_>>())
        .bind(outcomes)
        .bind(appends.iter().map(|a| a.last).collect::<Vec<_>>())
        .bind(metadata)
        .bind(step_of_event)
        .bind(sequences)
        .bind(event_types)
        .bind(versions)
        .bind(payloads)
        .fetch_all(pool)
        .await
}

/// `one`'s statement: the events, the outcome (last step only, with the position
/// of the last event appended) and the access state, as data-modifying CTEs of one
/// statement; it answers that position. `fresh` writes nothing when this command already
/// has events on this aggregate: two deliveries of one command running at once (the first
/// past its `ack_wait`) either see each other's commit here or collide on the events
/// primary key, so a step is applied once. (A command never runs two steps that both
/// write to one aggregate.)
static COMMIT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH fresh AS (
                 SELECT {fresh} AS ok
             ), appended AS (
                 INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata)
                 SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, $6
                 FROM UNNEST($3::bigint[], $4::text[], $5::text[], $7::jsonb[])
                      AS e(sequence, event_type, event_version, payload)
                 WHERE (SELECT ok FROM fresh)
                 RETURNING transaction_id, global_position
             ), last AS (
                 SELECT max(transaction_id::text) AS xid, max(global_position) AS global_position
                 FROM appended
             ), outcome AS (
                 INSERT INTO command_outcomes (command_id, issued_by, status, outcome)
                 SELECT $8, $9, 'committed',
                        CASE WHEN last.global_position IS NULL THEN $10::jsonb
                             ELSE $10::jsonb || jsonb_build_object('position',
                                     last.xid || '.' || last.global_position) END
                 FROM last WHERE $11 AND (SELECT ok FROM fresh)
                 ON CONFLICT (command_id) DO NOTHING
                 RETURNING 1
             ), {ACCESS_CTES}
             SELECT xid, global_position, (SELECT ok FROM fresh) FROM last",
        fresh = log::no_event_written_by("$8::text", "$1", "$2"),
    )
});

/// `many`'s statement: `COMMIT_SQL` without the access state, for steps `c` (one row
/// each, numbered from 1) and their events `e` (each naming its step). The events are
/// inserted in the order given, so each step's keep their order in the log.
static MANY_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH c AS (
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::uuid[],
                                      $5::jsonb[], $6::bool[], $7::jsonb[]) WITH ORDINALITY
                      AS c(aggregate_type, aggregate_id, command_id, issued_by, outcome, last,
                           metadata, step)
             ), fresh AS (
                 SELECT c.step FROM c WHERE {fresh}
             ), appended AS (
                 INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata)
                 SELECT c.aggregate_type, c.aggregate_id, e.sequence, e.event_type,
                        e.event_version, e.payload::json, c.metadata::json
                 FROM UNNEST($8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::jsonb[])
                      WITH ORDINALITY AS e(step, sequence, event_type, event_version, payload, n)
                 JOIN c ON c.step = e.step
                 WHERE e.step IN (SELECT step FROM fresh)
                 ORDER BY e.n
                 RETURNING aggregate_type, aggregate_id, transaction_id, global_position
             ), last AS (
                 SELECT c.step, max(a.transaction_id::text) AS xid,
                        max(a.global_position) AS global_position
                 FROM c JOIN appended a
                      ON a.aggregate_type = c.aggregate_type AND a.aggregate_id = c.aggregate_id
                 GROUP BY c.step
             ), outcome AS (
                 INSERT INTO command_outcomes (command_id, issued_by, status, outcome)
                 SELECT c.command_id, c.issued_by, 'committed',
                        CASE WHEN l.global_position IS NULL THEN c.outcome
                             ELSE c.outcome || jsonb_build_object('position',
                                     l.xid || '.' || l.global_position) END
                 FROM c LEFT JOIN last l ON l.step = c.step
                 WHERE c.last AND c.step IN (SELECT step FROM fresh)
                 ON CONFLICT (command_id) DO NOTHING
                 RETURNING 1
             )
             SELECT l.xid, l.global_position, c.step IN (SELECT step FROM fresh)
             FROM c LEFT JOIN last l ON l.step = c.step
             ORDER BY c.step",
        fresh =
            log::no_event_written_by("c.command_id::text", "c.aggregate_type", "c.aggregate_id"),
    )
});

fn to_json<T: serde::Serialize>(value: T) -> Result<serde_json::Value, sqlx::Error> {
    serde_json::to_value(value).map_err(|e| sqlx::Error::Encode(e.into()))
}
