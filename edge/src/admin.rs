//! `/admin/*`: for admins only (403 for everyone else, SECURITY.md 13).

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::Command;
use jukebox_nats::OutcomeStatus;
use jukebox_projections::admin_users::AdminUserRow;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::{envelope, rejection, send};
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::fresh::{models, After};
use crate::library::{invalid, limit_offset, params, text_filter};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_users))
        .route("/admin/songs", get(list_songs))
        .route("/admin/jobs", get(list_jobs))
        .merge(crate::audit::routes())
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
        list_songs,
        list_jobs,
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
    error: Option<crate::imports::JobError>,
    requester: Requester,
    source: crate::imports::JobSource,
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
    let rows: Vec<AdminUserRow> = sqlx::query_as(
        "SELECT user_id, email, roles, verified, disabled, created_at, last_sign_in_at,
                sign_in_count, track_count
         FROM admin_users WHERE ($1::text IS NULL OR lower(email) LIKE $1)
         ORDER BY created_at DESC, user_id LIMIT $2 OFFSET $3",
    )
    .bind(q)
    .bind(limit)
    .bind(offset)
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

#[derive(sqlx::FromRow)]
struct SongRow {
    track_id: String,
    origin: String,
    object_key: String,
    size: i64,
    duration_ms: i64,
    codec: String,
    bitrate: i64,
    title: Option<String>,
    artist: Option<String>,
    stored_at: OffsetDateTime,
    libraries: i32,
}

/// `GET /admin/songs?q=&limit=&offset=`: the catalog, newest first, with how many
/// libraries hold each track (the `library` model's track rows).
#[utoipa::path(get, path = "/admin/songs", tag = "admin", security(("bearer" = [])),
    params(Paging),
    responses((status = 200, body = AdminSongs), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_songs(
    _: Admin,
    after: After,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = params(raw.as_deref())?;
    after
        .wait(&state, &[models::TRACKS, models::LIBRARY])
        .await?;
    let (limit, offset) = limit_offset(&params, 50, 200)?;
    let q = text_filter(&params)?;
    let rows: Vec<SongRow> = sqlx::query_as(
        "SELECT t.track_id, t.origin, t.object_key, t.size, t.duration_ms, t.codec, t.bitrate,
                t.title, t.artist, t.stored_at, coalesce(l.holders, 0) AS libraries
         FROM tracks t LEFT JOIN library l ON l.entry_id = 'track/' || t.track_id
         WHERE $1::text IS NULL OR lower(t.title) LIKE $1 OR lower(t.artist) LIKE $1
               OR lower(t.track_id) LIKE $1
         ORDER BY t.stored_at DESC, t.track_id LIMIT $2 OFFSET $3",
    )
    .bind(q)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let songs: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "track_id": r.track_id,
                "source": r.origin,
                "object_key": r.object_key,
                "size": r.size,
                "duration_ms": r.duration_ms,
                "codec": r.codec,
                "bitrate": r.bitrate,
                "title": r.title,
                "artist": r.artist,
                "stored_at": rfc3339(r.stored_at),
                "libraries": r.libraries,
            })
        })
        .collect();
    Ok(Json(
        json!({ "songs": songs, "limit": limit, "offset": offset }),
    ))
}

const JOB_STATUSES: &[&str] = &[
    "running",
    "requested",
    "waiting",
    "downloading",
    "transcoding",
    "storing",
    "completed",
    "failed",
];

#[derive(sqlx::FromRow)]
struct AdminJobRow {
    job_id: Uuid,
    user_id: Uuid,
    email: Option<String>,
    source_kind: String,
    source: String,
    status: String,
    track_id: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// `GET /admin/jobs?status=&user=&q=&limit=&offset=`: import jobs, newest first.
#[utoipa::path(get, path = "/admin/jobs", tag = "admin", security(("bearer" = [])),
    params(("status" = Option<JobStatus>, Query, description = "`running` is every stage before the end"),
        ("user" = Option<Uuid>, Query), Paging),
    responses((status = 200, body = AdminJobs), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_jobs(
    _: Admin,
    after: After,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = params(raw.as_deref())?;
    after
        .wait(&state, &[models::JOBS, models::ADMIN_USERS])
        .await?;
    let (limit, offset) = limit_offset(&params, 50, 200)?;
    let q = text_filter(&params)?;
    let status = match params.get("status") {
        None => None,
        Some(s) if JOB_STATUSES.contains(&s.as_str()) => Some(s.clone()),
        Some(_) => {
            return Err(invalid(
                "invalid_status",
                format!("status must be one of {}", JOB_STATUSES.join(", ")),
            ))
        }
    };
    let user = params.get("user").map(|u| user_id(u)).transpose()?;
    let rows: Vec<AdminJobRow> = sqlx::query_as(
        "SELECT j.job_id, j.user_id, u.email, j.source_kind, j.source, j.status, j.track_id,
                j.error_code, j.error_message, j.created_at, j.updated_at
         FROM jobs j LEFT JOIN admin_users u ON u.user_id = j.user_id
         WHERE ($1::text IS NULL OR j.status = $1
                OR ($1 = 'running' AND j.status NOT IN ('completed', 'failed')))
           AND ($2::uuid IS NULL OR j.user_id = $2)
           AND ($3::text IS NULL OR lower(j.source) LIKE $3 OR lower(j.track_id) LIKE $3
                OR lower(j.error_message) LIKE $3)
         ORDER BY j.created_at DESC, j.job_id LIMIT $4 OFFSET $5",
    )
    .bind(status)
    .bind(user)
    .bind(q)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let jobs: Vec<Value> = rows
        .iter()
        .map(|r| {
            let finished = matches!(r.status.as_str(), "completed" | "failed");
            json!({
                "job_id": r.job_id,
                "status": if finished { r.status.as_str() } else { "running" },
                "stage": r.status,
                "error": r.error_code.as_ref().map(|code| json!({"code": code, "message": r.error_message})),
                "requester": {"id": r.user_id, "email": r.email},
                "source": {"kind": r.source_kind, "value": r.source},
                "track_id": r.track_id,
                "created_at": rfc3339(r.created_at),
                "updated_at": rfc3339(r.updated_at),
                "duration_ms": finished.then(|| (r.updated_at - r.created_at).whole_milliseconds() as i64),
            })
        })
        .collect();
    Ok(Json(
        json!({ "jobs": jobs, "limit": limit, "offset": offset }),
    ))
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
    params(("user_id" = Uuid, Path), crate::api::CommandHeaders),
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
    params(("user_id" = Uuid, Path), crate::api::CommandHeaders),
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
    params(("user_id" = Uuid, Path), crate::api::CommandHeaders),
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
    params(("user_id" = Uuid, Path), crate::api::CommandHeaders),
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
