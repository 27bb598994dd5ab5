//! A job's row as the routes report it: the read model's, or for a job requested a
//! moment ago the same fold over the job's own events in the log.

use jukebox_projections::imports::JobRow;
use jukebox_projections::{jobs, WaitError};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::fresh::models;
use crate::state::AppState;

/// A job is reported `completed` only once the library lists its track and may stream
/// it to its owner (the library read model has applied the completion); until then it
/// shows as `storing`. `wait`: wait (bounded) for it rather than look once.
pub(super) async fn as_reported(
    state: &AppState,
    mut row: JobRow,
    wait: bool,
) -> Result<JobRow, ApiError> {
    let position = match row.position.as_deref().map(str::parse) {
        Some(Ok(position)) if row.status == "completed" => position,
        _ => return Ok(row),
    };
    let listed = if wait {
        match state.freshness.wait_for(position, &[models::LIBRARY]).await {
            Ok(()) => true,
            Err(WaitError::Behind(_)) => false,
            Err(WaitError::Database(error)) => return Err(error.into()),
        }
    } else {
        state
            .freshness
            .reached(position, &[models::LIBRARY])
            .await?
    };
    if !listed {
        row.status = "storing".into();
        row.track_id = None;
    }
    Ok(row)
}

/// The job, if it exists and the user may see it (its owner, or an admin). Someone
/// else's job is 404, like one that does not exist.
pub(super) async fn visible_job(
    state: &AppState,
    user: &AuthUser,
    job_id: &str,
) -> Result<JobRow, ApiError> {
    let job_id = Uuid::parse_str(job_id)
        .map_err(|_| ApiError::unprocessable("invalid_job_id", "a job id is a UUID"))?;
    let row = job_row(&state.pool, job_id).await?;
    row.filter(|r| r.user_id == user.user_id || user.is_admin())
        .ok_or_else(|| {
            ApiError::not_found("no such job; a job just requested appears within a moment")
        })
}

/// The job's row; one requested a moment ago that the projector has not reached yet is
/// folded from its events in the log (`jobs::get`).
pub(super) async fn job_row(pool: &sqlx::PgPool, job_id: Uuid) -> Result<Option<JobRow>, ApiError> {
    Ok(jobs::get(pool, job_id).await?)
}
