//! `GET /jobs` and `GET /jobs/{id}`: import jobs as their owner (or an admin) sees them.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::Json;
use jukebox_projections::imports::JobRow;
use jukebox_projections::{jobs, tracks};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::job_row::{as_reported, visible_job};
use super::{limit, Params};
use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::fresh::{models, After};
use crate::state::AppState;

/// An import job as its owner (or an admin) sees it.
#[derive(Serialize, ToSchema)]
pub struct Job {
    job_id: Uuid,
    /// `requested`, `waiting`, `downloading`, `transcoding`, `storing`, `completed` or `failed`.
    status: String,
    /// 0 to 100 while running; 100 once completed; null after a failure.
    percent: Option<u64>,
    source: JobSource,
    /// The song id, once stored.
    track_id: Option<String>,
    error: Option<JobError>,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// The position of the job's last event: pass it as `?after=` to `GET /library` or
    /// `GET /stream/{id}` (a `completed` job's track is already there).
    position: Option<String>,
    /// The stored song's tags, once known (`GET /jobs` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artist: Option<String>,
    /// Whether the song is still in the caller's library (`GET /jobs` only, once stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    in_library: Option<bool>,
    /// An attempt failed and the next one is waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<JobRetry>,
}

#[derive(Serialize, ToSchema)]
pub struct JobRetry {
    /// The attempt that comes next (2 for the first retry).
    attempt: u64,
    max_attempts: u64,
    /// When it starts (RFC 3339).
    next_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobSource {
    /// `video`, `url` or `upload`.
    kind: String,
    value: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobError {
    code: String,
    message: Option<String>,
}

pub(super) fn job_json(row: &JobRow, live: Option<Value>) -> Job {
    let finished = row.is_finished();
    // Live progress counts while it is about the stage the read model shows (or later).
    let percent = if row.status == "completed" {
        Some(100)
    } else if finished {
        None
    } else {
        live.as_ref()
            .filter(|l| l["status"] == row.status.as_str() || row.status == "requested")
            .and_then(|l| l["percent"].as_u64())
            .or(Some(0))
    };
    // Live progress may run ahead of the read model for in-flight stages; whether a
    // job finished, and how, is the read model's word alone.
    let status = match live.as_ref().and_then(|l| l["status"].as_str()) {
        Some(stage @ ("waiting" | "downloading" | "transcoding" | "storing"))
            if row.status == "requested" =>
        {
            stage.to_owned()
        }
        _ => row.status.clone(),
    };
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    let retry = live
        .as_ref()
        .filter(|l| l["status"] == "retrying" && !finished)
        .and_then(|l| {
            Some(JobRetry {
                attempt: l["attempt"].as_u64()?,
                max_attempts: l["max_attempts"].as_u64()?,
                next_at: l["next_at"].as_str()?.to_owned(),
            })
        });
    Job {
        job_id: row.job_id,
        status,
        percent,
        source: JobSource {
            kind: row.source_kind.clone(),
            value: row.source.clone(),
        },
        track_id: row.track_id.clone(),
        error: row.error_code.as_ref().map(|code| JobError {
            code: code.clone(),
            message: row.error_message.clone(),
        }),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        position: row.position.clone(),
        title: None,
        artist: None,
        in_library: None,
        retry,
    }
}

/// `GET /jobs/{id}`.
#[utoipa::path(get, path = "/jobs/{job_id}", tag = "imports", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses((status = 200, body = Job), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such job, or someone else's"),
        (status = 422, body = ErrorBody, description = "not a UUID"), (status = 503, body = ErrorBody)))]
pub(super) async fn get_job(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    after.wait(&state, &[models::JOBS]).await?;
    let row = visible_job(&state, &user, &job_id).await?;
    let row = as_reported(&state, row, true).await?;
    let live = state
        .imports
        .as_ref()
        .and_then(|s| s.progress.get(row.job_id));
    Ok(Json(job_json(&row, live)))
}

#[derive(Serialize, ToSchema)]
pub(super) struct Jobs {
    jobs: Vec<Job>,
}

/// `GET /jobs`: mine, newest first.
#[utoipa::path(get, path = "/jobs", tag = "imports", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = Jobs), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn list_jobs(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<Jobs>, ApiError> {
    let limit = limit(params.get("limit").map(String::as_str), 50, 200)?;
    let read = [models::JOBS, models::TRACKS, models::LIBRARY];
    after.wait(&state, &read).await?;
    let rows = jobs::of_user(&state.pool, user.user_id, limit).await?;
    let mut reported = Vec::with_capacity(rows.len());
    for row in rows {
        reported.push(as_reported(&state, row, false).await?);
    }
    let rows = reported;
    let progress = state.imports.as_ref().map(|s| s.progress.clone());
    // Labels for the jobs whose song is stored, and whether it is still mine.
    let ids: Vec<&str> = rows.iter().filter_map(|r| r.track_id.as_deref()).collect();
    let tags = tracks::tags(&state.pool, &ids).await?;
    let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
    let (_, mine) = jukebox_projections::library::marks(&state.pool, user.user_id, &ids).await?;
    let mine: HashSet<String> = mine.into_iter().collect();
    let jobs = rows
        .iter()
        .map(|r| {
            let mut job = job_json(r, progress.as_ref().and_then(|p| p.get(r.job_id)));
            if let Some(track) = &r.track_id {
                if let Some((title, artist)) = tags.get(track) {
                    job.title.clone_from(title);
                    job.artist.clone_from(artist);
                }
                job.in_library = Some(mine.contains(track));
            }
            job
        })
        .collect();
    Ok(Json(Jobs { jobs }))
}
