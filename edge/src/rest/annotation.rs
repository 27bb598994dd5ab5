//! Favourites and plays over Subsonic (issue 19, ADR 26): star, unstar, getStarred,
//! getStarred2, scrobble (a play, or what plays now), getNowPlaying; and `mark`, which
//! adds `starred`, `playCount` and `played` to every song, album and artist an answer
//! holds. Every id of a request is checked before anything is sent, so a request with one
//! unknown id changes nothing; a write answers once the read models show it (the same
//! wait as the HTTP API's, `fresh::wait_for`), so the app's next list has it.

use axum::http::HeaderMap;
use jukebox_domain::{play, FavouriteItem, FavouriteKind, TrackId};
use jukebox_projections::{favourites, music, now_playing, Position, ReadModel};
use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};

use super::browse::{album_dir, album_id3, artist_id3};
use super::song::child;
use super::{Caller, Params, SubsonicError};
use crate::error::ApiError;
use crate::fresh::{models, wait_for};
use crate::marks::{rfc3339, MarkSet};
use crate::routes::favourites::send_star;
use crate::routes::plays::send_play;
use crate::state::AppState;

/// The most starred items of each kind a list answers.
const MAX_STARRED: i64 = 500;

/// An API error in the spec's terms: not found is 70, other refusals 10.
fn refused(error: ApiError) -> SubsonicError {
    match error {
        ApiError::Client {
            status, message, ..
        } => SubsonicError {
            code: if status == axum::http::StatusCode::NOT_FOUND {
                70
            } else {
                10
            },
            message,
            status: axum::http::StatusCode::OK,
        },
        other => SubsonicError::internal(&other),
    }
}

/// Waits until `model` shows the writes at these positions.
async fn shown(
    state: &AppState,
    positions: Vec<Option<String>>,
    model: ReadModel,
) -> Result<(), SubsonicError> {
    let last = positions
        .into_iter()
        .flatten()
        .filter_map(|p| p.parse::<Position>().ok())
        .max();
    if let Some(last) = last {
        wait_for(state, last, &[model]).await.map_err(refused)?;
    }
    Ok(())
}

/// The item `raw` names in the caller's library: for `id`, a song, an album or an
/// artist (folder clients star albums and artists by `id`); for `albumId`/`artistId`,
/// only that kind.
async fn resolve(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    only: Option<FavouriteKind>,
) -> Result<FavouriteItem, SubsonicError> {
    let kinds = match only {
        Some(kind) => vec![kind],
        None => vec![
            FavouriteKind::Track,
            FavouriteKind::Album,
            FavouriteKind::Artist,
        ],
    };
    for kind in kinds {
        let Ok(item) = FavouriteItem::parse(kind, raw) else {
            continue;
        };
        if crate::routes::favourites::in_library(&state.pool, caller.user_id, &item).await? {
            return Ok(item);
        }
    }
    Err(SubsonicError::not_found(match only {
        Some(FavouriteKind::Album) => "Album",
        Some(FavouriteKind::Artist) => "Artist",
        _ => "Song, album or artist",
    }))
}

/// `star` (`starred`) or `unstar`.
pub async fn star(
    state: &AppState,
    caller: &Caller,
    params: &Params,
    starred: bool,
) -> Result<Value, SubsonicError> {
    let mut items = Vec::new();
    for (name, only) in [
        ("id", None),
        ("albumId", Some(FavouriteKind::Album)),
        ("artistId", Some(FavouriteKind::Artist)),
    ] {
        for raw in params.all(name) {
            items.push(resolve(state, caller, raw, only).await?);
        }
    }
    if items.is_empty() {
        return Err(SubsonicError::missing("id, albumId or artistId"));
    }
    let mut positions = Vec::new();
    for item in &items {
        let sent = send_star(state, &HeaderMap::new(), caller.user_id, item, starred).await;
        positions.push(sent.map_err(refused)?);
    }
    shown(state, positions, models::FAVOURITES).await?;
    Ok(Value::Object(Map::new()))
}

/// `getStarred2` (ID3) or `getStarred` (folders).
pub async fn starred(state: &AppState, caller: &Caller, id3: bool) -> Result<Value, SubsonicError> {
    let (pool, user) = (&state.pool, caller.user_id);
    let artists = favourites::artists(pool, user, MAX_STARRED, 0).await?;
    let albums = favourites::albums(pool, user, MAX_STARRED, 0).await?;
    let songs = favourites::tracks(pool, user, MAX_STARRED, 0).await?;
    let songs: Vec<Value> = songs.iter().map(|s| child(&s.track)).collect();
    Ok(if id3 {
        json!({"starred2": {
            "artist": artists.iter().map(|a| artist_id3(&a.artist)).collect::<Vec<_>>(),
            "album": albums.iter().map(|a| album_id3(&a.album)).collect::<Vec<_>>(),
            "song": songs,
        }})
    } else {
        json!({"starred": {
            "artist": artists.iter().map(|a| json!({"id": a.artist.id, "name": a.artist.name})).collect::<Vec<_>>(),
            "album": albums.iter().map(|a| album_dir(&a.album)).collect::<Vec<_>>(),
            "song": songs,
        }})
    })
}

/// `scrobble`: with `submission` (the default) a play of each `id` at its `time` (now
/// when absent); without, what the player `c` plays now.
pub async fn scrobble(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let ids = params.all("id");
    if ids.is_empty() {
        return Err(SubsonicError::missing("id"));
    }
    let times = params.all("time");
    if !times.is_empty() && times.len() != ids.len() {
        return Err(SubsonicError::invalid(
            "give one time per id, or none (then each play is now)",
        ));
    }
    // py-sonic sends Python's `True`/`False`.
    let submission = match params.get("submission").map(str::to_ascii_lowercase) {
        None => true,
        Some(value) if value.is_empty() || value == "true" => true,
        Some(value) if value == "false" => false,
        Some(_) => return Err(SubsonicError::invalid("submission must be true or false")),
    };
    let now = OffsetDateTime::now_utc();
    let mut plays = Vec::new();
    for (i, raw) in ids.iter().enumerate() {
        let played_at = match times.get(i) {
            None => now,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .and_then(play::played_at_ms)
                .filter(|at| play::plausible(*at, now))
                .ok_or_else(|| {
                    SubsonicError::invalid(
                        "time must be milliseconds since 1970, from the year 2000 to now",
                    )
                })?,
        };
        let track = TrackId::parse(raw)
            .ok()
            .ok_or_else(|| SubsonicError::not_found("Song"))?;
        let Some(details) = music::tracks::get(&state.pool, caller.user_id, raw).await? else {
            return Err(SubsonicError::not_found("Song"));
        };
        plays.push((track, played_at, details.duration_ms));
    }
    if !submission {
        let client: String = params
            .get("c")
            .unwrap_or("unknown")
            .chars()
            .take(100)
            .collect();
        if let Some((track, started_at, duration_ms)) = plays.last() {
            let expires_at =
                *started_at + Duration::milliseconds(*duration_ms) + Duration::minutes(1);
            now_playing::set(
                &state.pool,
                caller.user_id,
                &client,
                track.as_str(),
                *started_at,
                expires_at,
            )
            .await?;
        }
        return Ok(Value::Object(Map::new()));
    }
    let mut positions = Vec::new();
    for (track, played_at, _) in &plays {
        let sent = send_play(state, &HeaderMap::new(), caller.user_id, track, *played_at).await;
        positions.push(sent.map_err(refused)?);
    }
    shown(state, positions, models::PLAYS).await?;
    Ok(Value::Object(Map::new()))
}

/// `getNowPlaying`: what the caller's own players play (no one else's: ADR 26).
pub async fn now_playing(state: &AppState, caller: &Caller) -> Result<Value, SubsonicError> {
    let now = OffsetDateTime::now_utc();
    let rows = now_playing::of_user(&state.pool, caller.user_id, now).await?;
    let mut entries = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(track) = music::tracks::get(&state.pool, caller.user_id, &row.track_id).await?
        else {
            continue;
        };
        let mut entry = child(&track);
        entry["username"] = Value::from(caller.email.clone());
        entry["minutesAgo"] = Value::from((now - row.started_at).whole_minutes().max(0));
        entry["playerId"] = Value::from(i);
        entry["playerName"] = Value::from(row.client.clone());
        entries.push(entry);
    }
    Ok(json!({"nowPlaying": {"entry": entries}}))
}

/// Every object of `value` with a string `id`, in order.
fn ids(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(id)) = map.get("id") {
                out.push(id.clone());
            }
            map.values().for_each(|v| ids(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| ids(v, out)),
        _ => {}
    }
}

fn put_marks(value: &mut Value, marks: &MarkSet) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(id)) = map.get("id") {
                let id = id.clone();
                if let Some(at) = marks.starred.get(&id) {
                    map.insert("starred".into(), Value::from(rfc3339(*at)));
                }
                if let Some(played) = marks.played.get(&id) {
                    map.insert("playCount".into(), Value::from(played.play_count));
                    map.insert("played".into(), Value::from(rfc3339(played.last_played)));
                }
            }
            map.values_mut().for_each(|v| put_marks(v, marks));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| put_marks(v, marks)),
        _ => {}
    }
}

/// Adds the caller's marks to every song, album and artist of an answer. Ids of songs,
/// albums and artists never collide (track ids have a `:`, the others are UUIDv5 of
/// different names), so one look-up per kind of figure serves them all.
pub async fn mark(
    state: &AppState,
    caller: &Caller,
    body: &mut Value,
) -> Result<(), SubsonicError> {
    let mut all = Vec::new();
    ids(body, &mut all);
    all.sort();
    all.dedup();
    if all.is_empty() {
        return Ok(());
    }
    let (pool, user) = (&state.pool, caller.user_id);
    let (tracks, others): (Vec<String>, Vec<String>) =
        all.iter().cloned().partition(|id| id.contains(':'));
    let marks = MarkSet::tracks(pool, user, &tracks)
        .await?
        .merge(MarkSet::albums(pool, user, &others).await?)
        .merge(MarkSet::artists(pool, user, &others).await?);
    put_marks(body, &marks);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jukebox_projections::plays::Played;

    #[test]
    fn marks_go_on_every_object_with_a_known_id() {
        let at = time::macros::datetime!(2026-01-01 00:00 UTC);
        let mut marks = MarkSet::default();
        marks.starred.insert("yt:a1".into(), at);
        marks.played.insert(
            "al".into(),
            Played {
                play_count: 3,
                last_played: at,
            },
        );
        let mut body = json!({"album": {"id": "al", "song": [{"id": "yt:a1"}, {"id": "yt:b2"}]},
                              "musicFolder": {"id": 1}});
        let mut found = Vec::new();
        ids(&body, &mut found);
        assert_eq!(found, vec!["al", "yt:a1", "yt:b2"]);
        put_marks(&mut body, &marks);
        assert_eq!(
            body,
            json!({"album": {"id": "al", "playCount": 3, "played": "2026-01-01T00:00:00Z",
                             "song": [{"id": "yt:a1", "starred": "2026-01-01T00:00:00Z"}, {"id": "yt:b2"}]},
                   "musicFolder": {"id": 1}})
        );
    }
}
