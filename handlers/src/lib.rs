//! The write side's workers: the command processor (cqrs-es + postgres-es) and the
//! outbox relay (Postgres log -> JetStream `EVENTS`).

pub mod processor;
pub mod relay;
pub mod wake;

pub use processor::Processor;
pub use relay::Relay;
pub use wake::RelayWaker;
