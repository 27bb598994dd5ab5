//! Playlist methods (issue 19, ADR 27): getPlaylists (mine, then others' public ones),
//! getPlaylist, createPlaylist (with `playlistId` it replaces the whole list: how apps
//! reorder), updatePlaylist (details, several removals by index and adds in one change),
//! deletePlaylist. A change waits until the playlist read models show it before it
//! answers, so the app's next read (which carries no position) sees it (ADR 16). Someone
//! else's playlist: 50 on a change, 70 when it is private.

use axum::http::HeaderMap;
use jukebox_domain::playlist::{Edit, MAX_ENTRIES};
use jukebox_domain::{Command, ErrorCode, TrackId};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::playlists::{self, Summary};
use jukebox_projections::{music, ReadModel};
use serde_json::{json, Value};
use uuid::Uuid;

use super::song::{child, rfc3339};
use super::{Caller, Params, SubsonicError};
use crate::commands::{envelope, send};
use crate::fresh::{models, wait_for};
use crate::state::AppState;

const READS: &[ReadModel] = &[models::PLAYLISTS, models::PLAYLIST_ENTRIES, models::MUSIC];

fn playlist(p: &Summary, caller: &Caller) -> Value {
    let mut value = json!({
        "id": p.playlist_id.to_string(),
        "name": p.name,
        // Another user's address is theirs to share: their playlists name no owner.
        "owner": if p.owner_id == caller.user_id { caller.email.as_str() } else { "" },
        "public": p.public,
        "songCount": p.entry_count,
        "duration": (p.duration_ms + 500) / 1000,
        "created": rfc3339(Some(p.created_at)),
        "changed": rfc3339(Some(p.updated_at)),
        "readonly": p.owner_id != caller.user_id,
    });
    if !p.description.is_empty() {
        value["comment"] = Value::from(p.description.clone());
    }
    value
}

fn id(raw: &str) -> Result<Uuid, SubsonicError> {
    Uuid::try_parse(raw).map_err(|_| SubsonicError::not_found("Playlist"))
}

/// The playlist if the caller may see it (theirs, or public).
async fn visible(
    state: &AppState,
    caller: &Caller,
    playlist_id: Uuid,
) -> Result<Summary, SubsonicError> {
    match playlists::get(&state.pool, playlist_id).await? {
        Some(p) if p.owner_id == caller.user_id || p.public => Ok(p),
        _ => Err(SubsonicError::not_found("Playlist")),
    }
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    if params
        .get("username")
        .is_some_and(|u| !u.is_empty() && u != caller.email)
    {
        return Err(SubsonicError::not_authorized(
            "only your own playlists can be listed by user name",
        ));
    }
    let all = playlists::visible(&state.pool, caller.user_id, true).await?;
    let list: Vec<Value> = all.iter().map(|p| playlist(p, caller)).collect();
    Ok(json!({"playlists": {"playlist": list}}))
}

async fn with_songs(
    state: &AppState,
    caller: &Caller,
    playlist_id: Uuid,
) -> Result<Value, SubsonicError> {
    let summary = visible(state, caller, playlist_id).await?;
    let limit = i64::try_from(MAX_ENTRIES).unwrap_or(i64::MAX);
    let items = playlists::items(&state.pool, playlist_id, 0, limit).await?;
    let mut ids: Vec<String> = items.iter().map(|i| i.track_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let tracks = music::tracks::many(&state.pool, summary.owner_id, &ids).await?;
    // Every entry is listed, so `songIndexToRemove` means what the app saw; one whose
    // track left the owner's library is named by its id only.
    let entry: Vec<Value> = items
        .iter()
        .map(|i| match tracks.iter().find(|t| t.track_id == i.track_id) {
            Some(track) => child(track),
            None => json!({"id": i.track_id, "isDir": false, "title": i.track_id}),
        })
        .collect();
    let mut value = playlist(&summary, caller);
    value["entry"] = Value::Array(entry);
    Ok(json!({"playlist": value}))
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let playlist_id = id(params.required("id")?)?;
    with_songs(state, caller, playlist_id).await
}

/// Song ids as sent; each must be in the caller's library.
async fn songs(
    state: &AppState,
    caller: &Caller,
    raw: &[&str],
) -> Result<Vec<TrackId>, SubsonicError> {
    if raw.len() > MAX_ENTRIES {
        return Err(SubsonicError::invalid(
            "a playlist holds at most 10000 songs",
        ));
    }
    let tracks = raw
        .iter()
        .map(|id| TrackId::parse(id).map_err(|_| SubsonicError::not_found("Song")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut wanted: Vec<String> = raw.iter().map(|s| (*s).to_owned()).collect();
    wanted.sort();
    wanted.dedup();
    let held = playlists::held_tracks(&state.pool, caller.user_id, &wanted).await?;
    if wanted.iter().any(|id| !held.contains(id)) {
        return Err(SubsonicError::not_found("Song"));
    }
    Ok(tracks)
}

/// Sends the command and waits until the playlist models show it.
async fn run(state: &AppState, caller: &Caller, command: Command) -> Result<(), SubsonicError> {
    let envelope = envelope(&HeaderMap::new(), Some(caller.user_id), command)
        .map_err(|e| SubsonicError::internal(&e))?;
    let outcome = match send(state, &envelope).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return Err(SubsonicError::generic("not answered in time; try again")),
        Err(error) => return Err(SubsonicError::internal(&error)),
    };
    if outcome.status != OutcomeStatus::Committed {
        let error = outcome.error.unwrap_or_else(|| {
            jukebox_domain::CommandError::new(ErrorCode::UnknownPlaylist, "refused")
        });
        return Err(match error.code {
            ErrorCode::NotPlaylistOwner => SubsonicError::not_authorized(error.message),
            ErrorCode::UnknownPlaylist | ErrorCode::UnknownPlaylistEntry => {
                SubsonicError::not_found("Playlist")
            }
            _ => SubsonicError::invalid(error.message),
        });
    }
    if let Some(position) = outcome.position.and_then(|p| p.parse().ok()) {
        wait_for(state, position, READS)
            .await
            .map_err(|_| SubsonicError::generic("the change is saved but not visible yet"))?;
    }
    Ok(())
}

fn name(raw: &str) -> Result<String, SubsonicError> {
    let name = raw.trim().to_owned();
    if !jukebox_domain::playlist::valid_name(&name) {
        return Err(SubsonicError::invalid(
            "a playlist name is 1 to 200 characters, without control characters",
        ));
    }
    Ok(name)
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let tracks = songs(state, caller, &params.all("songId")).await?;
    let playlist_id = match params.get("playlistId") {
        Some(raw) => {
            let playlist_id = id(raw)?;
            let command = Command::ReplacePlaylistTracks {
                playlist_id,
                user_id: caller.user_id,
                tracks,
            };
            run(state, caller, command).await?;
            playlist_id
        }
        None => {
            let playlist_id = Uuid::now_v7();
            let command = Command::CreatePlaylist {
                playlist_id,
                user_id: caller.user_id,
                name: name(params.required("name")?)?,
                description: String::new(),
                public: false,
                tracks,
            };
            run(state, caller, command).await?;
            playlist_id
        }
    };
    with_songs(state, caller, playlist_id).await
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let playlist_id = id(params.required("playlistId")?)?;
    let public = match params.get("public") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(SubsonicError::invalid("public is true or false")),
    };
    let remove_positions = params
        .all("songIndexToRemove")
        .iter()
        .map(|raw| {
            raw.parse::<usize>()
                .map_err(|_| SubsonicError::invalid("songIndexToRemove is a position from 0"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let description = params.get("comment").map(str::to_owned);
    if description
        .as_deref()
        .is_some_and(|d| !jukebox_domain::playlist::valid_description(d))
    {
        return Err(SubsonicError::invalid(
            "a playlist comment is at most 2000 characters",
        ));
    }
    let edit = Edit {
        name: params.get("name").map(name).transpose()?,
        description,
        public,
        remove_positions,
        remove_entries: Vec::new(),
        add: songs(state, caller, &params.all("songIdToAdd")).await?,
    };
    let command = Command::EditPlaylist {
        playlist_id,
        user_id: caller.user_id,
        edit,
    };
    run(state, caller, command).await?;
    Ok(Value::Object(Default::default()))
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let playlist_id = id(params.required("id")?)?;
    let command = Command::DeletePlaylist {
        playlist_id,
        user_id: caller.user_id,
    };
    run(state, caller, command).await?;
    Ok(Value::Object(Default::default()))
}
