//! Song methods over the caller's library: getSong, getRandomSongs, search3 (an empty
//! query pages through the whole library, as Symfonium's sync expects), getGenres.

use jukebox_projections::subsonic::{self, Song};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

use super::{Caller, Params, SubsonicError};
use crate::state::AppState;

/// The largest page any list method answers.
pub const MAX_PAGE: i64 = 500;

/// A song as the spec's `Child`. Ids are the track ids (`yt:…`, `url:…`), strings.
pub fn child(song: &Song) -> Value {
    let mut child = Map::new();
    child.insert("id".into(), Value::from(song.track_id.clone()));
    child.insert("isDir".into(), Value::from(false));
    let title = song.title.clone().unwrap_or_else(|| song.track_id.clone());
    child.insert("title".into(), Value::from(title));
    if let Some(album) = &song.album {
        child.insert("album".into(), Value::from(album.clone()));
    }
    if let Some(artist) = &song.artist {
        child.insert("artist".into(), Value::from(artist.clone()));
    }
    if song.cover_stored {
        child.insert("coverArt".into(), Value::from(song.track_id.clone()));
    }
    if let Some(size) = song.size {
        child.insert("size".into(), Value::from(size));
    }
    // Every stored track is AAC in MP4 (the downloader transcodes to it).
    child.insert("contentType".into(), Value::from("audio/mp4"));
    child.insert("suffix".into(), Value::from("m4a"));
    child.insert(
        "duration".into(),
        Value::from((song.duration_ms + 500) / 1000),
    );
    if let Some(bitrate) = song.bitrate.filter(|b| *b > 0) {
        child.insert("bitRate".into(), Value::from((bitrate + 500) / 1000));
    }
    if let Some(added) = song.added_at.and_then(|t| t.format(&Rfc3339).ok()) {
        child.insert("created".into(), Value::from(added));
    }
    child.insert("isVideo".into(), Value::from(false));
    child.insert("type".into(), Value::from("music"));
    child.insert("mediaType".into(), Value::from("song"));
    Value::Object(child)
}

pub async fn get_song(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let id = params.required("id")?;
    let song = subsonic::song(&state.pool, caller.user_id, id)
        .await?
        .ok_or_else(|| SubsonicError::not_found("Song"))?;
    Ok(json!({"song": child(&song)}))
}

pub async fn random_songs(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let size = params.int("size", 10, 1, MAX_PAGE)?;
    folder(params)?;
    // No song has a genre yet: a genre filter matches nothing.
    let songs = if params.get("genre").is_some_and(|g| !g.is_empty()) {
        Vec::new()
    } else {
        subsonic::random(&state.pool, caller.user_id, size).await?
    };
    Ok(json!({"randomSongs": {"song": songs.iter().map(child).collect::<Vec<_>>()}}))
}

/// `musicFolderId`, when given, must be the library's.
pub fn folder(params: &Params) -> Result<(), SubsonicError> {
    match params.get("musicFolderId") {
        None | Some("") => Ok(()),
        Some(id) if id == super::system::LIBRARY_FOLDER.to_string() => Ok(()),
        Some(_) => Err(SubsonicError::not_found("Music folder")),
    }
}

pub async fn search3(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let query = params.required("query")?;
    let query = query.trim().trim_matches('"').trim();
    let text = (!query.is_empty() && query != "*").then_some(query);
    let count = params.int("songCount", 20, 0, MAX_PAGE)?;
    let offset = params.int("songOffset", 0, 0, i64::from(i32::MAX))?;
    params.int("artistCount", 20, 0, MAX_PAGE)?;
    params.int("albumCount", 20, 0, MAX_PAGE)?;
    folder(params)?;
    let songs = if count == 0 {
        Vec::new()
    } else {
        subsonic::songs(&state.pool, caller.user_id, text, offset, count).await?
    };
    Ok(json!({"searchResult3": {
        "artist": [],
        "album": [],
        "song": songs.iter().map(child).collect::<Vec<_>>(),
    }}))
}

/// No song carries a genre yet.
pub fn genres() -> Value {
    json!({"genres": {"genre": []}})
}
