//! One error type for every handler: 4xx carry a stable code and a message a person can
//! act on; 5xx are opaque to the client and logged once, with their cause chain.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jukebox_domain::{CommandError, ErrorCode};
use serde_json::json;

/// The body of every error answer (OpenAPI schema; `IntoResponse` below writes it).
#[derive(utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_limit`, `not_admin`, `rate_limited`, ...
    #[schema(example = "invalid_limit")]
    pub code: String,
    /// For a person: what went wrong and what to do about it.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Client {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("a service this request needs is unavailable: {0}")]
    Unavailable(String),
    /// 429 with `Retry-After`.
    #[error("too many attempts")]
    RateLimited(std::time::Duration),
    /// 429 with `Retry-After` and a message of its own; `{seconds}` in it is replaced by
    /// the wait.
    #[error("{message}")]
    Throttled {
        wait: std::time::Duration,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::Client {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
}

/// A refused command's answer: each code's HTTP status, decided here once.
impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        let status = match error.code {
            ErrorCode::EmailTaken
            | ErrorCode::UserExists
            | ErrorCode::IdentityLinked
            | ErrorCode::ProviderLinked
            | ErrorCode::LastSignInMethod => StatusCode::CONFLICT,
            ErrorCode::IdentityNotLinked => StatusCode::NOT_FOUND,
            ErrorCode::UnknownUser
            | ErrorCode::AccountErased
            | ErrorCode::NotInLibrary
            | ErrorCode::UnknownCredential => StatusCode::NOT_FOUND,
            ErrorCode::CredentialExists | ErrorCode::TooManyCredentials => StatusCode::CONFLICT,
            ErrorCode::UnknownPlaylist | ErrorCode::UnknownPlaylistEntry => StatusCode::NOT_FOUND,
            ErrorCode::NotPlaylistOwner => StatusCode::FORBIDDEN,
            ErrorCode::PlaylistExists | ErrorCode::PlaylistFull => StatusCode::CONFLICT,
            ErrorCode::InvalidPlaylistName
            | ErrorCode::InvalidPlaylistDescription
            | ErrorCode::PositionOutOfRange => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::AccountDisabled | ErrorCode::EmailNotVerified | ErrorCode::NotAdmin => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::InvalidSession | ErrorCode::SessionRevoked | ErrorCode::SessionExpired => {
                StatusCode::UNAUTHORIZED
            }
            ErrorCode::InvalidToken
            | ErrorCode::TokenExpired
            | ErrorCode::AlreadyVerified
            | ErrorCode::SessionExists
            | ErrorCode::JobExists
            | ErrorCode::UnknownJob
            | ErrorCode::JobFinished
            | ErrorCode::TrackStored
            | ErrorCode::TrackNotStored
            | ErrorCode::InvalidCredentialName
            | ErrorCode::InvalidItem
            | ErrorCode::InvalidPlayTime
            | ErrorCode::SameEmail
            | ErrorCode::InvalidPlayQueue
            | ErrorCode::TooManyEntries => StatusCode::UNPROCESSABLE_ENTITY,
            // The id is the user's own: another user's id cannot come from this edge.
            ErrorCode::NotCollectionOwner => StatusCode::FORBIDDEN,
            ErrorCode::UnknownSubscription => StatusCode::NOT_FOUND,
            ErrorCode::AlreadySubscribed
            | ErrorCode::SubscriptionPaused
            | ErrorCode::SubscriptionNotPaused
            | ErrorCode::StaleCheck => StatusCode::CONFLICT,
            ErrorCode::InvalidLatest => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, error.code.as_str(), error.message)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        // 22021: text Postgres cannot store. Rust strings are UTF-8, so that is a NUL
        // character, and it came from the request (schemathesis sent `q=2%00`).
        if let sqlx::Error::Database(db) = &error {
            if db.code().as_deref() == Some("22021") {
                return Self::bad_request(
                    "nul_character",
                    "text in this request contains a NUL character (%00), which is never valid here",
                );
            }
            // Class 22 is "data exception": a value Postgres cannot take (out of range,
            // malformed, too long). Every value in our queries comes from the request or
            // from rows Postgres already accepted, so it is the request's fault: 400.
            if let Some(code) = db.code().filter(|code| code.starts_with("22")) {
                tracing::warn!(sqlstate = %code, error = %db, "a request's value was refused by Postgres");
                return Self::bad_request(
                    "invalid_value",
                    format!(
                        "a value in this request is out of range or malformed \
                         (SQLSTATE {code}); check the parameters and try again"
                    ),
                );
            }
        }
        let unavailable = match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| server_going_away(&code)),
            _ => false,
        };
        if unavailable {
            Self::Unavailable(format!("database: {error}"))
        } else {
            let code = match &error {
                sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
                _ => None,
            };
            let context = format!(
                "database query (SQLSTATE {})",
                code.as_deref().unwrap_or("-")
            );
            Self::Internal(anyhow::Error::new(error).context(context))
        }
    }
}

/// SQLSTATEs of a server that is stopping, starting or unreachable: a restart of
/// Postgres, not a bug. Class 08 is "connection exception"; 57P01-57P03 are admin
/// shutdown, crash shutdown and "cannot connect now" (still starting or recovering).
fn server_going_away(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// A wait in whole seconds, rounded up, at least 1.
fn whole_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let (status, code, message) = match self {
            Self::RateLimited(wait) => {
                let seconds = whole_seconds(wait);
                retry_after = Some(seconds);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited".to_owned(),
                    format!("too many attempts; try again in {seconds} seconds"),
                )
            }
            Self::Throttled {
                wait,
                code,
                message,
            } => {
                let seconds = whole_seconds(wait);
                retry_after = Some(seconds);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    code.to_owned(),
                    message.replace("{seconds}", &seconds.to_string()),
                )
            }
            Self::Client {
                status,
                code,
                message,
            } => (status, code, message),
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "dependency unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable".to_owned(),
                    "Jukebox is temporarily unavailable; please try again in a moment.".to_owned(),
                )
            }
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal".to_owned(),
                    "Something went wrong on our side; it has been logged.".to_owned(),
                )
            }
        };
        let mut response = (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopping_or_starting_database_is_unavailable_not_a_bug() {
        for code in ["57P01", "57P02", "57P03", "08006", "08001"] {
            assert!(server_going_away(code), "{code}");
        }
        for code in ["23505", "42P01", "40001"] {
            assert!(!server_going_away(code), "{code}");
        }
        let timed_out = ApiError::from(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(timed_out.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
