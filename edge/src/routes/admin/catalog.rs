//! `GET /admin/songs` and `GET /admin/jobs`: the catalog and every import job.

use axum::extract::{RawQuery, State};
use axum::Json;
use jukebox_projections::{jobs, tracks};
use serde_json::{json, Value};

use super::{rfc3339, user_id, AdminJobs, AdminSongs, JobStatus, Paging};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::fresh::{models, After};
use crate::routes::library::{invalid, limit_offset, params, text_filter};
use crate::state::AppState;

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
    let rows = tracks::catalog(&state.pool, q.as_deref(), limit, offset).await?;
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
    let filter = jobs::Filter {
        status,
        user_id: user,
        pattern: q,
    };
    let rows = jobs::page(&state.pool, &filter, limit, offset).await?;
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
