//! Song methods over the caller's library (the `music` read model, with the owner's
//! corrections): getSong, getRandomSongs, search3 (an empty query pages through the
//! whole library, as Symfonium's sync expects), getGenres.

use jukebox_projections::music::{self, tracks, AlbumSort, Track};
use jukebox_projections::subsonic;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::browse::{album_id3, artist_id3};
use super::{Caller, Params, SubsonicError};
use crate::state::AppState;

/// The largest page any list method answers.
pub const MAX_PAGE: i64 = 500;

pub fn rfc3339(at: Option<OffsetDateTime>) -> String {
    at.unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A song as the spec's `Child`. Ids are the track ids (`yt:…`, `url:…`), strings; its
/// parent is its album.
pub fn child(track: &Track) -> Value {
    let mut child = Map::new();
    child.insert("id".into(), Value::from(track.track_id.clone()));
    child.insert("parent".into(), Value::from(track.album_id.clone()));
    child.insert("isDir".into(), Value::from(false));
    child.insert("title".into(), Value::from(track.title.clone()));
    child.insert("album".into(), Value::from(track.album.clone()));
    child.insert("albumId".into(), Value::from(track.album_id.clone()));
    if let (false, Some(id)) = (track.artists.is_empty(), track.artist_ids.first()) {
        child.insert("artist".into(), Value::from(track.artists.join(", ")));
        child.insert(
            "displayArtist".into(),
            Value::from(track.artists.join(", ")),
        );
        child.insert("artistId".into(), Value::from(id.clone()));
        let artists: Vec<Value> = track
            .artists
            .iter()
            .zip(&track.artist_ids)
            .map(|(name, id)| json!({"id": id, "name": name}))
            .collect();
        child.insert("artists".into(), Value::Array(artists));
    }
    if let Some(year) = track.year {
        child.insert("year".into(), Value::from(year));
    }
    if track.cover_stored {
        child.insert("coverArt".into(), Value::from(track.track_id.clone()));
    }
    child.insert("size".into(), Value::from(track.size));
    // Every stored track is AAC in MP4 (the downloader transcodes to it).
    child.insert("contentType".into(), Value::from("audio/mp4"));
    child.insert("suffix".into(), Value::from("m4a"));
    child.insert(
        "duration".into(),
        Value::from((track.duration_ms + 500) / 1000),
    );
    if track.bitrate > 0 {
        child.insert("bitRate".into(), Value::from((track.bitrate + 500) / 1000));
    }
    child.insert("created".into(), Value::from(rfc3339(track.added_at)));
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
    let track = tracks::get(&state.pool, caller.user_id, id)
        .await?
        .ok_or_else(|| SubsonicError::not_found("Song"))?;
    Ok(json!({"song": child(&track)}))
}

pub async fn random_songs(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let size = params.int("size", 10, 1, MAX_PAGE)?;
    folder(params)?;
    let from = params.int("fromYear", i64::MIN, i64::MIN, i64::MAX)?;
    let to = params.int("toYear", i64::MAX, i64::MIN, i64::MAX)?;
    // No song has a genre yet: a genre filter matches nothing.
    let songs: Vec<Track> = if params.get("genre").is_some_and(|g| !g.is_empty()) {
        Vec::new()
    } else {
        tracks::random(&state.pool, caller.user_id, size).await?
    };
    let in_years = |t: &&Track| {
        (from == i64::MIN && to == i64::MAX)
            || t.year.is_some_and(|y| (from..=to).contains(&i64::from(y)))
    };
    let songs: Vec<Value> = songs.iter().filter(in_years).map(child).collect();
    Ok(json!({"randomSongs": {"song": songs}}))
}

/// `musicFolderId`, when given, must be the library's.
pub fn folder(params: &Params) -> Result<(), SubsonicError> {
    match params.get("musicFolderId") {
        None | Some("") => Ok(()),
        Some(id) if id == super::system::LIBRARY_FOLDER.to_string() => Ok(()),
        Some(_) => Err(SubsonicError::not_found("Music folder")),
    }
}

/// How many artists or albums a text search looks through (a library has far fewer).
const SEARCH_SCAN: i64 = 20_000;

pub async fn search3(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let query = params.required("query")?;
    let query = query.trim().trim_matches('"').trim();
    let text = (!query.is_empty() && query != "*").then(|| query.to_lowercase());
    let song_count = params.int("songCount", 20, 0, MAX_PAGE)?;
    let song_offset = params.int("songOffset", 0, 0, i64::from(i32::MAX))?;
    let artist_count = params.int("artistCount", 20, 0, MAX_PAGE)?;
    let artist_offset = params.int("artistOffset", 0, 0, i64::from(i32::MAX))?;
    let album_count = params.int("albumCount", 20, 0, MAX_PAGE)?;
    let album_offset = params.int("albumOffset", 0, 0, i64::from(i32::MAX))?;
    folder(params)?;
    let (pool, user) = (&state.pool, caller.user_id);
    let skip = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    let (artists, albums, songs) = match &text {
        None => (
            if artist_count > 0 {
                music::artists::page(pool, user, artist_count, artist_offset).await?
            } else {
                Vec::new()
            },
            if album_count > 0 {
                music::albums::page(
                    pool,
                    user,
                    AlbumSort::AlphabeticalByName,
                    album_count,
                    album_offset,
                )
                .await?
            } else {
                Vec::new()
            },
            if song_count > 0 {
                tracks::page(pool, user, song_count, song_offset).await?
            } else {
                Vec::new()
            },
        ),
        Some(text) => {
            let artists = if artist_count > 0 {
                let all = music::artists::page(pool, user, SEARCH_SCAN, 0).await?;
                all.into_iter()
                    .filter(|a| a.name.to_lowercase().contains(text.as_str()))
                    .skip(skip(artist_offset))
                    .take(skip(artist_count))
                    .collect()
            } else {
                Vec::new()
            };
            let albums = if album_count > 0 {
                let all =
                    music::albums::page(pool, user, AlbumSort::AlphabeticalByName, SEARCH_SCAN, 0)
                        .await?;
                all.into_iter()
                    .filter(|a| {
                        a.name.to_lowercase().contains(text.as_str())
                            || a.artist.to_lowercase().contains(text.as_str())
                    })
                    .skip(skip(album_offset))
                    .take(skip(album_count))
                    .collect()
            } else {
                Vec::new()
            };
            let mut songs = Vec::new();
            if song_count > 0 {
                let ids =
                    subsonic::matching_songs(pool, user, text, song_offset, song_count).await?;
                for id in ids {
                    songs.extend(tracks::get(pool, user, &id).await?);
                }
            }
            (artists, albums, songs)
        }
    };
    Ok(json!({"searchResult3": {
        "artist": artists.iter().map(artist_id3).collect::<Vec<_>>(),
        "album": albums.iter().map(album_id3).collect::<Vec<_>>(),
        "song": songs.iter().map(child).collect::<Vec<_>>(),
    }}))
}

/// No song carries a genre yet.
pub fn genres() -> Value {
    json!({"genres": {"genre": []}})
}
