//! Erasure (issue 21, ADR 42): `DELETE /me` (re-authenticated) and
//! `DELETE /admin/users/{id}`. The command releases the address and linked identities and
//! records `UserErased`, destroying the user's key in that commit; the read models then
//! delete the user's rows.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::delete;
use axum::{Json, Router};
use jukebox_domain::{Command, SignInMethod};
use jukebox_nats::{log, OutcomeStatus};
use jukebox_projections::access;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, ApiJson, AuthUser, ClientAddr};
use crate::routes::account::check_password;
use crate::routes::auth::refresh_cookie;
use crate::state::AppState;

/// How recent a Google sign-in must be to erase an account that has no password.
pub const RECENT_SIGN_IN: time::Duration = time::Duration::minutes(5);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", delete(erase_me))
        .route("/admin/users/{user_id}", delete(erase_user))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(erase_me, erase_user))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// The current password. An account without one (made with Google) leaves it out and
    /// must have signed in with Google in the last 5 minutes instead.
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Erased {
    user_id: Uuid,
    erased: bool,
}

/// `DELETE /me`: erases the caller's account for good. Its personal data can no longer
/// be read anywhere, its library, playlists, favourites, plays and devices are deleted,
/// every session ends (the refresh cookie is cleared) and the address may sign up again.
#[utoipa::path(delete, path = "/me", tag = "accounts", security(("bearer" = [])),
    params(CommandHeaders), request_body = EraseRequest,
    responses((status = 200, body = Erased),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "no password or a wrong one, or (an account without a password) no Google sign-in in the last 5 minutes"),
        (status = 404, body = ErrorBody, description = "the account is already erased"),
        (status = 409, body = ErrorBody, description = "the last admin, or an Idempotency-Key replayed"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn erase_me(
    user: AuthUser,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EraseRequest>,
) -> Result<Response, ApiError> {
    reauthenticate(&state, &user, &addr, body.password).await?;
    if user.is_admin() && access::other_admins(&state.pool, user.user_id).await? == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "you are the only admin: make someone else admin before deleting your account",
        ));
    }
    erase(&state, &headers, user.user_id, user.user_id).await?;
    let body = Erased {
        user_id: user.user_id,
        erased: true,
    };
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, refresh_cookie(&state, None))],
        Json(body),
    )
        .into_response())
}

/// `DELETE /admin/users/{id}`: an admin erases someone else's account (their own goes
/// through `DELETE /me`, which asks for the password).
#[utoipa::path(delete, path = "/admin/users/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path), CommandHeaders),
    responses((status = 200, body = Erased), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such user, or already erased"),
        (status = 409, body = ErrorBody, description = "my own account"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn erase_user(
    admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Erased>, ApiError> {
    let user_id = Uuid::parse_str(&raw)
        .map_err(|_| ApiError::unprocessable("invalid_user_id", "the user id must be a UUID"))?;
    if admin.0.user_id == user_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "own_account",
            "delete your own account from your account page (DELETE /me), which asks for \
             your password",
        ));
    }
    erase(&state, &headers, admin.0.user_id, user_id).await?;
    Ok(Json(Erased {
        user_id,
        erased: true,
    }))
}

async fn erase(
    state: &AppState,
    headers: &HeaderMap,
    issuer: Uuid,
    user_id: Uuid,
) -> Result<(), ApiError> {
    if crate::idempotency::is_replay(headers) {
        return Err(crate::idempotency::replayed());
    }
    let envelope = envelope(headers, Some(issuer), Command::EraseUser { user_id })?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(()),
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}

/// The password (checked like a sign-in, same limits), or for an account without one a
/// Google sign-in of this session in the last [`RECENT_SIGN_IN`].
async fn reauthenticate(
    state: &AppState,
    user: &AuthUser,
    addr: &str,
    password: Option<String>,
) -> Result<(), ApiError> {
    let has_password = access::by_id(&state.pool, user.user_id)
        .await?
        .is_some_and(|a| a.password_hash.is_some());
    if has_password {
        if password.as_deref().unwrap_or_default().is_empty() {
            return Err(ApiError::forbidden(
                "password_required",
                "confirm with your current password to delete your account",
            ));
        }
        return check_password(state, user, addr, password, true).await;
    }
    let started = log::first(&state.pool, "session", &user.session_id.to_string()).await?;
    let recent = started.is_some_and(|event| {
        let method = &event.payload["SessionStarted"]["method"];
        let external = [SignInMethod::Google, SignInMethod::Oidc]
            .iter()
            .any(|m| *method == serde_json::json!(m));
        external && OffsetDateTime::now_utc() - event.recorded_at < RECENT_SIGN_IN
    });
    if !recent {
        return Err(ApiError::forbidden(
            "sign_in_again",
            "this account has no password: sign in with Google again, then delete it within \
             5 minutes",
        ));
    }
    Ok(())
}
