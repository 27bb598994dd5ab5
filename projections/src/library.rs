//! `library`: each user's tracks with what `GET /library` shows and sorts on (title,
//! artist, duration, cover, whether a cover image is stored, added at), copied from
//! `TrackStored`, and where the track's objects are stored. It is the one read model
//! that answers both "is it in my library" and "may I stream it" (`GET /library`,
//! `GET /stream/{id}`, the stream role): one projector transaction, so they never
//! disagree.
//!
//! The copy needs the track's tags when `TrackAddedToLibrary` arrives, and a projection
//! only sees its own rows. So the table also keeps one `track/<track_id>` row per stored
//! track (no user): `TrackAddedToLibrary` loads it beside the entry and copies from it.
//! In relay order `TrackStored` always comes first: the downloader sends `CompleteImport`
//! only after `StoreTrack` committed (or finds the track stored), so the library
//! transaction's id is assigned after the track's committed. The track row also counts
//! the libraries that hold the track (`holders`), which the admin's catalog shows.

use std::collections::HashMap;

use jukebox_domain::{LibraryEvent, TrackEvent};
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runtime::Projection;

mod marks;
mod page;
pub use page::{like_pattern, page, page_for_session, Entry, Page, PageQuery, Resume, Sort};

pub struct UserLibrary;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LibraryRow {
    pub entry_id: String,
    /// `None` on a track row and a marks row.
    pub user_id: Option<Uuid>,
    /// The user an entry or a marks row belongs to (`None` on a track row): what erasure
    /// deletes by.
    pub owner_id: Option<Uuid>,
    pub track_id: String,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub title_key: String,
    pub artist_key: String,
    pub duration_ms: i64,
    pub has_cover: bool,
    /// A cover image is stored (GET /library hands out its signed URL).
    pub cover_stored: bool,
    /// `None` on a track row.
    pub added_at: Option<OffsetDateTime>,
    /// Libraries holding the track (track rows; 0 on entries).
    pub holders: i32,
    /// The audio object and its size, the cover image object (`None` on an entry whose
    /// track was never stored, which relay order rules out).
    pub object_key: Option<String>,
    pub size: Option<i64>,
    pub cover_key: Option<String>,
    pub cover_size: Option<i64>,
    pub cover_type: Option<String>,
    /// The user's marks on the track (entries and marks rows; `marks.rs`).
    pub starred_at: Option<OffsetDateTime>,
    pub play_count: Option<i64>,
    pub last_played: Option<OffsetDateTime>,
}

impl LibraryRow {
    /// A row of no user that knows only its key and track id.
    pub(crate) fn known_by_id(entry_id: String, track_id: &str) -> Self {
        Self {
            entry_id,
            user_id: None,
            owner_id: None,
            track_id: track_id.to_owned(),
            title: None,
            artist: None,
            title_key: String::new(),
            artist_key: String::new(),
            duration_ms: 0,
            has_cover: false,
            cover_stored: false,
            added_at: None,
            holders: 0,
            object_key: None,
            size: None,
            cover_key: None,
            cover_size: None,
            cover_type: None,
            starred_at: None,
            play_count: None,
            last_played: None,
        }
    }
}

impl UserLibrary {
    pub fn entry_id(user_id: Uuid, track_id: &str) -> String {
        format!("{user_id}/{track_id}")
    }

    pub fn track_key(track_id: &str) -> String {
        format!("track/{track_id}")
    }
}

fn sort_key(value: Option<&str>) -> String {
    value.unwrap_or_default().to_lowercase()
}

impl Projection for UserLibrary {
    const USER_COLUMN: Option<&'static str> = Some("owner_id");
    const NAME: &'static str = "library";
    const AGGREGATES: &'static [&'static str] = &[
        "track",
        "library",
        "library_entry",
        marks::AGGREGATES[0],
        marks::AGGREGATES[1],
    ];
    const TABLE: &'static str = "library";
    const KEY_COLUMN: &'static str = "entry_id";
    const KEY_TYPE: &'static str = "text";
    const COLUMNS: &'static [&'static str] = &[
        "entry_id",
        "user_id",
        "track_id",
        "title",
        "artist",
        "title_key",
        "artist_key",
        "duration_ms",
        "has_cover",
        "cover_stored",
        "added_at",
        "holders",
        "object_key",
        "size",
        "cover_key",
        "cover_size",
        "cover_type",
        "owner_id",
        "starred_at",
        "play_count",
        "last_played",
    ];
    type Row = LibraryRow;

    fn key(row: &Self::Row) -> String {
        row.entry_id.clone()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        match event.aggregate_type.as_str() {
            "track" => vec![Self::track_key(&event.aggregate_id)],
            "library" | "library_entry" => match event.decode::<LibraryEvent>() {
                Ok(LibraryEvent::TrackDetailsCorrected {
                    user_id, track_id, ..
                }) => vec![Self::entry_id(user_id, track_id.as_str())],
                Ok(
                    LibraryEvent::TrackAddedToLibrary {
                        user_id, track_id, ..
                    }
                    | LibraryEvent::TrackRemovedFromLibrary { user_id, track_id },
                ) => vec![
                    Self::entry_id(user_id, track_id.as_str()),
                    Self::track_key(track_id.as_str()),
                    marks::key(user_id, track_id.as_str()),
                ],
                Err(_) => Vec::new(),
            },
            _ => marks::keys(event).unwrap_or_default(),
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        if marks::apply(rows, event) {
            return;
        }
        match event.aggregate_type.as_str() {
            "track" => {
                let track = match event.decode::<TrackEvent>() {
                    Ok(TrackEvent::TrackStored(track)) => track,
                    // Discarded (ADR 42: nobody else had it): no row lists it for nobody.
                    Ok(TrackEvent::TrackDiscarded { .. }) => {
                        rows.remove(&Self::track_key(&event.aggregate_id));
                        return;
                    }
                    Err(_) => return,
                };
                let key = Self::track_key(track.track_id.as_str());
                let holders = rows.get(&key).map_or(0, |r| r.holders);
                let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                rows.insert(
                    key.clone(),
                    LibraryRow {
                        entry_id: key,
                        user_id: None,
                        owner_id: None,
                        track_id: track.track_id.to_string(),
                        title_key: sort_key(track.title.as_deref()),
                        artist_key: sort_key(track.artist.as_deref()),
                        title: track.title,
                        artist: track.artist,
                        duration_ms: i64::try_from(track.duration_ms).unwrap_or(i64::MAX),
                        has_cover: track.has_cover,
                        cover_stored: track.cover.is_some(),
                        added_at: None,
                        holders,
                        object_key: Some(track.object_key),
                        size: Some(as_i64(track.size)),
                        cover_size: track.cover.as_ref().map(|c| as_i64(c.size)),
                        cover_type: track.cover.as_ref().map(|c| c.content_type.clone()),
                        cover_key: track.cover.map(|c| c.object_key),
                        starred_at: None,
                        play_count: None,
                        last_played: None,
                    },
                );
            }
            "library" | "library_entry" => match event.decode::<LibraryEvent>() {
                Ok(LibraryEvent::TrackAddedToLibrary {
                    user_id, track_id, ..
                }) => {
                    let entry = Self::entry_id(user_id, track_id.as_str());
                    if rows.contains_key(&entry) {
                        return;
                    }
                    let key = Self::track_key(track_id.as_str());
                    // No track row would mean the order above was broken; the entry is
                    // still listed, with what is known (its id).
                    let track = rows
                        .entry(key.clone())
                        .or_insert_with(|| LibraryRow::known_by_id(key, track_id.as_str()));
                    track.holders += 1;
                    let row = LibraryRow {
                        entry_id: entry.clone(),
                        user_id: Some(user_id),
                        owner_id: Some(user_id),
                        added_at: Some(event.recorded_at),
                        holders: 0,
                        ..track.clone()
                    };
                    rows.insert(entry.clone(), row);
                    marks::copy_to_entry(rows, &entry);
                }
                Ok(LibraryEvent::TrackRemovedFromLibrary { user_id, track_id }) => {
                    if rows
                        .remove(&Self::entry_id(user_id, track_id.as_str()))
                        .is_some()
                    {
                        if let Some(track) = rows.get_mut(&Self::track_key(track_id.as_str())) {
                            track.holders = (track.holders - 1).max(0);
                        }
                    }
                }
                // The owner's title and artists, for their library only.
                Ok(LibraryEvent::TrackDetailsCorrected {
                    user_id,
                    track_id,
                    correction,
                }) => {
                    let Some(row) = rows.get_mut(&Self::entry_id(user_id, track_id.as_str()))
                    else {
                        return;
                    };
                    if let Some(title) = correction.title {
                        row.title_key = sort_key(Some(&title));
                        row.title = Some(title);
                    }
                    if let Some(artists) = correction.artists {
                        let artist = artists.join(", ");
                        row.artist_key = sort_key(Some(&artist));
                        row.artist = Some(artist);
                    }
                }
                Err(_) => {}
            },
            _ => {}
        }
    }

    /// An erased holder's entry no longer counts on its track's row.
    fn erased_keys(row: &Self::Row) -> Vec<String> {
        match row.user_id {
            Some(_) => vec![Self::track_key(&row.track_id)],
            None => Vec::new(),
        }
    }

    fn erased(rows: &mut HashMap<String, Self::Row>, gone: &Self::Row) {
        if gone.user_id.is_none() {
            return;
        }
        if let Some(track) = rows.get_mut(&Self::track_key(&gone.track_id)) {
            track.holders = (track.holders - 1).max(0);
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        let time = |t: &OffsetDateTime| t.format(&Rfc3339).expect("timestamps format");
        vec![
            Some(row.entry_id.clone()),
            row.user_id.map(|u| u.to_string()),
            Some(row.track_id.clone()),
            row.title.clone(),
            row.artist.clone(),
            Some(row.title_key.clone()),
            Some(row.artist_key.clone()),
            Some(row.duration_ms.to_string()),
            Some(row.has_cover.to_string()),
            Some(row.cover_stored.to_string()),
            row.added_at.as_ref().map(time),
            Some(row.holders.to_string()),
            row.object_key.clone(),
            row.size.map(|s| s.to_string()),
            row.cover_key.clone(),
            row.cover_size.map(|s| s.to_string()),
            row.cover_type.clone(),
            row.owner_id.map(|u| u.to_string()),
            row.starred_at.as_ref().map(time),
            row.play_count.map(|n| n.to_string()),
            row.last_played.as_ref().map(time),
        ]
    }
}

/// A stored track's objects, as the stream role serves them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrack {
    pub object_key: String,
    pub size: u64,
    /// `(key, size, content type)` of the cover image, when one is stored.
    pub cover: Option<(String, u64, String)>,
}

/// Whether a user may stream a track, from `library` alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Playable {
    /// No such stored track.
    Unknown,
    /// Stored, and not in this user's library.
    NotInLibrary(StoredTrack),
    InLibrary(StoredTrack),
}

/// "May `user_id` stream `track_id`": the track row and the user's entry, by key.
pub async fn playable(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    track_id: &str,
) -> Result<Playable, sqlx::Error> {
    /// user (None on the track row), object key, size, cover key, size and type.
    type Row = (
        Option<Uuid>,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT user_id, object_key, size, cover_key, cover_size, cover_type FROM library
             WHERE entry_id = ANY($1)",
    )
    .bind([
        UserLibrary::track_key(track_id),
        UserLibrary::entry_id(user_id, track_id),
    ])
    .fetch_all(pool)
    .await?;
    let size = |s: Option<i64>| s.and_then(|s| u64::try_from(s).ok()).unwrap_or_default();
    let track = rows.iter().find(|r| r.0.is_none()).and_then(|r| {
        Some(StoredTrack {
            object_key: r.1.clone()?,
            size: size(r.2),
            cover: r
                .3
                .clone()
                .map(|key| (key, size(r.4), r.5.clone().unwrap_or_default())),
        })
    });
    let mine = rows.iter().any(|r| r.0 == Some(user_id));
    Ok(match track {
        None => Playable::Unknown,
        Some(track) if mine => Playable::InLibrary(track),
        Some(track) => Playable::NotInLibrary(track),
    })
}

/// Of `track_ids`, those stored and those in `user_id`'s library (search results mark
/// both).
pub async fn marks(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    track_ids: &[String],
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let keys: Vec<String> = track_ids
        .iter()
        .flat_map(|t| [UserLibrary::track_key(t), UserLibrary::entry_id(user_id, t)])
        .collect();
    let rows: Vec<(Option<Uuid>, String)> =
        sqlx::query_as("SELECT user_id, track_id FROM library WHERE entry_id = ANY($1)")
            .bind(&keys)
            .fetch_all(pool)
            .await?;
    let (mine, stored): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.0.is_some());
    Ok((
        stored.into_iter().map(|r| r.1).collect(),
        mine.into_iter().map(|r| r.1).collect(),
    ))
}

/// What a user's library holds: its tracks and the stored bytes of those tracks (a track
/// stored once counts in full for every library that has it; ADR 41). Reads `tracks`
/// beside `library`: a caller waits for both.
pub async fn usage(pool: &sqlx::PgPool, user_id: Uuid) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), coalesce(sum(t.size), 0)::bigint
         FROM library l LEFT JOIN tracks t ON t.track_id = l.track_id
         WHERE l.user_id = $1",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
}

/// The track ids in a user's library, in id order (tests, tools).
pub async fn track_ids(pool: &sqlx::PgPool, user_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT track_id FROM library WHERE user_id = $1 ORDER BY track_id")
        .bind(user_id)
        .fetch_all(pool)
        .await
}

#[cfg(test)]
mod tests {
    use jukebox_domain::{StoredCover, StoredTrack, TrackId};

    use std::collections::BTreeMap;

    use super::*;
    use crate::given::Log;

    fn track() -> TrackId {
        TrackId::parse("url:0123abcd").unwrap()
    }

    fn alice() -> Uuid {
        Uuid::from_u128(1)
    }

    fn bob() -> Uuid {
        Uuid::from_u128(2)
    }

    fn stored() -> TrackEvent {
        TrackEvent::TrackStored(StoredTrack {
            track_id: track(),
            object_key: format!("tracks/{}.m4a", track()),
            size: 1_000,
            duration_ms: 61_500,
            codec: "aac".into(),
            bitrate: 256_000,
            title: Some("Loopback Sunrise".into()),
            artist: Some("The Test Tones".into()),
            album: None,
            artists: Vec::new(),
            year: None,
            has_cover: true,
            origin: "https://example.com/a.mp3".into(),
            cover: Some(StoredCover {
                object_key: format!("tracks/{}.jpg", track()),
                size: 100,
                content_type: "image/jpeg".into(),
            }),
        })
    }

    fn added(user_id: Uuid) -> LibraryEvent {
        LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id: track(),
            job_id: Uuid::from_u128(0x10b),
        }
    }

    fn removed(user_id: Uuid) -> LibraryEvent {
        LibraryEvent::TrackRemovedFromLibrary {
            user_id,
            track_id: track(),
        }
    }

    /// The track stored, then added by Alice (to her legacy per-user stream) and by Bob.
    fn held_by_alice_and_bob() -> Log {
        Log::new()
            .event("track", track(), stored())
            .event("library", alice(), added(alice()))
            .event(
                "library_entry",
                format!("{}/{}", bob(), track()),
                added(bob()),
            )
    }

    fn track_row(holders: i32) -> LibraryRow {
        LibraryRow {
            entry_id: UserLibrary::track_key(track().as_str()),
            user_id: None,
            owner_id: None,
            track_id: track().to_string(),
            title: Some("Loopback Sunrise".into()),
            artist: Some("The Test Tones".into()),
            title_key: "loopback sunrise".into(),
            artist_key: "the test tones".into(),
            duration_ms: 61_500,
            has_cover: true,
            cover_stored: true,
            added_at: None,
            holders,
            object_key: Some(format!("tracks/{}.m4a", track())),
            size: Some(1_000),
            cover_key: Some(format!("tracks/{}.jpg", track())),
            cover_size: Some(100),
            cover_type: Some("image/jpeg".into()),
            starred_at: None,
            play_count: None,
            last_played: None,
        }
    }

    #[test]
    fn a_stored_track_is_a_track_row_held_by_no_one() {
        let rows = Log::new()
            .event("track", track(), stored())
            .rows::<UserLibrary>();
        assert_eq!(rows.values().collect::<Vec<_>>(), [&track_row(0)]);
    }

    #[test]
    fn entries_copy_the_track_and_the_track_row_counts_its_holders() {
        let rows = held_by_alice_and_bob()
            .event("library", alice(), added(alice()))
            .rows::<UserLibrary>();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[&UserLibrary::track_key(track().as_str())],
            track_row(2),
            "adding a held track again counts nothing"
        );
        let entry = UserLibrary::entry_id(alice(), track().as_str());
        assert_eq!(
            rows[&entry],
            LibraryRow {
                entry_id: entry.clone(),
                user_id: Some(alice()),
                owner_id: Some(alice()),
                added_at: Some(Log::time(2)),
                holders: 0,
                ..track_row(0)
            }
        );
    }

    #[test]
    fn a_discarded_track_is_listed_for_nobody_until_stored_again() {
        let discarded = TrackEvent::TrackDiscarded {
            object_keys: vec![format!("tracks/{}.m4a", track())],
        };
        let log = Log::new()
            .event("track", track(), stored())
            .event("library", alice(), added(alice()))
            .event("user", alice(), jukebox_domain::UserEvent::UserErased)
            .event("track", track(), discarded);
        assert!(log.rows::<UserLibrary>().is_empty());
        let rows = log
            .event("track", track(), stored())
            .event(
                "library_entry",
                format!("{}/{}", bob(), track()),
                added(bob()),
            )
            .rows::<UserLibrary>();
        assert_eq!(
            rows[&UserLibrary::track_key(track().as_str())],
            track_row(1)
        );
        assert_eq!(rows.len(), 2);
    }

    /// Given a track Alice and Bob hold, when Alice is erased, then her entry is gone and
    /// the track row counts Bob alone, live and in a rebuild alike (`rows` checks both).
    #[test]
    fn an_erased_holder_no_longer_counts() {
        let rows = held_by_alice_and_bob()
            .event("user", alice(), jukebox_domain::UserEvent::UserErased)
            .rows::<UserLibrary>();
        assert_eq!(
            rows.keys().collect::<Vec<_>>(),
            [
                &UserLibrary::entry_id(bob(), track().as_str()),
                &UserLibrary::track_key(track().as_str()),
            ]
        );
        assert_eq!(
            rows[&UserLibrary::track_key(track().as_str())],
            track_row(1)
        );
    }

    #[test]
    fn a_removal_drops_the_entry_and_one_holder_once() {
        let rows = held_by_alice_and_bob()
            .event("library", alice(), removed(alice()))
            .event("library", alice(), removed(alice()))
            .rows::<UserLibrary>();
        assert_eq!(
            rows.keys().collect::<Vec<_>>(),
            [
                &UserLibrary::entry_id(bob(), track().as_str()),
                &UserLibrary::track_key(track().as_str()),
            ]
        );
        assert_eq!(rows[&UserLibrary::track_key(track().as_str())].holders, 1);
    }

    fn starred(user_id: Uuid) -> jukebox_domain::FavouriteEvent {
        jukebox_domain::FavouriteEvent::ItemStarred {
            user_id,
            item: star_item(),
            starred_at: Log::time(100),
        }
    }

    fn unstarred(user_id: Uuid) -> jukebox_domain::FavouriteEvent {
        jukebox_domain::FavouriteEvent::ItemUnstarred {
            user_id,
            item: star_item(),
        }
    }

    fn star_item() -> jukebox_domain::FavouriteItem {
        jukebox_domain::FavouriteItem::parse(jukebox_domain::FavouriteKind::Track, track().as_str())
            .unwrap()
    }

    fn played(user_id: Uuid, minute: usize) -> jukebox_domain::PlayEvent {
        jukebox_domain::PlayEvent::PlayRecorded {
            user_id,
            track_id: track(),
            played_at: Log::time(minute),
        }
    }

    fn marks_of(
        rows: &BTreeMap<String, LibraryRow>,
        key: &str,
    ) -> (Option<OffsetDateTime>, Option<i64>, Option<OffsetDateTime>) {
        let row = &rows[key];
        (row.starred_at, row.play_count, row.last_played)
    }

    /// Given Alice's track, when she stars it and plays it twice (the second play sent
    /// late, with an earlier time), then her entry carries the star, two plays and the
    /// latest play time, as the marks row does; Bob's entry carries none.
    #[test]
    fn an_entry_carries_its_users_marks() {
        let rows = held_by_alice_and_bob()
            .event(
                "favourite",
                star_item().aggregate_id(alice()),
                starred(alice()),
            )
            .event("play", "p1", played(alice(), 50))
            .event("play", "p2", played(alice(), 40))
            .rows::<UserLibrary>();
        let marks = (Some(Log::time(100)), Some(2), Some(Log::time(50)));
        let alices = UserLibrary::entry_id(alice(), track().as_str());
        assert_eq!(marks_of(&rows, &alices), marks);
        assert_eq!(
            marks_of(&rows, &marks::key(alice(), track().as_str())),
            marks
        );
        assert_eq!(
            marks_of(&rows, &UserLibrary::entry_id(bob(), track().as_str())),
            (None, None, None)
        );
        let marks_row = &rows[&marks::key(alice(), track().as_str())];
        assert_eq!(
            (marks_row.user_id, marks_row.owner_id),
            (None, Some(alice()))
        );
        assert_eq!(rows.len(), 4, "track, two entries, Alice's marks");
    }

    /// Given a starred and played track Alice removed from her library, when she adds it
    /// again, then the entry shows her star and plays again; an unstar clears both rows.
    #[test]
    fn marks_outlive_a_removal_and_an_unstar_clears_them() {
        let log = Log::new()
            .event("track", track(), stored())
            .event("library", alice(), added(alice()))
            .event(
                "favourite",
                star_item().aggregate_id(alice()),
                starred(alice()),
            )
            .event("play", "p1", played(alice(), 30))
            .event("library", alice(), removed(alice()));
        let entry = UserLibrary::entry_id(alice(), track().as_str());
        assert!(!log.rows::<UserLibrary>().contains_key(&entry));
        let log = log.event("library", alice(), added(alice()));
        let marks = (Some(Log::time(100)), Some(1), Some(Log::time(30)));
        assert_eq!(marks_of(&log.rows::<UserLibrary>(), &entry), marks);

        let rows = log
            .event(
                "favourite",
                star_item().aggregate_id(alice()),
                unstarred(alice()),
            )
            .rows::<UserLibrary>();
        let unstarred = (None, Some(1), Some(Log::time(30)));
        assert_eq!(marks_of(&rows, &entry), unstarred);
        assert_eq!(
            marks_of(&rows, &marks::key(alice(), track().as_str())),
            unstarred
        );
    }

    /// A star alone, taken back, leaves no marks row; an album's star is not a track's.
    #[test]
    fn an_unstarred_track_keeps_no_marks_row_and_album_stars_are_not_marks() {
        let album = jukebox_domain::FavouriteItem::parse(
            jukebox_domain::FavouriteKind::Album,
            &Uuid::from_u128(7).to_string(),
        )
        .unwrap();
        let rows = Log::new()
            .event(
                "favourite",
                star_item().aggregate_id(alice()),
                starred(alice()),
            )
            .event(
                "favourite",
                star_item().aggregate_id(alice()),
                unstarred(alice()),
            )
            .event(
                "favourite",
                album.aggregate_id(alice()),
                jukebox_domain::FavouriteEvent::ItemStarred {
                    user_id: alice(),
                    item: album,
                    starred_at: Log::time(9),
                },
            )
            .rows::<UserLibrary>();
        assert!(rows.is_empty(), "{rows:?}");
    }

    /// Given marks of Alice's on a track in her library and on one that is not, when she
    /// is erased, then both marks rows go with her entry (live and rebuilt alike).
    #[test]
    fn an_erased_users_marks_are_forgotten() {
        let other = TrackId::parse("url:4567cdef").unwrap();
        let rows = Log::new()
            .event("track", track(), stored())
            .event("library", alice(), added(alice()))
            .event("play", "p1", played(alice(), 30))
            .event(
                "play",
                "p2",
                jukebox_domain::PlayEvent::PlayRecorded {
                    user_id: alice(),
                    track_id: other,
                    played_at: Log::time(31),
                },
            )
            .event("user", alice(), jukebox_domain::UserEvent::UserErased)
            .rows::<UserLibrary>();
        assert_eq!(
            rows.keys().collect::<Vec<_>>(),
            [&UserLibrary::track_key(track().as_str())]
        );
        assert_eq!(rows[&UserLibrary::track_key(track().as_str())].holders, 0);
    }

    #[test]
    fn an_entry_before_its_track_is_listed_by_id_and_the_track_keeps_its_count() {
        let log = Log::new().event("library", alice(), added(alice()));
        let rows = log.rows::<UserLibrary>();
        let entry = &rows[&UserLibrary::entry_id(alice(), track().as_str())];
        assert_eq!(entry.track_id, track().to_string());
        assert_eq!((entry.title.as_deref(), entry.duration_ms), (None, 0));

        let rows = log.event("track", track(), stored()).rows::<UserLibrary>();
        assert_eq!(
            rows[&UserLibrary::track_key(track().as_str())],
            track_row(1)
        );
    }
}
