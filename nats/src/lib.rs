//! Everything Jukebox says over NATS: names (with the namespace prefix), the JetStream
//! topology, message envelopes and headers, the command bus client the edge uses, and the
//! runtime every durable consumer runs in.

pub mod bus;
pub mod consumer;
pub mod envelope;
pub mod failpoint;
pub mod metrics;
pub mod names;
pub mod topology;

pub use bus::{CommandBus, SendError};
pub use consumer::{
    BatchError, BatchHandler, ConsumerError, ConsumerRuntime, InHand, MessageHandler, Settle,
};
pub use envelope::{CommandEnvelope, CommandOutcome, EventRecord, EventRef, OutcomeStatus};
pub use failpoint::{FailPointFired, FailPoints};
pub use metrics::Redeliveries;
pub use names::Namespace;
pub use topology::Topology;
