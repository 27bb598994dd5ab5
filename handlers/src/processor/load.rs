//! Loading an aggregate for a step: its events folded into its state, in one round trip
//! that also brings the command's stored outcome on the first step and a new library
//! entry's seed (ADR 22); the loads of concurrent commands share one statement (ADR 52).
//! No cqrs-es event store on this path: no upcasters are registered, so folding the
//! stored payloads is all its load did.

use cqrs_es::Aggregate;
use jukebox_nats::log::{self, CommandLoad, LoadKey};
use jukebox_nats::{sealed, user_keys};
use tokio::sync::oneshot;
use tracing::{debug, debug_span, Instrument};

use super::group::Grouped;
use super::{ProcessError, Processor};

struct Request {
    key: LoadKey,
    reply: oneshot::Sender<Result<CommandLoad, sqlx::Error>>,
}

/// The queue the processor's loads wait in, and its workers: a free worker loads every
/// step waiting in one statement, so a lone command loads alone and a busy processor
/// loads in groups about as large as the commands in flight.
#[derive(Clone)]
pub(crate) struct LoadGroup {
    requests: Grouped<Request>,
}

impl LoadGroup {
    pub fn start(pool: sqlx::PgPool, workers: usize) -> Self {
        let requests = Grouped::start(workers, move |group| load_group(pool.clone(), group));
        Self { requests }
    }

    async fn load(&self, pool: &sqlx::PgPool, key: LoadKey) -> Result<CommandLoad, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        match self.requests.send(Request { key, reply }).await {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(sqlx::Error::WorkerCrashed)),
            // No worker (shutting down): load it here.
            Err(request) => log::for_command(pool, request.key).await,
        }
    }
}

/// Loads a group in one statement; when that fails, each step alone, so each gets its
/// own answer.
async fn load_group(pool: sqlx::PgPool, group: Vec<Request>) {
    let (keys, replies): (Vec<LoadKey>, Vec<_>) =
        group.into_iter().map(|r| (r.key, r.reply)).unzip();
    match log::for_commands(&pool, &keys).await {
        Ok(loads) => {
            for (reply, load) in replies.into_iter().zip(loads) {
                let _ = reply.send(Ok(load));
            }
        }
        Err(error) => {
            debug!(%error, steps = keys.len(), "group load failed; loading its steps one by one");
            for (reply, key) in replies.into_iter().zip(keys) {
                let _ = reply.send(log::for_command(&pool, key).await);
            }
        }
    }
}

/// An aggregate as loaded: its state and the sequence of its last event (0: none yet).
pub(super) struct Loaded<A> {
    pub aggregate: A,
    pub sequence: usize,
}

/// What a step's load found.
pub(super) enum Load<A> {
    /// The command already has a stored outcome (asked for on the first step only).
    Answered(jukebox_nats::CommandOutcome),
    Loaded(Loaded<A>),
}

/// What to load with the aggregate.
#[derive(Clone, Copy, Default)]
pub(super) struct With<'a> {
    /// Also look up this command's stored outcome.
    pub answered: Option<uuid::Uuid>,
    /// `(user_id, track_id)`: start an entry with no events from the user's per-user
    /// `library` written before issue 16.
    pub legacy_library: Option<(&'a str, &'a str)>,
}

impl Processor {
    pub(super) async fn load<A: Aggregate>(
        &self,
        aggregate_id: &str,
        with: With<'_>,
    ) -> Result<Load<A>, ProcessError> {
        let key = LoadKey {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            answered: with.answered,
            legacy_library: with
                .legacy_library
                .map(|(user, track)| (user.to_owned(), track.to_owned())),
        };
        let found = async {
            match &self.loads {
                Some(group) => group.load(&self.pool, key).await,
                None => log::for_command(&self.pool, key).await,
            }
        }
        .instrument(debug_span!("processor.load", aggregate = A::TYPE))
        .await?;
        let (events, seed) = match found {
            CommandLoad::Answered(outcome) => return Ok(Load::Answered(outcome)),
            CommandLoad::Events { events, seed } => (events, seed),
        };
        let mut aggregate = A::default();
        let mut sequence = 0;
        if events.is_empty() {
            if let Some(seed) = seed {
                aggregate.apply(decode::<A>(&seed)?);
            }
        }
        if events.iter().any(|(_, p)| p.contains(sealed::PREFIX)) {
            // Personal fields sealed per user (ADR 34): opened with the keys that exist.
            let mut payloads = events
                .iter()
                .map(|(_, p)| serde_json::from_str(p))
                .collect::<Result<Vec<serde_json::Value>, _>>()
                .map_err(|e| ProcessError::Store(format!("{} event: {e}", A::TYPE)))?;
            user_keys::open_values(&self.pool, &mut payloads, sealed::ERASED_ADDRESS).await?;
            for ((at, _), payload) in events.iter().zip(payloads) {
                aggregate.apply(
                    serde_json::from_value(payload)
                        .map_err(|e| ProcessError::Store(format!("{} event: {e}", A::TYPE)))?,
                );
                sequence = *at as usize;
            }
        } else {
            for (at, payload) in events {
                aggregate.apply(decode::<A>(&payload)?);
                sequence = at as usize;
            }
        }
        Ok(Load::Loaded(Loaded {
            aggregate,
            sequence,
        }))
    }

    /// The aggregate's state now, without outcome or seed.
    pub(super) async fn load_state<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Loaded<A>, ProcessError> {
        match self.load::<A>(aggregate_id, With::default()).await? {
            Load::Loaded(loaded) => Ok(loaded),
            Load::Answered(_) => Err(ProcessError::Store(
                "an outcome came back though none was asked for".to_owned(),
            )),
        }
    }
}

fn decode<A: Aggregate>(payload: &str) -> Result<A::Event, ProcessError> {
    serde_json::from_str(payload)
        .map_err(|e| ProcessError::Store(format!("{} event: {e}", A::TYPE)))
}
