//! A step's commit: its events, the access state they change and, on the last step, the
//! command's outcome, in one statement.

use std::collections::HashMap;

use cqrs_es::DomainEvent;
use jukebox_nats::{log, CommandOutcome, EventRef, OutcomeStatus};
use tracing::{debug_span, Instrument};

use super::run::Run;
use crate::access::{AccessState, ACCESS_CTES};

impl Run<'_> {
    /// Appends the events to postgres-es' `events` table (its columns, its primary key
    /// as the optimistic-concurrency check), writes the access state they change
    /// (`access.rs`) and, for the last step, stores the outcome, in one statement: one
    /// round trip and one commit. A conflict leaves nothing behind.
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
        let mut committed = self.committed.lock().expect("run lock").clone();
        committed.extend(refs.iter().cloned());
        let outcome = CommandOutcome {
            command_id: self.envelope.command_id,
            status: OutcomeStatus::Committed,
            error: None,
            position: self.position_token(),
            events: committed,
        };
        // The position is only known inside the statement: the stored outcome gets this
        // step's (or, when it appended nothing, the earlier steps') from `RETURNING`.
        let (xid, global_position, fresh): (Option<String>, Option<i64>, bool) =
            sqlx::query_as(COMMIT_SQL.as_str())
                .bind(A::TYPE)
                .bind(aggregate_id)
                .bind(refs.iter().map(|r| r.sequence).collect::<Vec<_>>())
                .bind(
                    refs.iter()
                        .map(|r| r.event_type.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(versions)
                .bind(sqlx::types::Json(self.metadata()))
                .bind(payloads)
                .bind(self.envelope.command_id)
                .bind(self.envelope.issued_by)
                .bind(sqlx::types::Json(&outcome))
                .bind(last)
                .bind(user_access.transpose()?)
                .bind(session_access.transpose()?)
                .fetch_one(&self.processor.pool)
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

/// `Run::commit`'s statement: the events, the outcome (last step only, with the position
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

fn to_json<T: serde::Serialize>(value: T) -> Result<serde_json::Value, sqlx::Error> {
    serde_json::to_value(value).map_err(|e| sqlx::Error::Encode(e.into()))
}
