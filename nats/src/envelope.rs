//! Message shapes on the bus: plain JSON an operator can read with `nats sub`.

use jukebox_domain::{Command, CommandError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// What the edge publishes to `cmd.<aggregate>.<command>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    /// The authenticated user who issued it; `None` for anonymous commands (sign-up).
    pub issued_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Committed,
    Rejected,
}

/// One event a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
}

/// The processor's answer to a command, sent on the reply subject after commit and kept
/// for `GET /commands/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandOutcome {
    pub command_id: Uuid,
    pub status: OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommandError>,
    #[serde(default)]
    pub events: Vec<EventRef>,
    /// Where the last event the command wrote lies in relay order, as the opaque token
    /// `<transaction_id>.<global_position>` (`jukebox_projections::Position`): a read
    /// that passes it sees every read model it reads caught up to this command. `None`
    /// when the command wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

/// An event as the relay publishes it to `evt.<aggregate>.<id>.<EventType>`: one row of
/// the Postgres log. `(transaction_id, global_position)` is the relay order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct EventRecord {
    pub global_position: i64,
    /// `xid8` as a decimal string: it does not fit JSON numbers everywhere.
    pub transaction_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

impl EventRecord {
    /// The relay-order key projections checkpoint on.
    /// The columns to select from `events` to read an `EventRecord`.
    pub const COLUMNS: &'static str = "global_position, transaction_id::text AS transaction_id, \
        aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, \
        recorded_at";

    pub fn position(&self) -> (u64, i64) {
        (
            self.transaction_id.parse().unwrap_or(0),
            self.global_position,
        )
    }

    /// Decodes the payload into an aggregate's event enum.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        serde_json::from_value(self.payload.clone())
    }

    /// A metadata field such as `command_id` or `correlation_id`.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}
