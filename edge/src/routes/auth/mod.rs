//! Account routes: sign-up, verification, sign-in, refresh rotation, logout and
//! `/auth/me`. No route here mails: the mail reactor (handlers) answers the events these
//! commands commit. The `AuthUser` extractor is in `crate::extract`.

mod reset;
mod session;
mod signup;
mod verification;

pub(crate) use reset::new_password_hash;
pub use session::{cookie, open_session, refresh_cookie, session_response, SessionResponse};
pub use verification::exposed_token;

use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_projections::accounts::AccountRow;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::rate_limit::Bucket;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(signup::sign_up))
        .route("/commands/{command_id}", get(signup::command_outcome))
        .route("/auth/verify-email", post(verification::verify_email))
        .route(
            "/auth/resend-verification",
            post(verification::resend_verification),
        )
        .route("/auth/signin", post(session::sign_in))
        .route("/auth/refresh", post(session::refresh))
        .route("/auth/logout", post(session::logout))
        .route("/auth/forgot-password", post(reset::forgot_password))
        .route("/auth/reset-password", post(reset::reset_password))
        .route("/auth/confirm-email", post(reset::confirm_email))
        .route("/auth/me", get(me))
}

#[derive(OpenApi)]
#[openapi(paths(
    signup::sign_up,
    signup::command_outcome,
    verification::verify_email,
    verification::resend_verification,
    session::sign_in,
    session::refresh,
    session::logout,
    reset::forgot_password,
    reset::reset_password,
    reset::confirm_email,
    me
))]
pub(crate) struct Doc;

/// An account as its owner sees it.
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    id: Uuid,
    email: String,
    roles: Vec<String>,
    verified: bool,
}

pub fn user_info(account: &AccountRow) -> UserInfo {
    UserInfo {
        id: account.user_id,
        email: account.email.clone(),
        roles: account.roles.clone(),
        verified: account.verified,
    }
}

/// `GET /auth/me`: who am I.
#[utoipa::path(get, path = "/auth/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = UserInfo), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn me(user: AuthUser) -> Json<UserInfo> {
    Json(user_info(&user.account))
}

/// Refuses the request with 429 when any of these keys is over its limit.
pub fn limited(state: &AppState, keys: &[(Bucket, &str)]) -> Result<(), ApiError> {
    for (bucket, key) in keys {
        if let Err(retry_after) = state.limiter.check(*bucket, key) {
            state.metrics.rate_limited(bucket.name());
            return Err(ApiError::RateLimited(retry_after));
        }
    }
    Ok(())
}

fn hit(state: &AppState, keys: &[(Bucket, &str)]) {
    for (bucket, key) in keys {
        state.limiter.hit(*bucket, key);
    }
}
