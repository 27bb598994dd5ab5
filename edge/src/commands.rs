//! Sending commands from a route: the envelope (with `Idempotency-Key`), the bounded wait
//! for the outcome, and a rejection as its HTTP answer. Every command-sending route uses
//! these; they are here, not in `api`, so no route module imports the router.

use axum::http::HeaderMap;
use jukebox_domain::Command;
use jukebox_nats::outcomes;
use jukebox_nats::{CommandEnvelope, CommandOutcome, SendError};
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The headers every command-sending route reads.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read from the `HeaderMap` by `envelope`; here for the document
pub(crate) struct CommandHeaders {
    /// A retried request with the same key (per caller, route and request) is the same
    /// command, applied once and answered as the first time; the key with another request
    /// is 422. Routes that issue credentials refuse a replay (409).
    #[serde(rename = "Idempotency-Key")]
    #[param(min_length = 1, max_length = 255, pattern = "^[ -~]+$")]
    idempotency_key: Option<String>,
    /// Anonymous routes: the client's nonce (16 to 128 visible ASCII characters, one per
    /// browser tab), the caller an `Idempotency-Key` is scoped to; required with a key.
    #[serde(rename = "X-Client-Nonce")]
    #[param(min_length = 16, max_length = 128, pattern = "^[!-~]+$")]
    client_nonce: Option<String>,
}

/// Builds the envelope. `Idempotency-Key` makes a retried request the same command: its id
/// is derived from the caller (the user, or on anonymous routes the client's nonce, as
/// `idempotency::scope` recorded it), the command's kind and the key, so one caller cannot
/// collide with another's, nor one route with another.
pub(crate) fn envelope(
    headers: &HeaderMap,
    issued_by: Option<Uuid>,
    command: Command,
) -> Result<CommandEnvelope, ApiError> {
    let command_id = match headers.get("idempotency-key") {
        None => Uuid::now_v7(),
        Some(key) => {
            let key = key
                .to_str()
                .ok()
                // `to_str` lets a tab through; the document says printable ASCII.
                .filter(|k| {
                    (1..=255).contains(&k.len()) && k.bytes().all(|b| (b' '..=b'~').contains(&b))
                })
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?;
            let issuer = match (issued_by, crate::idempotency::nonce(headers)) {
                (Some(user), _) => user.to_string(),
                (None, Some(nonce)) => format!("nonce:{nonce}"),
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "missing_client_nonce",
                        "an Idempotency-Key on this route needs an `X-Client-Nonce` header",
                    ))
                }
            };
            // The kind is part of it: a key reused on another route is another command,
            // never the first one's answer (schemathesis reused keys across routes).
            let kind = command.subject_suffix();
            Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("jukebox:{issuer}:{kind}:{key}").as_bytes(),
            )
        }
    };
    let correlation_id = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::now_v7);
    Ok(CommandEnvelope {
        command_id,
        correlation_id,
        issued_by,
        issued_at: OffsetDateTime::now_utc(),
        command,
    })
}

/// The envelope of a command that hands out credentials (sign-in, refresh, Google): always
/// a fresh command id, so a token is only ever answered by the request that made it. A
/// replayed key is refused before (`idempotency::replayed`).
pub(crate) fn credential_envelope(
    headers: &HeaderMap,
    issued_by: Option<Uuid>,
    command: Command,
) -> Result<CommandEnvelope, ApiError> {
    let mut headers = headers.clone();
    headers.remove("idempotency-key");
    envelope(&headers, issued_by, command)
}

/// Sends the command and waits (bounded) for its outcome; the outcome's position goes
/// into the request's answer (`crate::fresh`).
pub(crate) async fn send(
    state: &AppState,
    envelope: &CommandEnvelope,
) -> Result<Option<CommandOutcome>, ApiError> {
    let outcome = send_and_wait(state, envelope).await?;
    if let Some(outcome) = &outcome {
        crate::fresh::record(outcome.position.as_deref());
    }
    Ok(outcome)
}

async fn send_and_wait(
    state: &AppState,
    envelope: &CommandEnvelope,
) -> Result<Option<CommandOutcome>, ApiError> {
    let sent = state.bus.send(envelope, state.command_wait);
    // A retry (its id comes from an Idempotency-Key: UUIDv5) of a command that is running
    // or ran: JetStream drops the duplicate publish, so no answer comes to this request.
    // Watch for the first one's stored outcome instead of waiting out the command wait.
    let answer = if envelope.command_id.get_version_num() == 5 {
        tokio::select! {
            answer = sent => answer,
            stored = stored_outcome_soon(state, envelope.command_id) => return stored.map(Some),
        }
    } else {
        sent.await
    };
    match answer {
        Ok(Some(outcome)) => Ok(Some(outcome)),
        // Not answered in time (or a duplicate whose first answer went elsewhere): the
        // outcome may already be stored.
        Ok(None) => stored_outcome(state, envelope.command_id).await,
        Err(SendError::Unavailable(cause)) => Err(ApiError::Unavailable(cause)),
    }
}

/// The stored outcome, once there is one (polled; the caller bounds the wait).
pub(crate) async fn stored_outcome_soon(
    state: &AppState,
    command_id: Uuid,
) -> Result<CommandOutcome, ApiError> {
    loop {
        if let Some(outcome) = stored_outcome(state, command_id).await? {
            return Ok(outcome);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn stored_outcome(
    state: &AppState,
    command_id: Uuid,
) -> Result<Option<CommandOutcome>, ApiError> {
    Ok(outcomes::get(&state.pool, command_id).await?)
}

/// A refused command's answer; each code's status is decided in `crate::error`.
pub(crate) fn rejection(outcome: CommandOutcome) -> ApiError {
    match outcome.error {
        Some(error) => error.into(),
        None => ApiError::unprocessable("rejected", "the command was rejected"),
    }
}
