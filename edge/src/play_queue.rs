//! Saving and reading a user's play queue (issue 19, ADR 28), shared by the web app's
//! `/me/play-queue` and the Subsonic `savePlayQueue`/`getPlayQueue`.

use axum::http::HeaderMap;
use jukebox_domain::play_queue::MAX_TRACKS;
use jukebox_domain::{Command, PlayQueueError, SavedQueue, TrackId};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::music::{tracks, Track};
use jukebox_projections::play_queue::{self, PlayQueueRow};
use jukebox_projections::Position;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::{envelope, rejection, send};
use crate::error::ApiError;
use crate::state::AppState;

/// A queue as a client gives it, before it is checked.
pub struct Given<'a> {
    pub track_ids: Vec<&'a str>,
    pub current: Option<&'a str>,
    pub position_ms: u64,
    pub client: &'a str,
}

/// Why a given queue is refused before any command is sent.
pub enum Refusal {
    /// Not a song id at all.
    NotAnId(String),
    Invalid(PlayQueueError),
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotAnId(id) => ApiError::unprocessable(
                "invalid_song_id",
                format!("{id:?} is not a song id (they look like yt:<video id> or url:<hash>)"),
            ),
            Refusal::Invalid(error) => {
                ApiError::unprocessable("invalid_play_queue", error.to_string())
            }
        }
    }
}

/// The queue as the domain takes it: ids parsed, the cap and the current track checked.
pub fn checked(user_id: Uuid, given: &Given<'_>) -> Result<SavedQueue, Refusal> {
    // Before parsing a long list: the cap is the answer, whatever the ids are.
    if given.track_ids.len() > MAX_TRACKS {
        return Err(Refusal::Invalid(PlayQueueError::TooLong));
    }
    let parse = |id: &str| TrackId::parse(id).map_err(|_| Refusal::NotAnId(id.to_owned()));
    let track_ids = given
        .track_ids
        .iter()
        .map(|id| parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    let current_track = given.current.map(parse).transpose()?;
    // Without tracks there is no current one (an app may still send its last).
    let current_track = current_track.filter(|_| !track_ids.is_empty());
    let client: String = given
        .client
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let queue = SavedQueue {
        user_id,
        track_ids,
        current_track,
        position_ms: given.position_ms,
        client,
        saved_at: OffsetDateTime::now_utc(),
    };
    queue.check().map_err(Refusal::Invalid)?;
    Ok(queue)
}

/// Sends the save (the command's id is the save's id) and answers, once committed, the
/// position of its event and the time it is dated by (the read model's order).
pub async fn save(
    state: &AppState,
    headers: &HeaderMap,
    queue: SavedQueue,
) -> Result<(Option<Position>, OffsetDateTime), ApiError> {
    let user_id = queue.user_id;
    let command = Command::SavePlayQueue {
        save_id: Uuid::nil(),
        queue,
    };
    let mut envelope = envelope(headers, Some(user_id), command)?;
    // To the microsecond, as the read model keeps it: the date answered is the date read.
    let micros = envelope.issued_at.nanosecond() / 1000 * 1000;
    envelope.issued_at = envelope
        .issued_at
        .replace_nanosecond(micros)
        .unwrap_or(envelope.issued_at);
    // A retry with the same Idempotency-Key is the same save.
    if let Command::SavePlayQueue { save_id, .. } = &mut envelope.command {
        *save_id = envelope.command_id;
    }
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok((
            outcome.position.and_then(|p| p.parse().ok()),
            envelope.issued_at,
        )),
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}

/// The saved queue with its tracks as they are in the library now: tracks removed since
/// are left out, and so is a current track that was removed (its position with it).
pub struct Saved {
    pub row: PlayQueueRow,
    pub tracks: Vec<Track>,
    /// Index in `tracks` of the current track (its first occurrence).
    pub current: Option<usize>,
    pub position_ms: i64,
}

pub async fn load(state: &AppState, user_id: Uuid) -> Result<Option<Saved>, sqlx::Error> {
    let Some(row) = play_queue::get(&state.pool, user_id).await? else {
        return Ok(None);
    };
    let tracks = tracks::many(&state.pool, user_id, &row.track_ids).await?;
    let current = row
        .current_track
        .as_deref()
        .and_then(|id| tracks.iter().position(|t| t.track_id == id));
    let position_ms = if current.is_some() {
        row.position_ms
    } else {
        0
    };
    Ok(Some(Saved {
        row,
        tracks,
        current,
        position_ms,
    }))
}
