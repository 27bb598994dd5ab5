//! Everything Jukebox says over NATS: names (with the namespace prefix), the JetStream
//! topology, message envelopes and headers, and the command bus client the edge uses.

pub mod bus;
pub mod envelope;
pub mod failpoint;
pub mod metrics;
pub mod names;
pub mod topology;

pub use bus::{CommandBus, SendError};
pub use envelope::{CommandEnvelope, CommandOutcome, EventRecord, EventRef, OutcomeStatus};
pub use failpoint::{FailPointFired, FailPoints};
pub use metrics::Redeliveries;
pub use names::Namespace;
pub use topology::Topology;
