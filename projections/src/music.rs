//! `music`: each user's library as artists and albums (issue 18, ADR 23). One table, four
//! kinds of row:
//! - `track/<track_id>` (`kind = 'track'`, no user): the stored track's details, which an
//!   entry copies when the track is added to a library;
//! - `<user>/t/<track_id>` (`entry`): the track in that library, with its details as the
//!   owner corrected them, its album id and artist ids;
//! - `<user>/al/<album_id>` (`album`): counts and total duration of the album's tracks in
//!   that library, its artist (the first artist of its tracks), year and when it came;
//! - `<user>/ar/<artist_id>` (`artist`): the artist's tracks, their duration, and the
//!   albums whose artist it is.
//!
//! Which album and artist rows an event touches is known only from the entry or track
//! row: those keys come from `more_keys`, after the runtime loaded the rows `keys` named.
//! An album's year is the latest year of the tracks it got (a removal does not lower it);
//! its cover is its first track's, read with the album (`albums`).

use std::collections::HashMap;

use jukebox_domain::music::TrackDetails;
use jukebox_domain::{LibraryEvent, TrackEvent};
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runtime::{text_array, Projection};

pub(crate) mod queries;
pub use queries::{albums, artists, tracks, Album, AlbumSort, Artist, Track};

pub struct Music;

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Track,
    Entry,
    Album,
    Artist,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Entry => "entry",
            Self::Album => "album",
            Self::Artist => "artist",
        }
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MusicRow {
    pub key: String,
    /// `track`, `entry`, `album` or `artist`.
    pub kind: String,
    /// `None` on a track row.
    pub user_id: Option<Uuid>,
    /// The track id (track, entry), album id or artist id.
    pub id: String,
    /// Title, album title or artist name.
    pub name: String,
    /// `name` in lower case: the sort key.
    pub name_key: String,
    /// Track, entry: its artists; album: its artist; artist: itself.
    pub artists: Vec<String>,
    pub artist_ids: Vec<String>,
    /// Lower-cased first artist: the sort key of albums by artist.
    pub artist_key: String,
    /// Track, entry: the album named by the source or the owner (`None`: a single).
    pub album: Option<String>,
    /// Entry: its album's id.
    pub album_id: Option<String>,
    pub year: Option<i32>,
    /// A track's duration, or the total of an album's or artist's tracks.
    pub duration_ms: i64,
    /// Album, artist: tracks in the library.
    pub track_count: i32,
    /// Artist: albums whose artist it is.
    pub album_count: i32,
    /// Track, entry: a cover image is stored.
    pub cover_stored: bool,
    /// Track, entry: the audio object's size, bit rate and codec.
    pub size: i64,
    pub bitrate: i64,
    pub codec: String,
    /// Entry: when added; album, artist: when its first track was added.
    pub added_at: Option<OffsetDateTime>,
}

impl Music {
    pub fn track_key(track_id: &str) -> String {
        format!("track/{track_id}")
    }

    pub fn entry_key(user_id: Uuid, track_id: &str) -> String {
        format!("{user_id}/t/{track_id}")
    }

    pub fn album_key(user_id: Uuid, album_id: &str) -> String {
        format!("{user_id}/al/{album_id}")
    }

    pub fn artist_key(user_id: Uuid, artist_id: &str) -> String {
        format!("{user_id}/ar/{artist_id}")
    }
}

fn lower(value: &str) -> String {
    value.to_lowercase()
}

/// A track or entry row carrying `details`.
fn with_details(row: &mut MusicRow, details: &TrackDetails) {
    row.name = details.title.clone();
    row.name_key = lower(&details.title);
    row.artists = details.artists.clone();
    row.artist_ids = details.artist_ids().iter().map(Uuid::to_string).collect();
    row.artist_key = lower(details.album_artist());
    row.album = details.album.clone();
    row.year = details.year;
}

/// The details a track or entry row carries.
fn details_of(row: &MusicRow) -> TrackDetails {
    TrackDetails {
        title: row.name.clone(),
        artists: row.artists.clone(),
        album: row.album.clone(),
        year: row.year,
    }
}

fn empty(key: String, kind: Kind, user_id: Option<Uuid>, id: String) -> MusicRow {
    MusicRow {
        key,
        kind: kind.as_str().to_owned(),
        user_id,
        id,
        name: String::new(),
        name_key: String::new(),
        artists: Vec::new(),
        artist_ids: Vec::new(),
        artist_key: String::new(),
        album: None,
        album_id: None,
        year: None,
        duration_ms: 0,
        track_count: 0,
        album_count: 0,
        cover_stored: false,
        size: 0,
        bitrate: 0,
        codec: String::new(),
        added_at: None,
    }
}

/// The album and artist keys an entry with these details counts in.
fn counted_keys(user_id: Uuid, track_id: &str, details: &TrackDetails) -> Vec<String> {
    let mut keys = vec![Music::album_key(
        user_id,
        &details.album_id(track_id).to_string(),
    )];
    keys.extend(
        details
            .artist_ids()
            .iter()
            .map(|id| Music::artist_key(user_id, &id.to_string())),
    );
    keys
}

/// Counts `entry` in its album and artists.
fn count_in(rows: &mut HashMap<String, MusicRow>, user_id: Uuid, entry: &MusicRow) {
    let details = details_of(entry);
    let album_id = entry.album_id.clone().unwrap_or_default();
    let album_key = Music::album_key(user_id, &album_id);
    let new_album = !rows.contains_key(&album_key);
    let album = rows.entry(album_key.clone()).or_insert_with(|| {
        let mut album = empty(album_key, Kind::Album, Some(user_id), album_id);
        album.name = details.album_title().to_owned();
        album.name_key = lower(&album.name);
        album.artists = vec![details.album_artist().to_owned()];
        album.artist_ids = vec![entry.artist_ids[0].clone()];
        album.artist_key = lower(details.album_artist());
        album.added_at = entry.added_at;
        album
    });
    album.track_count += 1;
    album.duration_ms += entry.duration_ms;
    album.year = album.year.max(details.year);
    for (i, (name, id)) in entry.artists.iter().zip(&entry.artist_ids).enumerate() {
        let key = Music::artist_key(user_id, id);
        let artist = rows.entry(key.clone()).or_insert_with(|| {
            let mut artist = empty(key, Kind::Artist, Some(user_id), id.clone());
            artist.name = name.clone();
            artist.name_key = lower(name);
            artist.artists = vec![name.clone()];
            artist.artist_ids = vec![id.clone()];
            artist.artist_key = lower(name);
            artist.added_at = entry.added_at;
            artist
        });
        artist.track_count += 1;
        artist.duration_ms += entry.duration_ms;
        if i == 0 && new_album {
            artist.album_count += 1;
        }
    }
}

/// Takes `entry` out of its album's and artists' counts, and drops what is left empty.
fn count_out(rows: &mut HashMap<String, MusicRow>, user_id: Uuid, entry: &MusicRow) {
    let album_key = Music::album_key(user_id, entry.album_id.as_deref().unwrap_or_default());
    let mut album_gone = false;
    if let Some(album) = rows.get_mut(&album_key) {
        album.track_count -= 1;
        album.duration_ms -= entry.duration_ms;
        if album.track_count <= 0 {
            rows.remove(&album_key);
            album_gone = true;
        }
    }
    for (i, id) in entry.artist_ids.iter().enumerate() {
        let key = Music::artist_key(user_id, id);
        if let Some(artist) = rows.get_mut(&key) {
            artist.track_count -= 1;
            artist.duration_ms -= entry.duration_ms;
            if i == 0 && album_gone {
                artist.album_count -= 1;
            }
            if artist.track_count <= 0 && artist.album_count <= 0 {
                rows.remove(&key);
            }
        }
    }
}

impl Projection for Music {
    const USER_COLUMN: Option<&'static str> = Some("user_id");
    const NAME: &'static str = "music";
    const AGGREGATES: &'static [&'static str] = &["track", "library", "library_entry"];
    const TABLE: &'static str = "music";
    const KEY_COLUMN: &'static str = "key";
    const KEY_TYPE: &'static str = "text";
    const COLUMNS: &'static [&'static str] = &[
        "key",
        "kind",
        "user_id",
        "id",
        "name",
        "name_key",
        "artists",
        "artist_ids",
        "artist_key",
        "album",
        "album_id",
        "year",
        "duration_ms",
        "track_count",
        "album_count",
        "cover_stored",
        "size",
        "bitrate",
        "codec",
        "added_at",
    ];
    type Row = MusicRow;

    fn key(row: &Self::Row) -> String {
        row.key.clone()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        match event.aggregate_type.as_str() {
            "track" => vec![Self::track_key(&event.aggregate_id)],
            "library" | "library_entry" => match event.decode::<LibraryEvent>() {
                Ok(event) => {
                    let (user_id, track_id) = event.entry();
                    vec![
                        Self::entry_key(user_id, track_id.as_str()),
                        Self::track_key(track_id.as_str()),
                    ]
                }
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn more_keys(rows: &HashMap<String, Self::Row>, event: &EventRecord) -> Vec<String> {
        if !matches!(event.aggregate_type.as_str(), "library" | "library_entry") {
            return Vec::new();
        }
        let Ok(event) = event.decode::<LibraryEvent>() else {
            return Vec::new();
        };
        let (user_id, track_id) = event.entry();
        let track_id = track_id.as_str();
        let entry = rows.get(&Self::entry_key(user_id, track_id));
        match (&event, entry) {
            (LibraryEvent::TrackAddedToLibrary { .. }, None) => {
                let details = rows
                    .get(&Self::track_key(track_id))
                    .map_or_else(unknown_details, details_of);
                counted_keys(user_id, track_id, &details)
            }
            (LibraryEvent::TrackRemovedFromLibrary { .. }, Some(entry)) => {
                counted_keys(user_id, track_id, &details_of(entry))
            }
            (LibraryEvent::TrackDetailsCorrected { correction, .. }, Some(entry)) => {
                let before = details_of(entry);
                let mut keys = counted_keys(user_id, track_id, &before);
                keys.extend(counted_keys(
                    user_id,
                    track_id,
                    &before.corrected(correction),
                ));
                keys
            }
            _ => Vec::new(),
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        match event.aggregate_type.as_str() {
            "track" => {
                let track = match event.decode::<TrackEvent>() {
                    Ok(TrackEvent::TrackStored(track)) => track,
                    // Discarded (ADR 42): the copy entries start from goes with it.
                    Ok(TrackEvent::TrackDiscarded { .. }) => {
                        rows.remove(&Self::track_key(&event.aggregate_id));
                        return;
                    }
                    Err(_) => return,
                };
                let track_id = track.track_id.to_string();
                let key = Self::track_key(&track_id);
                let mut row = empty(key.clone(), Kind::Track, None, track_id);
                with_details(&mut row, &TrackDetails::of(&track));
                let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                row.duration_ms = as_i64(track.duration_ms);
                row.cover_stored = track.cover.is_some();
                row.size = as_i64(track.size);
                row.bitrate = as_i64(track.bitrate);
                row.codec = track.codec;
                rows.insert(key, row);
            }
            "library" | "library_entry" => {
                let Ok(event) = event_of(event) else {
                    return;
                };
                apply_library(rows, event);
            }
            _ => {}
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        let time = |t: &OffsetDateTime| t.format(&Rfc3339).expect("timestamps format");
        vec![
            Some(row.key.clone()),
            Some(row.kind.clone()),
            row.user_id.map(|u| u.to_string()),
            Some(row.id.clone()),
            Some(row.name.clone()),
            Some(row.name_key.clone()),
            Some(text_array(&row.artists)),
            Some(text_array(&row.artist_ids)),
            Some(row.artist_key.clone()),
            row.album.clone(),
            row.album_id.clone(),
            row.year.map(|y| y.to_string()),
            Some(row.duration_ms.to_string()),
            Some(row.track_count.to_string()),
            Some(row.album_count.to_string()),
            Some(row.cover_stored.to_string()),
            Some(row.size.to_string()),
            Some(row.bitrate.to_string()),
            Some(row.codec.clone()),
            row.added_at.as_ref().map(time),
        ]
    }
}

/// A library event with the time it was recorded.
struct Recorded {
    event: LibraryEvent,
    at: OffsetDateTime,
}

fn event_of(record: &EventRecord) -> Result<Recorded, serde_json::Error> {
    Ok(Recorded {
        event: record.decode::<LibraryEvent>()?,
        at: record.recorded_at,
    })
}

/// An entry whose track was never stored (relay order rules it out): listed by its id.
fn unknown_details() -> TrackDetails {
    TrackDetails::new(None, Vec::new(), None, None)
}

fn apply_library(rows: &mut HashMap<String, MusicRow>, recorded: Recorded) {
    let (user_id, track_id) = recorded.event.entry();
    let track_id = track_id.as_str().to_owned();
    let entry_key = Music::entry_key(user_id, &track_id);
    match &recorded.event {
        LibraryEvent::TrackAddedToLibrary { .. } => {
            if rows.contains_key(&entry_key) {
                return;
            }
            let mut entry = match rows.get(&Music::track_key(&track_id)) {
                Some(track) => track.clone(),
                None => {
                    let mut row = empty(String::new(), Kind::Track, None, track_id.clone());
                    with_details(&mut row, &unknown_details());
                    row
                }
            };
            entry.key = entry_key.clone();
            entry.kind = Kind::Entry.as_str().to_owned();
            entry.user_id = Some(user_id);
            entry.added_at = Some(recorded.at);
            entry.album_id = Some(details_of(&entry).album_id(&track_id).to_string());
            count_in(rows, user_id, &entry);
            rows.insert(entry_key, entry);
        }
        LibraryEvent::TrackRemovedFromLibrary { .. } => {
            if let Some(entry) = rows.remove(&entry_key) {
                count_out(rows, user_id, &entry);
            }
        }
        LibraryEvent::TrackDetailsCorrected { correction, .. } => {
            let Some(mut entry) = rows.remove(&entry_key) else {
                return;
            };
            count_out(rows, user_id, &entry);
            let details = details_of(&entry).corrected(correction);
            with_details(&mut entry, &details);
            entry.album_id = Some(details.album_id(&track_id).to_string());
            count_in(rows, user_id, &entry);
            rows.insert(entry_key, entry);
        }
    }
}

#[cfg(test)]
mod tests;
