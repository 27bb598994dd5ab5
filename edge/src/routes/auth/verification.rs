//! E-mail verification: the mailed token, a new link, and (dev and tests) the token itself.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jukebox_domain::{issue_command_id, Command, Email, ErrorCode};
use jukebox_nats::{EventRef, OutcomeStatus};
use jukebox_projections::access;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{hit, limited};
use crate::commands::{envelope, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ClientAddr};
use crate::rate_limit::Bucket;
use crate::state::AppState;
use crate::tokens::VerificationToken;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyRequest {
    /// From the mailed link.
    token: String,
}

#[derive(Serialize, ToSchema)]
struct Verified {
    verified: bool,
    user_id: Uuid,
}

/// The token of a mailed link (verification, password reset, new address), after the
/// per-address limit and then the per-account one. A token that does not parse counts as
/// a failure (`failure` names it in the metrics) and is answered `invalid()`.
pub(super) fn link_token(
    state: &AppState,
    addr: &str,
    raw: &str,
    failure: &'static str,
    invalid: impl Fn() -> ApiError,
) -> Result<VerificationToken, ApiError> {
    limited(state, &[(Bucket::VerifyAddress, addr)])?;
    let Some(token) = VerificationToken::parse(raw) else {
        hit(state, &[(Bucket::VerifyAddress, addr)]);
        state.metrics.auth_failure(failure);
        return Err(invalid());
    };
    let user_key = token.user_id.to_string();
    limited(
        state,
        &[
            (Bucket::VerifyAddress, addr),
            (Bucket::VerifyAccount, &user_key),
        ],
    )?;
    Ok(token)
}

/// `POST /auth/verify-email`: single use, expiring; only the token's hash is compared.
#[utoipa::path(post, path = "/auth/verify-email", tag = "accounts", params(CommandHeaders),
    request_body = VerifyRequest,
    responses((status = 200, body = Verified),
        (status = 400, body = ErrorBody, description = "invalid, used or expired token"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn verify_email(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_token",
            "this verification link is invalid or was already used; ask for a new one",
        )
    };
    let token = link_token(&state, &addr, &body.token, "verify", invalid)?;
    let user_key = token.user_id.to_string();
    let keys = [
        (Bucket::VerifyAddress, addr.as_str()),
        (Bucket::VerifyAccount, user_key.as_str()),
    ];
    let command = Command::VerifyEmail {
        user_id: token.user_id,
        token_hash: token.hash(),
        admin_bootstrap_email: state.auth.admin_bootstrap_email.clone(),
    };
    let envelope = envelope(&headers, None, command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(Json(Verified {
            verified: true,
            user_id: token.user_id,
        })
        .into_response()),
        Some(outcome) => {
            hit(&state, &keys);
            state.metrics.auth_failure("verify");
            let error = outcome.error.unwrap_or_else(|| {
                jukebox_domain::CommandError::new(ErrorCode::InvalidToken, "invalid token")
            });
            match error.code {
                ErrorCode::TokenExpired => {
                    Err(ApiError::bad_request(error.code.as_str(), error.message))
                }
                _ => Err(invalid()),
            }
        }
        None => Err(ApiError::Unavailable(
            "verification was not answered in time".into(),
        )),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResendRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
struct ResendResponse {
    status: &'static str,
    /// Only with `EXPOSE_VERIFICATION_TOKEN` (development and tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_token: Option<String>,
}

/// `POST /auth/resend-verification`: always 202, whether or not the address has an
/// unverified account, so it does not tell who has signed up.
#[utoipa::path(post, path = "/auth/resend-verification", tag = "accounts",
    params(CommandHeaders), request_body = ResendRequest,
    responses((status = 202, body = ResendResponse),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn resend_verification(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResendRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::unprocessable("invalid_email", e.to_string()))?;
    let keys = [
        (Bucket::SignUpAddress, addr.as_str()),
        (Bucket::SignUpAccount, email.as_str()),
    ];
    limited(&state, &keys)?;
    hit(&state, &keys);
    let mut body = ResendResponse {
        status: "if this address has an account that is not verified yet, a new link is on its way",
        verification_token: None,
    };
    // The user aggregate decides (unknown or verified: nothing happens); the mail reactor
    // answers `VerificationRequested` with a new link.
    if let Some(account) = access::by_email(&state.pool, email.as_str()).await? {
        let command = Command::RequestVerification {
            user_id: account.user_id,
        };
        let envelope = envelope(&headers, None, command)?;
        if let Some(outcome) = send(&state, &envelope).await? {
            let requested = outcome
                .events
                .iter()
                .find(|e| e.event_type == "VerificationRequested");
            if let Some(event) = requested {
                body.verification_token = exposed_token(&state, event).await?;
            }
        }
    }
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Dev and tests only (`EXPOSE_VERIFICATION_TOKEN`): the token the mail reactor makes for
/// `event` (derived from the event's id), once the reactor has committed its hash, so the
/// caller can verify at once. `None` when not exposing, or not committed within the
/// command wait.
pub async fn exposed_token(state: &AppState, event: &EventRef) -> Result<Option<String>, ApiError> {
    if !state.auth.expose_verification_token {
        return Ok(None);
    }
    let Ok(user_id) = event.aggregate_id.parse::<Uuid>() else {
        return Ok(None);
    };
    let event_id = format!(
        "{}:{}:{}",
        event.aggregate_type, event.aggregate_id, event.sequence
    );
    let token = VerificationToken::derive(&state.auth.verification_key, user_id, &event_id);
    let issued = tokio::time::timeout(
        state.command_wait,
        crate::commands::stored_outcome_soon(state, issue_command_id(&event_id)),
    )
    .await;
    let Ok(outcome) = issued else {
        return Ok(None);
    };
    Ok((outcome?.status == OutcomeStatus::Committed).then(|| token.as_str().to_owned()))
}
