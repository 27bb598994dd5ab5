//! `GET /jobs/{id}/events`: a job's progress as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;
use utoipa::ToSchema;

use super::job_row::{as_reported, job_row, visible_job};
use super::jobs::job_json;
use super::settings;
use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::fresh::{models, After};
use crate::state::AppState;

/// One server-sent event of `GET /jobs/{id}/events`.
#[derive(ToSchema)]
#[allow(dead_code)] // written by axum's `Event`; here for the document
struct JobEvent {
    /// `job`: `data` is a `Job`; `progress`: live progress `{job_id, status, percent}`.
    #[schema(pattern = "^(job|progress)$")]
    event: String,
    /// JSON.
    data: String,
}

/// `GET /jobs/{id}/events`: server-sent events. `progress` events carry live progress,
/// `job` events the job as `GET /jobs/{id}` shows it; the stream ends after the `job`
/// event of a finished job.
#[utoipa::path(get, path = "/jobs/{job_id}/events", tag = "imports", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses((status = 200, content_type = "text/event-stream", body = JobEvent,
            description = "`job` events (a `Job`) and `progress` events, until the job ends"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn job_events(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    after.wait(&state, &[models::JOBS]).await?;
    let row = visible_job(&state, &user, &job_id).await?;
    let row = as_reported(&state, row, true).await?;
    let job_id = row.job_id;
    let subject = settings(&state)?
        .namespace
        .progress_subject(&job_id.to_string());
    let mut live = state
        .nats
        .subscribe(subject)
        .await
        .map_err(|e| ApiError::Unavailable(format!("nats: {e}")))?;
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Event, Infallible>>(16);
    let pool = state.pool.clone();
    let state = state.clone();
    tokio::spawn(async move {
        let mut tx = tx;
        let mut last = row;
        let first = Event::default()
            .event("job")
            .json_data(job_json(&last, None));
        if futures::SinkExt::send(&mut tx, Ok(first.expect("json")))
            .await
            .is_err()
        {
            return;
        }
        let mut poll = tokio::time::interval(Duration::from_millis(500));
        while !last.is_finished() {
            tokio::select! {
                Some(message) = live.next() => {
                    let Ok(body) = serde_json::from_slice::<Value>(&message.payload) else { continue };
                    let event = Event::default().event("progress").json_data(body).expect("json");
                    if futures::SinkExt::send(&mut tx, Ok(event)).await.is_err() {
                        return;
                    }
                }
                _ = poll.tick() => {
                    if tx.is_closed() {
                        return; // the client went away
                    }
                    let row = job_row(&pool, job_id).await;
                    let Ok(Some(row)) = row else { continue };
                    let Ok(row) = as_reported(&state, row, true).await else { continue };
                    if row != last {
                        last = row;
                        let event = Event::default().event("job").json_data(job_json(&last, None)).expect("json");
                        if futures::SinkExt::send(&mut tx, Ok(event)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(Sse::new(rx)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
