//! Given events, then rows: the `music` fold, live (rows loaded by `keys` and
//! `more_keys`) and rebuilt agreeing.

use std::collections::BTreeMap;

use jukebox_domain::music::{album_id, artist_id, single_id};
use jukebox_domain::{Correction, StoredTrack, TrackId};

use super::*;
use crate::given::Log;

fn alice() -> Uuid {
    Uuid::from_u128(1)
}

fn bob() -> Uuid {
    Uuid::from_u128(2)
}

fn id(n: u32) -> TrackId {
    TrackId::parse(&format!("url:{n:08x}")).unwrap()
}

fn stored(
    n: u32,
    title: &str,
    artists: &[&str],
    album: Option<&str>,
    year: Option<i32>,
) -> TrackEvent {
    TrackEvent::TrackStored(StoredTrack {
        track_id: id(n),
        object_key: format!("tracks/{}.m4a", id(n)),
        size: 1_000,
        duration_ms: 60_000 + u64::from(n),
        codec: "aac".into(),
        bitrate: 256_000,
        title: Some(title.into()),
        artist: Some(artists.join(", ")),
        album: album.map(Into::into),
        artists: artists.iter().map(|a| a.to_string()).collect(),
        year,
        has_cover: n == 1,
        origin: "upload".into(),
        cover: None,
    })
}

fn added(user_id: Uuid, n: u32) -> LibraryEvent {
    LibraryEvent::TrackAddedToLibrary {
        user_id,
        track_id: id(n),
        job_id: Uuid::from_u128(0x10b),
    }
}

fn removed(user_id: Uuid, n: u32) -> LibraryEvent {
    LibraryEvent::TrackRemovedFromLibrary {
        user_id,
        track_id: id(n),
    }
}

fn entry(user_id: Uuid, n: u32) -> String {
    format!("{user_id}/{}", id(n))
}

/// Two tracks of one album (the second with a guest) and a single.
fn log() -> Log {
    Log::new()
        .event(
            "track",
            id(1),
            stored(1, "One", &["Band"], Some("LP"), Some(1999)),
        )
        .event(
            "track",
            id(2),
            stored(2, "Two", &["band", "Guest"], Some("lp"), Some(2001)),
        )
        .event("track", id(3), stored(3, "Alone", &["Guest"], None, None))
        .event("library_entry", entry(alice(), 1), added(alice(), 1))
        .event("library_entry", entry(alice(), 2), added(alice(), 2))
        .event("library_entry", entry(alice(), 3), added(alice(), 3))
        .event("library_entry", entry(bob(), 3), added(bob(), 3))
}

fn of_kind(rows: &BTreeMap<String, MusicRow>, user: Uuid, kind: &str) -> Vec<MusicRow> {
    rows.values()
        .filter(|r| r.kind == kind && r.user_id == Some(user))
        .cloned()
        .collect()
}

fn summary(rows: &[MusicRow]) -> Vec<(String, String, i32, i32, i64)> {
    let mut summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                r.name.clone(),
                r.track_count,
                r.album_count,
                r.duration_ms,
            )
        })
        .collect();
    summary.sort();
    summary
}

#[test]
fn tracks_gather_into_albums_and_artists_per_library() {
    let rows = log().rows::<Music>();
    let lp = album_id("Band", "LP").to_string();
    let single = single_id(id(3).as_str()).to_string();
    let (band, guest) = (
        artist_id("Band").to_string(),
        artist_id("Guest").to_string(),
    );
    let mut albums = vec![
        (lp.clone(), "LP".to_owned(), 2, 0, 120_003),
        (single.clone(), "Alone".to_owned(), 1, 0, 60_003),
    ];
    albums.sort();
    assert_eq!(summary(&of_kind(&rows, alice(), "album")), albums);
    let album = &rows[&Music::album_key(alice(), &lp)];
    assert_eq!(
        (album.artists.clone(), album.year, album.added_at),
        (vec!["Band".to_owned()], Some(2001), Some(Log::time(4)))
    );
    let mut artists = vec![
        (band.clone(), "Band".to_owned(), 2, 1, 120_003),
        (guest.clone(), "Guest".to_owned(), 2, 1, 120_005),
    ];
    artists.sort();
    assert_eq!(summary(&of_kind(&rows, alice(), "artist")), artists);
    assert_eq!(
        summary(&of_kind(&rows, bob(), "album")),
        [(single, "Alone".to_owned(), 1, 0, 60_003)],
        "bob's library holds only his track"
    );
    assert_eq!(
        summary(&of_kind(&rows, bob(), "artist")),
        [(guest, "Guest".to_owned(), 1, 1, 60_003)]
    );
    let two = &rows[&Music::entry_key(alice(), id(2).as_str())];
    assert_eq!(
        (two.artists.clone(), two.album_id.clone(), two.added_at),
        (
            vec!["band".to_owned(), "Guest".to_owned()],
            Some(lp),
            Some(Log::time(5))
        )
    );
}

#[test]
fn removing_the_last_track_drops_its_album_and_artists() {
    let rows = log()
        .event("library_entry", entry(alice(), 1), removed(alice(), 1))
        .event("library_entry", entry(alice(), 2), removed(alice(), 2))
        .event("library_entry", entry(alice(), 2), removed(alice(), 2))
        .rows::<Music>();
    assert_eq!(
        summary(&of_kind(&rows, alice(), "album")),
        [(
            single_id(id(3).as_str()).to_string(),
            "Alone".to_owned(),
            1,
            0,
            60_003
        )]
    );
    assert_eq!(
        summary(&of_kind(&rows, alice(), "artist")),
        [(
            artist_id("Guest").to_string(),
            "Guest".to_owned(),
            1,
            1,
            60_003
        )]
    );
    assert_eq!(of_kind(&rows, alice(), "entry").len(), 1);
    assert_eq!(rows.values().filter(|r| r.kind == "track").count(), 3);
}

#[test]
fn a_correction_moves_the_owners_entry_only() {
    let correction = Correction {
        title: Some("Solo".into()),
        artists: Some(vec!["Band".into()]),
        album: Some("LP".into()),
        year: None,
    };
    let rows = log()
        .event(
            "library_entry",
            entry(alice(), 3),
            LibraryEvent::TrackDetailsCorrected {
                user_id: alice(),
                track_id: id(3),
                correction,
            },
        )
        .rows::<Music>();
    let lp = album_id("Band", "LP").to_string();
    assert_eq!(
        summary(&of_kind(&rows, alice(), "album")),
        [(lp.clone(), "LP".to_owned(), 3, 0, 180_006)],
        "the single is gone, its track joined the LP"
    );
    let mut artists = vec![
        (
            artist_id("Band").to_string(),
            "Band".to_owned(),
            3,
            1,
            180_006,
        ),
        (
            artist_id("Guest").to_string(),
            "Guest".to_owned(),
            1,
            0,
            60_002,
        ),
    ];
    artists.sort();
    assert_eq!(summary(&of_kind(&rows, alice(), "artist")), artists);
    let solo = &rows[&Music::entry_key(alice(), id(3).as_str())];
    assert_eq!(
        (
            solo.name.as_str(),
            solo.album.as_deref(),
            solo.album_id.as_deref()
        ),
        ("Solo", Some("LP"), Some(lp.as_str()))
    );
    let bobs = &rows[&Music::entry_key(bob(), id(3).as_str())];
    assert_eq!(
        (bobs.name.as_str(), bobs.artists.clone()),
        ("Alone", vec!["Guest".to_owned()]),
        "bob keeps the source's details"
    );
}

#[test]
fn a_track_stored_before_issue_18_has_its_one_artist() {
    let mut event = serde_json::to_value(stored(1, "One", &["Band"], None, None)).unwrap();
    event["TrackStored"]
        .as_object_mut()
        .unwrap()
        .remove("artists");
    event["TrackStored"].as_object_mut().unwrap().remove("year");
    let old: TrackEvent = serde_json::from_value(event).unwrap();
    let rows = Log::new()
        .event("track", id(1), old)
        .event("library", alice(), added(alice(), 1))
        .event("library", alice(), added(alice(), 1))
        .rows::<Music>();
    assert_eq!(
        summary(&of_kind(&rows, alice(), "artist")),
        [(
            artist_id("Band").to_string(),
            "Band".to_owned(),
            1,
            1,
            60_001
        )]
    );
    assert_eq!(of_kind(&rows, alice(), "album").len(), 1);
}
