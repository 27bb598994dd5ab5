//! Browsing by artist and album, from the `music` read model (ADR 23): the ID3 methods
//! (getArtists, getArtist, getAlbum, getAlbumList2) and the folder ones (getIndexes,
//! getMusicDirectory: the library folder holds artists, an artist its albums, an album
//! its songs). Another user's ids are not found (70), like unknown ones.

use jukebox_projections::favourites;
use jukebox_projections::music::{self, AlbumSort};
use jukebox_projections::music::{Album, Artist};
use jukebox_projections::plays::{self, PlayOrder};
use serde_json::{json, Map, Value};

use super::song::{child, folder, rfc3339, MAX_PAGE};
use super::system::LIBRARY_FOLDER;
use super::{Caller, Params, SubsonicError};
use crate::state::AppState;

/// Articles the index ignores ("The Beatles" under B): none, names are indexed as written.
const IGNORED_ARTICLES: &str = "";
/// Every artist of a library, for the indexes (far more than a library holds).
const ALL: i64 = 100_000;

pub fn artist_id3(artist: &Artist) -> Value {
    json!({"id": artist.id, "name": artist.name, "albumCount": artist.album_count})
}

pub fn album_id3(album: &Album) -> Value {
    let mut value = Map::new();
    value.insert("id".into(), Value::from(album.id.clone()));
    value.insert("name".into(), Value::from(album.name.clone()));
    value.insert("artist".into(), Value::from(album.artist.clone()));
    value.insert("artistId".into(), Value::from(album.artist_id.clone()));
    if let Some(cover) = album.cover_track_id() {
        value.insert("coverArt".into(), Value::from(cover));
    }
    value.insert("songCount".into(), Value::from(album.track_count));
    value.insert(
        "duration".into(),
        Value::from((album.duration_ms + 500) / 1000),
    );
    value.insert("created".into(), Value::from(rfc3339(album.added_at)));
    if let Some(year) = album.year {
        value.insert("year".into(), Value::from(year));
    }
    Value::Object(value)
}

/// An album as a folder (`Child` with `isDir`), under its artist.
pub fn album_dir(album: &Album) -> Value {
    let mut value = Map::new();
    value.insert("id".into(), Value::from(album.id.clone()));
    value.insert("parent".into(), Value::from(album.artist_id.clone()));
    value.insert("isDir".into(), Value::from(true));
    value.insert("title".into(), Value::from(album.name.clone()));
    value.insert("album".into(), Value::from(album.name.clone()));
    value.insert("artist".into(), Value::from(album.artist.clone()));
    if let Some(cover) = album.cover_track_id() {
        value.insert("coverArt".into(), Value::from(cover));
    }
    if let Some(year) = album.year {
        value.insert("year".into(), Value::from(year));
    }
    value.insert("created".into(), Value::from(rfc3339(album.added_at)));
    Value::Object(value)
}

/// The index letter of a name: its first letter upper-cased, `#` for anything else.
fn letter(name: &str) -> String {
    match name.chars().next() {
        Some(c) if c.is_alphabetic() => c.to_uppercase().collect(),
        _ => "#".into(),
    }
}

/// Artists grouped by letter, each group built by `entry`.
fn indexed(artists: &[Artist], entry: impl Fn(&Artist) -> Value) -> Vec<Value> {
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for artist in artists {
        let key = letter(&artist.name);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(entry(artist)),
            None => groups.push((key, vec![entry(artist)])),
        }
    }
    groups.sort_by(|a, b| (a.0 == "#").cmp(&(b.0 == "#")).then(a.0.cmp(&b.0)));
    groups
        .into_iter()
        .map(|(name, artists)| json!({"name": name, "artist": artists}))
        .collect()
}

pub async fn artists(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    folder(params)?;
    let artists = music::artists::page(&state.pool, caller.user_id, ALL, 0).await?;
    Ok(json!({"artists": {
        "ignoredArticles": IGNORED_ARTICLES,
        "index": indexed(&artists, artist_id3),
    }}))
}

pub async fn indexes(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    folder(params)?;
    let artists = music::artists::page(&state.pool, caller.user_id, ALL, 0).await?;
    let index = indexed(&artists, |a| json!({"id": a.id, "name": a.name}));
    Ok(json!({"indexes": {
        "ignoredArticles": IGNORED_ARTICLES,
        // Nothing tells when the library last changed without a read of its own; 0 makes
        // clients that compare it always take the answer.
        "lastModified": 0,
        "index": index,
    }}))
}

pub async fn artist(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let id = params.required("id")?;
    let (artist, albums) = music::artists::get(&state.pool, caller.user_id, id)
        .await?
        .ok_or_else(|| SubsonicError::not_found("Artist"))?;
    let mut value = artist_id3(&artist);
    value["album"] = Value::Array(albums.iter().map(album_id3).collect());
    Ok(json!({ "artist": value }))
}

pub async fn album(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let id = params.required("id")?;
    let (album, tracks) = music::albums::get(&state.pool, caller.user_id, id)
        .await?
        .ok_or_else(|| SubsonicError::not_found("Album"))?;
    let mut value = album_id3(&album);
    value["song"] = Value::Array(tracks.iter().map(child).collect());
    Ok(json!({ "album": value }))
}

pub async fn album_list2(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let kind = params.required("type")?;
    let size = params.int("size", 10, 1, MAX_PAGE)?;
    let offset = params.int("offset", 0, 0, i64::from(i32::MAX))?;
    folder(params)?;
    let sort = match kind {
        "newest" => Some(AlbumSort::Newest),
        "alphabeticalByName" => Some(AlbumSort::AlphabeticalByName),
        "alphabeticalByArtist" => Some(AlbumSort::AlphabeticalByArtist),
        "random" => Some(AlbumSort::Random),
        "byYear" => {
            let year = |name| {
                let raw = params.required(name)?;
                raw.parse::<i32>()
                    .map_err(|_| SubsonicError::invalid(format!("{name} must be a year")))
            };
            Some(AlbumSort::ByYear {
                from: year("fromYear")?,
                to: year("toYear")?,
            })
        }
        "byGenre" => {
            params.required("genre")?;
            // No album has a genre yet.
            None
        }
        "starred" | "recent" | "frequent" => {
            let albums = listed(state, caller, kind, size, offset).await?;
            return Ok(
                json!({"albumList2": {"album": albums.iter().map(album_id3).collect::<Vec<_>>()}}),
            );
        }
        // Nothing is rated through Jukebox yet: this list is empty.
        "highest" => None,
        other => {
            return Err(SubsonicError::invalid(format!(
                "unknown list type `{other}`: newest, alphabeticalByName, \
                 alphabeticalByArtist, random, byYear, byGenre, frequent, recent, starred \
                 or highest"
            )))
        }
    };
    let albums = match sort {
        Some(sort) => music::albums::page(&state.pool, caller.user_id, sort, size, offset).await?,
        None => Vec::new(),
    };
    Ok(json!({"albumList2": {"album": albums.iter().map(album_id3).collect::<Vec<_>>()}}))
}

/// The albums of the lists that come from the caller's stars and plays.
async fn listed(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    size: i64,
    offset: i64,
) -> Result<Vec<Album>, SubsonicError> {
    let (pool, user) = (&state.pool, caller.user_id);
    Ok(match kind {
        "starred" => favourites::albums(pool, user, size, offset)
            .await?
            .into_iter()
            .map(|a| a.album)
            .collect(),
        "recent" => plays::albums(pool, user, PlayOrder::Recent, size, offset).await?,
        _ => plays::albums(pool, user, PlayOrder::Frequent, size, offset).await?,
    })
}

/// The library folder (its artists), an artist (its albums) or an album (its songs).
pub async fn directory(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Value, SubsonicError> {
    let id = params.required("id")?;
    let (pool, user) = (&state.pool, caller.user_id);
    if id == LIBRARY_FOLDER.to_string() {
        let artists = music::artists::page(pool, user, ALL, 0).await?;
        let children: Vec<Value> = artists
            .iter()
            .map(|a| json!({"id": a.id, "parent": id, "isDir": true, "title": a.name, "artist": a.name}))
            .collect();
        return Ok(json!({"directory": {"id": id, "name": "Library", "child": children}}));
    }
    if let Some((artist, albums)) = music::artists::get(pool, user, id).await? {
        let children: Vec<Value> = albums.iter().map(album_dir).collect();
        return Ok(json!({"directory": {
            "id": artist.id, "parent": LIBRARY_FOLDER.to_string(), "name": artist.name,
            "child": children,
        }}));
    }
    if let Some((album, tracks)) = music::albums::get(pool, user, id).await? {
        let children: Vec<Value> = tracks.iter().map(child).collect();
        return Ok(json!({"directory": {
            "id": album.id, "parent": album.artist_id, "name": album.name, "child": children,
        }}));
    }
    Err(SubsonicError::not_found("Directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artist(name: &str) -> Artist {
        Artist {
            id: name.to_lowercase(),
            name: name.into(),
            album_count: 1,
            track_count: 1,
            duration_ms: 1000,
        }
    }

    #[test]
    fn artists_are_indexed_by_first_letter_with_others_last() {
        let artists = [
            artist("abba"),
            artist("Zaz"),
            artist("ABBA"),
            artist("2Pac"),
            artist("Émile"),
        ];
        let index = indexed(&artists, |a| json!(a.name));
        assert_eq!(
            Value::Array(index),
            json!([
                {"name": "A", "artist": ["abba", "ABBA"]},
                {"name": "Z", "artist": ["Zaz"]},
                {"name": "É", "artist": ["Émile"]},
                {"name": "#", "artist": ["2Pac"]},
            ])
        );
    }
}
