//! `/admin/*`: for admins only (403 for everyone else, SECURITY.md 13).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::Command;
use jukebox_nats::OutcomeStatus;
use jukebox_projections::admin_users::AdminUserRow;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{envelope, rejection, send};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_users))
        .route("/admin/users/{user_id}/disable", post(disable_user))
        .route("/admin/users/{user_id}/enable", post(enable_user))
}

/// An authenticated admin.
pub struct Admin(pub AuthUser);

impl axum::extract::FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(ApiError::forbidden(
                "not_admin",
                "this needs the admin role",
            ));
        }
        Ok(Self(user))
    }
}

/// `GET /admin/users`: the newest 200 accounts.
async fn list_users(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rows: Vec<AdminUserRow> = sqlx::query_as(
        "SELECT user_id, email, roles, verified, disabled, created_at, last_sign_in_at,
                sign_in_count, track_count
         FROM admin_users ORDER BY created_at DESC, user_id LIMIT 200",
    )
    .fetch_all(&state.pool)
    .await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.user_id,
                "email": r.email,
                "roles": r.roles,
                "verified": r.verified,
                "disabled": r.disabled,
                "sign_in_count": r.sign_in_count,
            })
        })
        .collect();
    Ok(Json(json!({ "users": users })))
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::unprocessable("invalid_user_id", "the user id must be a UUID"))
}

async fn set_disabled(
    admin: Admin,
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    disabled: bool,
) -> Result<Json<Value>, ApiError> {
    let command = if disabled {
        Command::DisableUser { user_id }
    } else {
        Command::EnableUser { user_id }
    };
    let envelope = envelope(headers, Some(admin.0.user_id), command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {
            Ok(Json(json!({ "user_id": user_id, "disabled": disabled })))
        }
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}

/// `POST /admin/users/{id}/disable`: sessions end, sign-in is refused.
async fn disable_user(
    admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(admin, &state, &headers, user_id(&raw)?, true).await
}

async fn enable_user(
    admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(admin, &state, &headers, user_id(&raw)?, false).await
}
