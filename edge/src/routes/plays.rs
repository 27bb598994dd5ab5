//! `/me/plays` (issue 19, ADR 26): record a play of a track of my library
//! (`POST /me/plays`; the web player sends one after half the track or 4 minutes), and
//! my recently or most played tracks (`GET /me/plays`). A play is named by (me, track,
//! time): sending it again records nothing new.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use jukebox_domain::{play, Command, TrackId};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::music;
use jukebox_projections::plays::{self, PlayOrder};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::library::music::{album_track, AlbumTrack};
use super::library::{limit_offset, params, track_id};
use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::fresh::{models, After};
use crate::marks::{rfc3339, MarkSet};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/me/plays", get(list).post(record))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(record, list), components(schemas(PlaysOrder)))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlay {
    #[schema(min_length = 3, max_length = 200)]
    track_id: String,
    /// RFC 3339, when the play started; now when absent. From 2000 to 5 minutes ahead.
    played_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordedPlay {
    track_id: String,
    /// RFC 3339, to the millisecond.
    played_at: String,
}

/// Sends `RecordPlay` for a track the caller holds; its command id is the play's own, so
/// a retry is the same command (`play::command_id`). Shared with Subsonic's `scrobble`.
/// Answers the position of its event, if it wrote one.
pub(crate) async fn send_play(
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    track_id: &TrackId,
    played_at: OffsetDateTime,
) -> Result<Option<String>, ApiError> {
    let played_at = play::to_ms(played_at);
    if !play::plausible(played_at, OffsetDateTime::now_utc()) {
        return Err(ApiError::unprocessable(
            "invalid_play_time",
            "a play's time must lie between the year 2000 and now",
        ));
    }
    if music::tracks::get(&state.pool, user_id, track_id.as_str())
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("no such track in your library"));
    }
    let command = Command::RecordPlay {
        user_id,
        track_id: track_id.clone(),
        played_at,
    };
    let mut envelope = envelope(headers, Some(user_id), command)?;
    envelope.command_id = play::command_id(user_id, track_id, played_at);
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(outcome.position),
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}

/// `POST /me/plays`: records one play (200; the same play again records nothing new).
#[utoipa::path(post, path = "/me/plays", tag = "library", security(("bearer" = [])),
    params(CommandHeaders), request_body = NewPlay,
    responses((status = 200, body = RecordedPlay), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not in my library"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not a track id, or not a plausible time"),
        (status = 503, body = ErrorBody)))]
async fn record(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewPlay>,
) -> Result<Json<RecordedPlay>, ApiError> {
    let track_id = track_id(&body.track_id)?;
    let played_at = match body.played_at.as_deref() {
        None => OffsetDateTime::now_utc(),
        Some(raw) => OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
            ApiError::unprocessable(
                "invalid_play_time",
                "played_at is an RFC 3339 time, like 2026-01-31T20:15:00Z",
            )
        })?,
    };
    let played_at = play::to_ms(played_at);
    after.wait(&state, &[models::MUSIC]).await?;
    send_play(&state, &headers, user.user_id, &track_id, played_at).await?;
    Ok(Json(RecordedPlay {
        track_id: track_id.as_str().to_owned(),
        played_at: rfc3339(played_at),
    }))
}

/// The orders of `GET /me/plays`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // the document's
pub enum PlaysOrder {
    Recent,
    Frequent,
}

#[derive(Serialize, ToSchema)]
pub struct PlayedTracks {
    /// Tracks of my library I played, with `play_count` and `last_played`.
    items: Vec<AlbumTrack>,
}

const MAX_PAGE: i64 = 500;

/// `GET /me/plays?order=recent|frequent&limit=&offset=`: my played tracks, last played
/// (or most played) first.
#[utoipa::path(get, path = "/me/plays", tag = "library", security(("bearer" = [])),
    params(("order" = Option<PlaysOrder>, Query, description = "default: recent"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 100000)),
    responses((status = 200, body = PlayedTracks),
        (status = 400, body = ErrorBody, description = "a parameter given twice"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn list(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<PlayedTracks>, ApiError> {
    let params = params(raw.as_deref())?;
    let (limit, offset) = limit_offset(&params, 50, MAX_PAGE)?;
    let order = match params.get("order").map(String::as_str) {
        None | Some("recent") => PlayOrder::Recent,
        Some("frequent") => PlayOrder::Frequent,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_order",
                "order must be recent or frequent",
            ))
        }
    };
    let [favourites_model, plays_model] = crate::marks::MODELS;
    after
        .wait(&state, &[models::MUSIC, favourites_model, plays_model])
        .await?;
    let (pool, user_id) = (&state.pool, user.user_id);
    let played = plays::tracks(pool, user_id, order, limit, offset).await?;
    let ids: Vec<String> = played.iter().map(|p| p.track.track_id.clone()).collect();
    let marks = MarkSet::tracks(pool, user_id, &ids).await?;
    let covers = state.stream.as_ref();
    Ok(Json(PlayedTracks {
        items: played
            .into_iter()
            .map(|p| album_track(p.track, user_id, covers, &marks))
            .collect(),
    }))
}
