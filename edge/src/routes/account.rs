//! `/me/password` and `/me/email`: the owner changes the password (every other device is
//! signed out) or the address (it counts once a link mailed to it is followed; the old
//! address gets a notice). Both ask for the current password first (ADR 29).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jukebox_domain::{Command, Email};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::access;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser, ClientAddr};
use crate::password;
use crate::rate_limit::Bucket;
use crate::routes::auth::{limited, new_password_hash};
use crate::routes::devices::renew;
use crate::state::AppState;
use crate::tokens::RefreshToken;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me/password", post(change_password))
        .route("/me/email", post(change_email))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(change_password, change_email))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// `POST /me/password`: the new password counts at once; every session ends, and this
/// device gets a new one (access token in the body, refresh token in the cookie). The
/// account's address gets a notice.
#[utoipa::path(post, path = "/me/password", tag = "accounts", security(("bearer" = [])),
    params(CommandHeaders), request_body = PasswordChange,
    responses((status = 200, body = super::auth::SessionResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "the current password is wrong, or the account has none (Google: use \"Forgot password\" to set one)"),
        (status = 409, body = ErrorBody, description = "an Idempotency-Key replayed: credentials are never answered twice"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a new password too short, too long or too common"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn change_password(
    user: AuthUser,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    if crate::idempotency::is_replay(&headers) {
        return Err(crate::idempotency::replayed());
    }
    check_password(&state, &user, &addr, Some(body.current_password), true).await?;
    let password_hash = new_password_hash(body.new_password).await?;
    let session_id = Uuid::new_v4();
    let refresh = RefreshToken::generate(session_id, user.user_id);
    let command = Command::ChangePassword {
        user_id: user.user_id,
        password_hash,
        session_id,
        refresh_token_hash: refresh.hash(),
        session_expires_at: OffsetDateTime::now_utc() + state.auth.session_ttl,
    };
    renew(
        &state, &headers, &addr, &user, command, session_id, &refresh,
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    /// The new address; a link is mailed to it.
    email: String,
    /// The current password (accounts without one, made with Google, leave it out).
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct EmailChangePending {
    status: &'static str,
    /// The address the link went to; the account keeps its current one until then.
    pending_email: String,
}

/// `POST /me/email`: mails a confirmation link to the new address (202). Until it is
/// followed the account keeps its address; a newer request replaces the link.
#[utoipa::path(post, path = "/me/email", tag = "accounts", security(("bearer" = [])),
    params(CommandHeaders), request_body = EmailChangeRequest,
    responses((status = 202, body = EmailChangePending),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "the password is wrong"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not an address, or the account's own"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn change_email(
    user: AuthUser,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EmailChangeRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::unprocessable("invalid_email", e.to_string()))?;
    check_password(&state, &user, &addr, body.password, false).await?;
    let command = Command::RequestEmailChange {
        user_id: user.user_id,
        email: email.clone(),
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {}
        Some(outcome) => return Err(rejection(outcome)),
        None => return Err(ApiError::Unavailable("not answered in time".into())),
    }
    let body = EmailChangePending {
        status: "a link is on its way to the new address; the change counts once it is followed",
        pending_email: email.as_str().to_owned(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The caller's current password, checked like a sign-in (same limits). An account
/// without a password (Google) passes unless `required`.
pub(crate) async fn check_password(
    state: &AppState,
    user: &AuthUser,
    addr: &str,
    presented: Option<String>,
    required: bool,
) -> Result<(), ApiError> {
    let keys = [
        (Bucket::SignInAddress, addr),
        (Bucket::SignInAccount, user.account.email.as_str()),
    ];
    limited(state, &keys)?;
    let stored = access::by_id(&state.pool, user.user_id)
        .await?
        .and_then(|a| a.password_hash);
    if stored.is_none() && !required {
        return Ok(());
    }
    if stored.is_none() {
        return Err(ApiError::forbidden(
            "no_password",
            "this account signs in with Google and has no password; use \"Forgot password\" \
             to set one",
        ));
    }
    let checked = password::verify(stored, presented.unwrap_or_default()).await?;
    if !checked.ok {
        for (bucket, key) in keys {
            state.limiter.hit(bucket, key);
        }
        state.metrics.auth_failure("password_check");
        return Err(ApiError::forbidden(
            "wrong_password",
            "the current password is wrong",
        ));
    }
    Ok(())
}
