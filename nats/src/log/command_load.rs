//! What the processor loads for a step of a command: the aggregate's events and, when
//! asked, the command's stored outcome and a new library entry's seed, in one round trip
//! (ADR 22); the loads of concurrent commands in one statement (ADR 52).

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::envelope::CommandOutcome;

/// What the processor loads for one step of a command ([`for_commands`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CommandLoad {
    /// The command was answered before (a redelivery): its stored outcome, nothing else.
    Answered(CommandOutcome),
    /// The aggregate's events as `(sequence, payload JSON text)`, in order, and the seed
    /// asked for (its payload), if the log holds one.
    Events {
        events: Vec<(i64, String)>,
        seed: Option<String>,
    },
}

/// One step's load: an aggregate and what to bring with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadKey {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The stored outcome of this command id; when there is one, only it comes back (the
    /// plan's first aggregate is known before any I/O, so a redelivered command costs no
    /// separate outcome lookup).
    pub answered: Option<Uuid>,
    /// `(user_id, track_id)`: the last event about that track in the user's per-user
    /// `library` stream written before issue 16, which seeds a new library entry. The
    /// literals match the partial index `events_legacy_library_track`.
    pub legacy_library: Option<(String, String)>,
}

/// One step's load ([`for_commands`] of one key).
pub async fn for_command<'e, E: PgExecutor<'e>>(
    executor: E,
    key: LoadKey,
) -> Result<CommandLoad, sqlx::Error> {
    let mut loads = for_commands(executor, std::slice::from_ref(&key)).await?;
    Ok(loads.pop().expect("one load per key"))
}

/// The loads of several steps in one statement, in the order of `keys`; each as the
/// step's own statement would have read it, all from one snapshot. An answered command's
/// events are read too and dropped here (redeliveries are rare; one statement for all
/// loads is not).
pub async fn for_commands<'e, E: PgExecutor<'e>>(
    executor: E,
    keys: &[LoadKey],
) -> Result<Vec<CommandLoad>, sqlx::Error> {
    const SQL: &str = "WITH r AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[])
                 WITH ORDINALITY AS r(aggregate_type, aggregate_id, command_id, user_id, track_id, n)
         )
         SELECT r.n, 0 AS part, 0::bigint AS sequence, o.outcome::text AS body
             FROM r JOIN command_outcomes o ON o.command_id = r.command_id
         UNION ALL SELECT r.n, 1, 0, seed.body FROM r CROSS JOIN LATERAL (
             SELECT payload::text AS body FROM events
             WHERE aggregate_type = 'library' AND aggregate_id = r.user_id
               AND (payload -> event_type) ->> 'track_id' = r.track_id
             ORDER BY sequence DESC LIMIT 1
         ) seed
         UNION ALL SELECT r.n, 2, e.sequence, e.payload::text
             FROM r JOIN events e
               ON e.aggregate_type = r.aggregate_type AND e.aggregate_id = r.aggregate_id
         ORDER BY 1, 2, 3";
    let mut types = Vec::with_capacity(keys.len());
    let mut ids = Vec::with_capacity(keys.len());
    let mut answered = Vec::with_capacity(keys.len());
    let mut users = Vec::with_capacity(keys.len());
    let mut tracks = Vec::with_capacity(keys.len());
    for key in keys {
        types.push(key.aggregate_type.as_str());
        ids.push(key.aggregate_id.as_str());
        answered.push(key.answered);
        let (user, track) = key.legacy_library.as_ref().map(|(u, t)| (u, t)).unzip();
        users.push(user.map(String::as_str));
        tracks.push(track.map(String::as_str));
    }
    let rows: Vec<(i64, i32, i64, String)> = sqlx::query_as(SQL)
        .bind(&types)
        .bind(&ids)
        .bind(&answered)
        .bind(&users)
        .bind(&tracks)
        .fetch_all(executor)
        .await?;
    let mut loads: Vec<CommandLoad> = (0..keys.len())
        .map(|_| CommandLoad::Events {
            events: Vec::new(),
            seed: None,
        })
        .collect();
    for (n, part, sequence, body) in rows {
        let load = usize::try_from(n - 1)
            .ok()
            .and_then(|i| loads.get_mut(i))
            .ok_or_else(|| {
                sqlx::Error::Protocol(format!("a load for key {n} of {}", keys.len()))
            })?;
        match (part, &mut *load) {
            // Rows come by part: the outcome, if any, is the key's first row.
            (0, _) => {
                let outcome =
                    serde_json::from_str(&body).map_err(|e| sqlx::Error::Decode(e.into()))?;
                *load = CommandLoad::Answered(outcome);
            }
            (_, CommandLoad::Answered(_)) => {}
            (1, CommandLoad::Events { seed, .. }) => *seed = Some(body),
            (_, CommandLoad::Events { events, .. }) => events.push((sequence, body)),
        }
    }
    Ok(loads)
}
