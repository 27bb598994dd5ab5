//! savePlayQueue and getPlayQueue (issue 19, ADR 28): the same saved queue as the web
//! app's `/me/play-queue`, so a queue left on one device is picked up on another.

use axum::http::HeaderMap;
use jukebox_domain::play_queue::{MAX_POSITION_MS, MAX_TRACKS};
use jukebox_projections::music::tracks;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use super::song::child;
use super::{Caller, Params, SubsonicError};
use crate::error::ApiError;
use crate::fresh::{models, wait_for};
use crate::play_queue::{checked, load, save, Given, Refusal};
use crate::state::AppState;

/// `id` (once per song, none clears the queue), `current` (required with songs, one of
/// them: 10 otherwise), `position` (milliseconds). Every id must be a song of the
/// caller's library (70 otherwise). The answer comes once `getPlayQueue` shows the save,
/// from any app.
pub async fn save_play_queue(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let ids: Vec<&str> = params
        .all("id")
        .into_iter()
        .filter(|id| !id.is_empty())
        .collect();
    if ids.len() > MAX_TRACKS {
        return Err(SubsonicError::invalid(format!(
            "a saved play queue holds at most {MAX_TRACKS} songs; this one has {}",
            ids.len()
        )));
    }
    let current = params.get("current").filter(|c| !c.is_empty());
    if current.is_none() && !ids.is_empty() {
        return Err(SubsonicError::missing("current"));
    }
    let max = i64::try_from(MAX_POSITION_MS).unwrap_or(i64::MAX);
    let position_ms = u64::try_from(params.int("position", 0, 0, max)?).unwrap_or(0);
    // Every id a song of this library (70, as any method answers an unknown id).
    let owned: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    let known = tracks::many(&state.pool, caller.user_id, &owned).await?;
    if let Some(missing) = ids
        .iter()
        .find(|id| !known.iter().any(|t| t.track_id == **id))
    {
        return Err(SubsonicError::not_found(&format!("Song {missing}")));
    }
    let given = Given {
        track_ids: ids,
        current,
        position_ms,
        client: params.get("c").unwrap_or("Subsonic app"),
    };
    let queue = checked(caller.user_id, &given).map_err(|refusal| match refusal {
        Refusal::NotAnId(id) => SubsonicError::not_found(&format!("Song {id}")),
        Refusal::Invalid(error) => SubsonicError::invalid(error.to_string()),
    })?;
    let (position, _) = save(state, &HeaderMap::new(), queue)
        .await
        .map_err(from_api)?;
    if let Some(position) = position {
        wait_for(state, position, &[models::PLAY_QUEUES])
            .await
            .map_err(from_api)?;
    }
    Ok(Value::Object(Default::default()))
}

/// The latest save, its songs as the library has them now (removed ones left out). A
/// user who never saved one gets an empty queue dated the epoch, so an app keeps its own.
pub async fn get_play_queue(state: &AppState, caller: &Caller) -> Result<Value, SubsonicError> {
    let Some(saved) = load(state, caller.user_id).await? else {
        return Ok(json!({"playQueue": {
            "username": caller.email,
            "changed": super::song::rfc3339(None),
            "changedBy": "",
            "entry": [],
        }}));
    };
    let mut queue = json!({
        "username": caller.email,
        "changed": saved.row.saved_at.format(&Rfc3339).unwrap_or_default(),
        "changedBy": saved.row.client,
        "entry": saved.tracks.iter().map(child).collect::<Vec<_>>(),
    });
    if let Some(index) = saved.current {
        queue["current"] = Value::from(saved.tracks[index].track_id.clone());
        queue["position"] = Value::from(saved.position_ms);
    }
    Ok(json!({ "playQueue": queue }))
}

fn from_api(error: ApiError) -> SubsonicError {
    match error {
        ApiError::Client { message, .. } => SubsonicError::invalid(message),
        ApiError::Unavailable(_) | ApiError::RateLimited(_) | ApiError::Throttled { .. } => {
            SubsonicError::generic("Jukebox is busy; try again in a moment")
        }
        ApiError::Internal(error) => SubsonicError::internal(&format!("{error:#}")),
    }
}
