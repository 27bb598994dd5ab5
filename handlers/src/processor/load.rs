//! Loading an aggregate for a step: its events folded into its state, in one round trip
//! that also brings the command's stored outcome on the first step and a new library
//! entry's seed (ADR 22). No cqrs-es event store on this path: no upcasters are
//! registered, so folding the stored payloads is all its load did.

use cqrs_es::Aggregate;
use jukebox_nats::log::{self, CommandLoad};
use jukebox_nats::{sealed, user_keys};
use tracing::{debug_span, Instrument};

use super::{ProcessError, Processor};

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
        let found = log::for_command(
            &self.pool,
            A::TYPE,
            aggregate_id,
            with.answered,
            with.legacy_library,
        )
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
