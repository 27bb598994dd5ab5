//! `/library`: my tracks. `DELETE /library/{song_id}` takes one out of my library (a
//! command; the catalog keeps the stored track).

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::delete;
use axum::{Json, Router};
use jukebox_domain::{Command, TrackId};
use jukebox_nats::OutcomeStatus;
use serde_json::{json, Value};

use crate::api::{envelope, rejection, send};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/library/{song_id}", delete(remove))
}

fn track_id(raw: &str) -> Result<TrackId, ApiError> {
    TrackId::parse(raw).map_err(|_| {
        ApiError::unprocessable(
            "invalid_song_id",
            "a song id looks like yt:<video id> or url:<hash>",
        )
    })
}

/// `DELETE /library/{song_id}`: 200 once the library no longer has it; 404 when it is not
/// in my library. Access checks (`GET /stream`, the stream role) read `library_entries`,
/// so the answer waits (bounded) until the projector has applied the removal: after a
/// 200, a fresh stream URL is refused.
async fn remove(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let track_id = track_id(&raw)?;
    let command = Command::RemoveFromLibrary {
        user_id: user.user_id,
        track_id: track_id.clone(),
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {}
        Some(outcome) => return Err(rejection(outcome)),
        None => return Err(ApiError::Unavailable("not answered in time".into())),
    }
    let deadline = Instant::now() + state.command_wait.max(Duration::from_secs(1));
    let mut applied = false;
    while Instant::now() < deadline {
        let present: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM library_entries WHERE user_id = $1 AND track_id = $2)",
        )
        .bind(user.user_id)
        .bind(track_id.as_str())
        .fetch_one(&state.pool)
        .await?;
        if !present {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(Json(json!({
        "track_id": track_id.as_str(),
        "removed": true,
        "applied": applied,
        "command_id": envelope.command_id,
    })))
}
