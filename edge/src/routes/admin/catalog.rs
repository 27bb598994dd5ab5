//! `GET /admin/songs` and `GET /admin/jobs`: the catalog and every import job.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{rfc3339, user_id, AdminJobs, AdminSongs, JobStatus, Paging};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::fresh::{models, After};
use crate::routes::library::{invalid, limit_offset, params, text_filter};
use crate::state::AppState;

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
pub(super) async fn list_songs(
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
pub(super) async fn list_jobs(
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
