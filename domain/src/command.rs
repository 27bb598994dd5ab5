//! The commands that travel on the command bus, and how a rejected one is described.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::value::{Email, PasswordHash};

/// A command as the edge publishes it. Each variant names the aggregate it starts at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Command {
    /// Claims the email address, then creates the user.
    SignUp {
        user_id: Uuid,
        email: Email,
        password_hash: PasswordHash,
    },
    RecordSignIn {
        user_id: Uuid,
    },
}

impl Command {
    /// `<aggregate>.<command>`, the tail of the NATS subject `cmd.<aggregate>.<command>`.
    pub fn subject_suffix(&self) -> &'static str {
        match self {
            Self::SignUp { .. } => "user.signup",
            Self::RecordSignIn { .. } => "user.record_sign_in",
        }
    }
}

/// Why a command was refused: a stable `code` for programs, a `message` for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: String,
    pub message: String,
}

impl CommandError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<crate::EmailClaimError> for CommandError {
    fn from(error: crate::EmailClaimError) -> Self {
        match error {
            crate::EmailClaimError::AlreadyClaimed => Self::new("email_taken", error.to_string()),
        }
    }
}

impl From<crate::UserError> for CommandError {
    fn from(error: crate::UserError) -> Self {
        let code = match error {
            crate::UserError::AlreadySignedUp => "user_exists",
            crate::UserError::UnknownUser => "unknown_user",
        };
        Self::new(code, error.to_string())
    }
}
