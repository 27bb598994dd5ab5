//! Links mailed for account changes (ADR 29): "forgot password", the reset link, and the
//! link that confirms a new address. The mail reactor makes and mails the links; these
//! routes only take them back.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jukebox_domain::{Command, Email, ErrorCode, PasswordHash};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::access;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::verification::link_token;
use super::{hit, limited};
use crate::commands::{envelope, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ClientAddr};
use crate::password;
use crate::rate_limit::Bucket;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ForgotRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
struct ForgotResponse {
    status: &'static str,
}

/// `POST /auth/forgot-password`: always 202 with the same body, whether or not the
/// address has an account, so it does not tell who has one. Every request counts against
/// the limits (per client address and per address asked for).
#[utoipa::path(post, path = "/auth/forgot-password", tag = "accounts",
    params(CommandHeaders), request_body = ForgotRequest,
    responses((status = 202, body = ForgotResponse),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn forgot_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ForgotRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::unprocessable("invalid_email", e.to_string()))?;
    let keys = [
        (Bucket::ResetAddress, addr.as_str()),
        (Bucket::ResetAccount, email.as_str()),
    ];
    limited(&state, &keys)?;
    hit(&state, &keys);
    // A command goes out for an unknown address too (to an account id nobody has, which
    // the processor refuses), so both cost one round trip and answer alike.
    let user_id = access::by_email(&state.pool, email.as_str())
        .await?
        .map_or_else(Uuid::now_v7, |account| account.user_id);
    let envelope = envelope(&headers, None, Command::RequestPasswordReset { user_id })?;
    send(&state, &envelope).await?;
    // A position would tell that a command wrote, so that the address has an account.
    crate::fresh::forget();
    let body = ForgotResponse {
        status: "if this address has an account, a link to choose a new password is on its way",
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResetRequest {
    /// From the mailed link.
    token: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

/// `POST /auth/reset-password`: the mailed link's token and a new password. Single use,
/// expiring; every session of the account ends, and its owner gets a notice mail.
#[utoipa::path(post, path = "/auth/reset-password", tag = "accounts",
    params(CommandHeaders), request_body = ResetRequest,
    responses((status = 204, description = "the new password works; every session ended"),
        (status = 400, body = ErrorBody, description = "invalid, used or expired link"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a password too short, too long or too common"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn reset_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<Response, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_token",
            "this password reset link is invalid or was already used; ask for a new one",
        )
    };
    let token = link_token(&state, &addr, &body.token, "reset", invalid)?;
    let user_key = token.user_id.to_string();
    let keys = [
        (Bucket::VerifyAddress, addr.as_str()),
        (Bucket::VerifyAccount, user_key.as_str()),
    ];
    let password_hash = new_password_hash(body.password).await?;
    let command = Command::ResetPassword {
        user_id: token.user_id,
        token_hash: token.hash(),
        password_hash,
    };
    let envelope = envelope(&headers, None, command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Some(outcome) => {
            hit(&state, &keys);
            state.metrics.auth_failure("reset");
            match outcome.error {
                Some(error) if error.code == ErrorCode::TokenExpired => {
                    Err(ApiError::bad_request(error.code.as_str(), error.message))
                }
                _ => Err(invalid()),
            }
        }
        None => Err(ApiError::Unavailable(
            "the reset was not answered in time".into(),
        )),
    }
}

/// Hashes a new password after the strength rules (length, common passwords).
pub(crate) async fn new_password_hash(password: String) -> Result<PasswordHash, ApiError> {
    PasswordHash::parse(&password::hash(password).await?)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2 produced {e}")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmEmailRequest {
    /// From the link mailed to the new address.
    token: String,
}

#[derive(Serialize, ToSchema)]
struct EmailConfirmed {
    user_id: Uuid,
    /// The account's address from now on.
    email: String,
}

/// `POST /auth/confirm-email`: the link mailed to a new address. The address is the
/// account's from now on (it signs in with it), and the old one gets a notice.
#[utoipa::path(post, path = "/auth/confirm-email", tag = "accounts",
    params(CommandHeaders), request_body = ConfirmEmailRequest,
    responses((status = 200, body = EmailConfirmed),
        (status = 400, body = ErrorBody, description = "invalid, used or expired link"),
        (status = 403, body = ErrorBody, description = "account disabled"),
        (status = 409, body = ErrorBody, description = "the address has another account now"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn confirm_email(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ConfirmEmailRequest>,
) -> Result<Response, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_token",
            "this confirmation link is invalid or was already used; change the address again",
        )
    };
    let token = link_token(&state, &addr, &body.token, "confirm_email", invalid)?;
    let user_key = token.user_id.to_string();
    let keys = [
        (Bucket::VerifyAddress, addr.as_str()),
        (Bucket::VerifyAccount, user_key.as_str()),
    ];
    let command = Command::ConfirmEmailChange {
        user_id: token.user_id,
        token_hash: token.hash(),
    };
    let envelope = envelope(&headers, None, command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {
            let account = access::by_id(&state.pool, token.user_id)
                .await?
                .ok_or_else(|| ApiError::not_found("no such account"))?;
            Ok(Json(EmailConfirmed {
                user_id: account.user_id,
                email: account.email,
            })
            .into_response())
        }
        Some(outcome) => match outcome.error {
            Some(error)
                if matches!(
                    error.code,
                    ErrorCode::EmailTaken | ErrorCode::AccountDisabled
                ) =>
            {
                Err(error.into())
            }
            Some(error) if error.code == ErrorCode::TokenExpired => {
                Err(ApiError::bad_request(error.code.as_str(), error.message))
            }
            _ => {
                hit(&state, &keys);
                state.metrics.auth_failure("confirm_email");
                Err(invalid())
            }
        },
        None => Err(ApiError::Unavailable(
            "the confirmation was not answered in time".into(),
        )),
    }
}
