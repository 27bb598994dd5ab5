//! `/admin/*`: for admins only (403 for everyone else, SECURITY.md 13).

mod catalog;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::Command;
use jukebox_nats::OutcomeStatus;
use jukebox_projections::admin_users;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::{envelope, rejection, send};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::fresh::{models, After};
use crate::routes::library::{limit_offset, params, text_filter};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_users))
        .route("/admin/songs", get(catalog::list_songs))
        .route("/admin/jobs", get(catalog::list_jobs))
        .merge(crate::routes::audit::routes())
        .route("/admin/users/{user_id}/disable", post(disable_user))
        .route("/admin/users/{user_id}/enable", post(enable_user))
        .route(
            "/admin/users/{user_id}/admin",
            post(grant_admin).delete(revoke_admin),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_users,
        catalog::list_songs,
        catalog::list_jobs,
        disable_user,
        enable_user,
        grant_admin,
        revoke_admin
    ),
    components(schemas(JobStatus))
)]
pub(crate) struct Doc;

// The answers below are written with `json!`; these structs describe them for the
// document, and schemathesis checks the two agree.

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdminUsers {
    users: Vec<AdminUser>,
    limit: i64,
    offset: i64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdminUser {
    id: Uuid,
    email: String,
    roles: Vec<String>,
    verified: bool,
    disabled: bool,
    created_at: Option<String>,
    last_sign_in_at: Option<String>,
    sign_in_count: i64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdminSongs {
    songs: Vec<AdminSong>,
    limit: i64,
    offset: i64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdminSong {
    track_id: String,
    /// Where it came from (`youtube`, a yt-dlp extractor, `upload`).
    source: String,
    object_key: String,
    size: i64,
    duration_ms: i64,
    codec: String,
    bitrate: i64,
    title: Option<String>,
    artist: Option<String>,
    stored_at: Option<String>,
    /// How many libraries hold it.
    libraries: i32,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdminJobs {
    jobs: Vec<AdminJob>,
    limit: i64,
    offset: i64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdminJob {
    job_id: Uuid,
    /// `running`, `completed` or `failed`.
    status: String,
    /// The job's stage (`requested`, `downloading`, ...) or its end.
    stage: String,
    error: Option<crate::routes::imports::JobError>,
    requester: Requester,
    source: crate::routes::imports::JobSource,
    track_id: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// How long it took, once finished.
    duration_ms: Option<i64>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Requester {
    id: Uuid,
    email: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UserDisabled {
    user_id: Uuid,
    disabled: bool,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UserAdmin {
    user_id: Uuid,
    admin: bool,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct Paging {
    /// Matches part of the email (users), title, artist or id (songs), source, track or
    /// error (jobs).
    #[param(max_length = 200)]
    q: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    #[param(minimum = 0, maximum = 100000)]
    offset: Option<i64>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
enum JobStatus {
    Running,
    Requested,
    Waiting,
    Downloading,
    Transcoding,
    Storing,
    Completed,
    Failed,
}

/// `GET /admin/users?q=&limit=&offset=`: accounts, newest first; `q` matches the email.
#[utoipa::path(get, path = "/admin/users", tag = "admin", security(("bearer" = [])),
    params(Paging),
    responses((status = 200, body = AdminUsers), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "not an admin"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_users(
    _: Admin,
    after: After,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = params(raw.as_deref())?;
    after.wait(&state, &[models::ADMIN_USERS]).await?;
    let (limit, offset) = limit_offset(&params, 50, 200)?;
    let q = text_filter(&params)?;
    let rows = admin_users::page(&state.pool, q.as_deref(), limit, offset).await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.user_id,
                "email": r.email,
                "roles": r.roles,
                "verified": r.verified,
                "disabled": r.disabled,
                "created_at": rfc3339(r.created_at),
                "last_sign_in_at": r.last_sign_in_at.map(rfc3339),
                "sign_in_count": r.sign_in_count,
            })
        })
        .collect();
    Ok(Json(
        json!({ "users": users, "limit": limit, "offset": offset }),
    ))
}

fn rfc3339(t: OffsetDateTime) -> Option<String> {
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
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
    if disabled {
        refuse_self(&admin, user_id, "disable your own account")?;
    }
    let command = if disabled {
        Command::DisableUser { user_id }
    } else {
        Command::EnableUser { user_id }
    };
    send_for_admin(admin, state, headers, command).await?;
    Ok(Json(json!({ "user_id": user_id, "disabled": disabled })))
}

/// An admin cannot lock themselves out (and so leave no admin at all): another admin, or
/// `jukebox admin revoke` on the server, has to do it.
fn refuse_self(admin: &Admin, user_id: Uuid, what: &str) -> Result<(), ApiError> {
    if admin.0.user_id == user_id {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "own_account",
            format!("you cannot {what}; ask another admin"),
        ));
    }
    Ok(())
}

/// Sends an admin's command and waits for it to commit; a rejection becomes its 4xx.
async fn send_for_admin(
    admin: Admin,
    state: &AppState,
    headers: &HeaderMap,
    command: Command,
) -> Result<(), ApiError> {
    let envelope = envelope(headers, Some(admin.0.user_id), command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(()),
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}

/// `POST /admin/users/{id}/disable`: sessions end, sign-in is refused.
#[utoipa::path(post, path = "/admin/users/{user_id}/disable", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path), crate::commands::CommandHeaders),
    responses((status = 200, body = UserDisabled), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such user"),
        (status = 409, body = ErrorBody, description = "my own account"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn disable_user(
    admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(admin, &state, &headers, user_id(&raw)?, true).await
}

/// `POST /admin/users/{id}/enable`.
#[utoipa::path(post, path = "/admin/users/{user_id}/enable", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path), crate::commands::CommandHeaders),
    responses((status = 200, body = UserDisabled), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn enable_user(
    admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(admin, &state, &headers, user_id(&raw)?, false).await
}

/// `POST /admin/users/{id}/admin` grants the admin role, `DELETE` takes it away (as
/// `jukebox admin grant|revoke` does from the command line). Each is an event.
async fn set_admin(
    admin: Admin,
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    granted: bool,
) -> Result<Json<Value>, ApiError> {
    if !granted {
        refuse_self(&admin, user_id, "take the admin role from yourself")?;
    }
    let role = jukebox_domain::Role::Admin;
    let command = if granted {
        Command::GrantRole { user_id, role }
    } else {
        Command::RevokeRole { user_id, role }
    };
    send_for_admin(admin, state, headers, command).await?;
    Ok(Json(json!({ "user_id": user_id, "admin": granted })))
}

#[utoipa::path(post, path = "/admin/users/{user_id}/admin", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path), crate::commands::CommandHeaders),
    responses((status = 200, body = UserAdmin), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn grant_admin(
    admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_admin(admin, &state, &headers, user_id(&raw)?, true).await
}

#[utoipa::path(delete, path = "/admin/users/{user_id}/admin", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Uuid, Path), crate::commands::CommandHeaders),
    responses((status = 200, body = UserAdmin), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "myself"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn revoke_admin(
    admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_admin(admin, &state, &headers, user_id(&raw)?, false).await
}
