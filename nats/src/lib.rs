//! Everything Jukebox says over NATS: names (with the namespace prefix), the JetStream
//! topology, message envelopes and headers, the command bus client the edge uses, and the
//! runtime every durable consumer runs in; with the `sqlx` feature, the event log's one
//! reader (`log`), which every crate reading the Postgres log shares, and the reads of the
//! commands' stored outcomes (`outcomes`) and the users' sealing keys (`user_keys`).
//! `sealed` seals and opens the personal fields of events (ADR 34); `claim_ids` keys the
//! ids of address and identity claims (ADR 43).

pub mod bus;
pub mod claim_ids;
pub mod consumer;
pub mod envelope;
pub mod failpoint;
#[cfg(feature = "sqlx")]
pub mod log;
pub mod metrics;
pub mod names;
#[cfg(feature = "sqlx")]
pub mod outcomes;
pub mod position;
pub mod sealed;
pub mod topology;
#[cfg(feature = "sqlx")]
pub mod user_keys;

pub use bus::{CommandBus, SendError};
pub use consumer::{
    BatchError, BatchHandler, ConsumerError, ConsumerRuntime, InHand, MessageHandler, Settle,
};
pub use envelope::{CommandEnvelope, CommandOutcome, EventRecord, EventRef, OutcomeStatus};
pub use failpoint::{FailPointFired, FailPoints};
pub use metrics::Redeliveries;
pub use names::Namespace;
pub use position::{MalformedPosition, Position};
pub use topology::{Topology, DEFAULT_EVENTS_MAX_AGE};
