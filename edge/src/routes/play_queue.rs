//! `/me/play-queue`: the web app's saved play queue (issue 19, ADR 28). `PUT` saves the
//! queue, the current track and the position (a save replaces the last one; the web app
//! saves on track changes, pauses, every 20 s while playing, and when the page hides);
//! `GET` answers the latest save with its tracks as the library has them now, so another
//! device or a reload picks up where playback was. The same queue as the Subsonic
//! `savePlayQueue`/`getPlayQueue`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::commands::CommandHeaders;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::fresh::{models, After};
use crate::play_queue::{checked, load, save, Given};
use crate::state::AppState;

/// What the web app calls itself in `changed_by` (Subsonic apps send their own name).
pub const WEB_CLIENT: &str = "Jukebox web";

pub fn routes() -> Router<AppState> {
    Router::new().route("/me/play-queue", get(read).put(write))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(read, write))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueToSave {
    /// The queue's song ids in order (at most 1000); empty clears the queue.
    #[schema(max_items = 1000)]
    track_ids: Vec<String>,
    /// The song playing: one of `track_ids` (required when there are any).
    #[serde(default)]
    current_track: Option<String>,
    /// Milliseconds into the current song.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 86_400_000)]
    position_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SavedAnswer {
    /// When the server took the save (RFC 3339): a `GET` answers this `changed_at` until
    /// a later save replaces it.
    saved_at: String,
    track_count: usize,
}

/// `PUT /me/play-queue`: saves my queue; the answer's `position` (or `Jukebox-Position`)
/// makes a later `GET` show this save.
#[utoipa::path(put, path = "/me/play-queue", tag = "library", security(("bearer" = [])),
    params(CommandHeaders), request_body = QueueToSave,
    responses((status = 200, body = SavedAnswer), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not song ids, over 1000 songs, or a current song not in the queue"),
        (status = 503, body = ErrorBody)))]
async fn write(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<QueueToSave>,
) -> Result<Json<SavedAnswer>, ApiError> {
    let given = Given {
        track_ids: body.track_ids.iter().map(String::as_str).collect(),
        current: body.current_track.as_deref(),
        position_ms: body.position_ms,
        client: WEB_CLIENT,
    };
    let queue = checked(user.user_id, &given)?;
    let track_count = queue.track_ids.len();
    let (_, saved_at) = save(&state, &headers, queue).await?;
    Ok(Json(SavedAnswer {
        saved_at: saved_at.format(&Rfc3339).unwrap_or_default(),
        track_count,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct QueueTrack {
    track_id: String,
    title: String,
    /// The artists, joined with ", ".
    artist: String,
    album: String,
    album_id: String,
    duration_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cover_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SavedQueue {
    /// Whether a queue was ever saved; false answers an empty queue.
    saved: bool,
    /// The songs still in my library, in order.
    tracks: Vec<QueueTrack>,
    /// Index in `tracks` of the song that was playing (null when it is gone).
    current_index: Option<usize>,
    /// Milliseconds into that song.
    position_ms: i64,
    /// When and by which app it was saved (RFC 3339; null when never saved).
    changed_at: Option<String>,
    changed_by: Option<String>,
}

/// `GET /me/play-queue`: my latest saved queue.
#[utoipa::path(get, path = "/me/play-queue", tag = "library", security(("bearer" = [])),
    responses((status = 200, body = SavedQueue), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn read(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
) -> Result<Json<SavedQueue>, ApiError> {
    after
        .wait(&state, &[models::PLAY_QUEUES, models::MUSIC])
        .await?;
    let Some(saved) = load(&state, user.user_id).await? else {
        return Ok(Json(SavedQueue {
            saved: false,
            tracks: Vec::new(),
            current_index: None,
            position_ms: 0,
            changed_at: None,
            changed_by: None,
        }));
    };
    let covers = state.stream.as_ref();
    let now = OffsetDateTime::now_utc();
    let tracks = saved
        .tracks
        .into_iter()
        .map(|t| QueueTrack {
            cover_url: covers
                .filter(|_| t.cover_stored)
                .map(|issuer| issuer.cover_url(&t.track_id, user.user_id, now)),
            track_id: t.track_id,
            title: t.title,
            artist: t.artists.join(", "),
            album: t.album,
            album_id: t.album_id,
            duration_ms: t.duration_ms,
        })
        .collect();
    Ok(Json(SavedQueue {
        saved: true,
        tracks,
        current_index: saved.current,
        position_ms: saved.position_ms,
        changed_at: saved.row.saved_at.format(&Rfc3339).ok(),
        changed_by: Some(saved.row.client),
    }))
}
