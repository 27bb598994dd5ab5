//! A user's marks on a track (issue 19: when they starred it, how often and when last
//! they played it), kept on their library entry so that a page reads them with its rows:
//! joining `favourites` and `plays` cost two index probes per row, four times the
//! page's own work (ADR 49).
//!
//! A star outlives the track's removal from the library and shows again when the track
//! comes back, so the library also keeps a `marks/<user>/<track>` row for every track
//! the user marked, in the library or not. It has no `user_id` (no list of entries
//! reads it) and names its user in `owner_id`, which erasure deletes by. An entry copies
//! its marks from it when added.

use std::collections::HashMap;

use jukebox_domain::{FavouriteEvent, FavouriteKind, PlayEvent};
use jukebox_nats::EventRecord;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{LibraryRow, UserLibrary};

/// The aggregates whose events carry marks.
pub(super) const AGGREGATES: [&str; 2] = [
    jukebox_domain::favourite::AGGREGATE_TYPE,
    jukebox_domain::play::AGGREGATE_TYPE,
];

/// A mark an event sets on `(user, track)`.
enum Mark {
    Starred(OffsetDateTime),
    Unstarred,
    Played(OffsetDateTime),
}

fn mark(event: &EventRecord) -> Option<(Uuid, String, Mark)> {
    match event.aggregate_type.as_str() {
        jukebox_domain::favourite::AGGREGATE_TYPE => {
            let decoded = event.decode::<FavouriteEvent>().ok()?;
            let (user_id, item) = decoded.item();
            if item.kind != FavouriteKind::Track {
                return None;
            }
            let track_id = item.item_id.clone();
            let mark = match decoded {
                FavouriteEvent::ItemStarred { starred_at, .. } => Mark::Starred(starred_at),
                FavouriteEvent::ItemUnstarred { .. } => Mark::Unstarred,
            };
            Some((user_id, track_id, mark))
        }
        jukebox_domain::play::AGGREGATE_TYPE => match event.decode::<PlayEvent>().ok()? {
            PlayEvent::PlayRecorded {
                user_id,
                track_id,
                played_at,
            } => Some((
                user_id,
                track_id.as_str().to_owned(),
                Mark::Played(played_at),
            )),
        },
        _ => None,
    }
}

pub(super) fn key(user_id: Uuid, track_id: &str) -> String {
    format!("marks/{user_id}/{track_id}")
}

/// The rows a mark event touches (its marks row and the entry, if any), or `None` when
/// the event carries no mark.
pub(super) fn keys(event: &EventRecord) -> Option<Vec<String>> {
    let (user_id, track_id, _) = mark(event)?;
    Some(vec![
        key(user_id, &track_id),
        UserLibrary::entry_id(user_id, &track_id),
    ])
}

/// Folds a mark event into the marks row and the entry; `false` when it carries none.
pub(super) fn apply(rows: &mut HashMap<String, LibraryRow>, event: &EventRecord) -> bool {
    let Some((user_id, track_id, mark)) = mark(event) else {
        return false;
    };
    let marks_key = key(user_id, &track_id);
    let marks = rows
        .entry(marks_key.clone())
        .or_insert_with(|| marks_row(marks_key.clone(), user_id, &track_id));
    match mark {
        Mark::Starred(at) => marks.starred_at = Some(at),
        Mark::Unstarred => marks.starred_at = None,
        Mark::Played(at) => {
            marks.play_count = Some(marks.play_count.unwrap_or(0) + 1);
            // Plays may be sent late (a phone offline): the last is the latest time.
            marks.last_played = Some(marks.last_played.map_or(at, |last| last.max(at)));
        }
    }
    let marks = Marks::of(marks);
    if marks == Marks::default() {
        rows.remove(&marks_key);
    }
    if let Some(entry) = rows.get_mut(&UserLibrary::entry_id(user_id, &track_id)) {
        marks.set_on(entry);
    }
    true
}

/// Gives a new entry the marks its user already has on the track.
pub(super) fn copy_to_entry(rows: &mut HashMap<String, LibraryRow>, entry_key: &str) {
    let Some(entry) = rows.get(entry_key) else {
        return;
    };
    let Some(user_id) = entry.user_id else {
        return;
    };
    if let Some(marks) = rows.get(&key(user_id, &entry.track_id)).map(Marks::of) {
        if let Some(entry) = rows.get_mut(entry_key) {
            marks.set_on(entry);
        }
    }
}

/// The three mark columns of a row.
#[derive(Clone, Copy, Default, PartialEq)]
struct Marks {
    starred_at: Option<OffsetDateTime>,
    play_count: Option<i64>,
    last_played: Option<OffsetDateTime>,
}

impl Marks {
    fn of(row: &LibraryRow) -> Self {
        Self {
            starred_at: row.starred_at,
            play_count: row.play_count,
            last_played: row.last_played,
        }
    }

    fn set_on(self, row: &mut LibraryRow) {
        row.starred_at = self.starred_at;
        row.play_count = self.play_count;
        row.last_played = self.last_played;
    }
}

fn marks_row(entry_id: String, owner: Uuid, track_id: &str) -> LibraryRow {
    LibraryRow {
        owner_id: Some(owner),
        ..LibraryRow::known_by_id(entry_id, track_id)
    }
}
