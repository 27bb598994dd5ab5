//! `PATCH /library/{song_id}`: I correct a track's title, artists, album or year in my
//! library (issue 18). A command (`CorrectTrackDetails`) and an event on my library entry
//! (`TrackDetailsCorrected`), so it shows in the audit; other holders of the same track
//! keep the source's details.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use jukebox_domain::{Command, Correction};
use jukebox_nats::OutcomeStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::track_id;
use crate::commands::{envelope, rejection, send};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::fresh::{models, wait_for};
use crate::state::AppState;

/// What to change; what is left out stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionRequest {
    #[schema(min_length = 1, max_length = 300)]
    title: Option<String>,
    /// Main artist first; at least one, at most 20.
    #[schema(min_items = 1, max_items = 20)]
    artists: Option<Vec<String>>,
    #[schema(min_length = 1, max_length = 300)]
    album: Option<String>,
    #[schema(minimum = 1, maximum = 9999)]
    year: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Corrected {
    track_id: String,
    /// The correction as recorded (names trimmed).
    title: Option<String>,
    artists: Option<Vec<String>>,
    album: Option<String>,
    year: Option<i32>,
    command_id: Uuid,
}

/// `PATCH /library/{song_id}`: 200 once my library and my artists and albums show the
/// correction (bounded by `READ_WAIT_MS`, then 503); 400 with a sentence for an empty or
/// overlong value; 404 when the track is not in my library.
#[utoipa::path(patch, path = "/library/{song_id}", tag = "library", security(("bearer" = [])),
    params(("song_id" = String, Path, min_length = 3, max_length = 200, pattern = r"^[!-9;-~][!-~]*:[!-~]+$"),
        crate::commands::CommandHeaders),
    request_body = CorrectionRequest,
    responses((status = 200, body = Corrected), (status = 400, body = ErrorBody, description = "an empty, overlong or out-of-range value"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = "not in my library"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not a song id, or not the body's shape"), (status = 503, body = ErrorBody)))]
pub(super) async fn correct(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CorrectionRequest>,
) -> Result<Json<Corrected>, ApiError> {
    let track_id = track_id(&raw)?;
    let year = body
        .year
        .map(|y| {
            i32::try_from(y).map_err(|_| {
                ApiError::bad_request(
                    "invalid_correction",
                    "The year must be a number from 1 to 9999.",
                )
            })
        })
        .transpose()?;
    let correction = Correction::parse(body.title, body.artists, body.album, year)
        .map_err(|e| ApiError::bad_request("invalid_correction", e.0))?;
    let command = Command::CorrectTrackDetails {
        user_id: user.user_id,
        track_id: track_id.clone(),
        correction: correction.clone(),
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    let position = match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => outcome.position,
        Some(outcome) => return Err(rejection(outcome)),
        None => return Err(ApiError::Unavailable("not answered in time".into())),
    };
    if let Some(position) = position.and_then(|p| p.parse().ok()) {
        wait_for(&state, position, &[models::LIBRARY, models::MUSIC]).await?;
    }
    Ok(Json(Corrected {
        track_id: track_id.to_string(),
        title: correction.title,
        artists: correction.artists,
        album: correction.album,
        year: correction.year,
        command_id: envelope.command_id,
    }))
}
