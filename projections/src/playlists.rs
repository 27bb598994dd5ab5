//! Playlists (issue 19, ADR 27): two read models from the `playlist` aggregate.
//! `playlists` has one row per live playlist (name, description, public, owner, entry
//! count); `playlist_entries` one row per entry, keyed `<playlist_id>/<entry>`, ordered by
//! the rank the aggregate assigned, so a move rewrites one row. Song details are read
//! from the owner's `music` entries when a page is served (`queries`).
//!
//! Every `playlist_entries` row names the playlist's owner, so an erasure deletes the
//! entries of the user's playlists as it deletes the playlists (ADR 42). Entries learn
//! the owner from the playlist's owner row (key `<playlist_id>`, `entry_no` -1, no track),
//! written at `PlaylistCreated`; readers of entries skip it (`entry_no >= 0`).

use std::collections::HashMap;

use jukebox_domain::playlist::{Entry, Ranked};
use jukebox_domain::PlaylistEvent;
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runtime::Projection;

mod queries;
pub use queries::*;

pub struct Playlists;
pub struct PlaylistEntries;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlaylistRow {
    pub playlist_id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub description: String,
    pub public: bool,
    pub entry_count: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EntryRow {
    pub entry_key: String,
    pub playlist_id: Uuid,
    pub entry_no: i64,
    pub track_id: String,
    pub rank: i64,
    pub owner_id: Uuid,
}

impl PlaylistEntries {
    pub fn key(playlist_id: &str, entry: u64) -> String {
        format!("{playlist_id}/{entry}")
    }

    /// The `entry_no` of a playlist's owner row.
    pub const OWNER_ROW: i64 = -1;
}

fn decode(event: &EventRecord) -> Option<PlaylistEvent> {
    (event.aggregate_type == jukebox_domain::playlist::AGGREGATE_TYPE)
        .then(|| event.decode::<PlaylistEvent>().ok())
        .flatten()
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Projection for Playlists {
    const USER_COLUMN: Option<&'static str> = Some("owner_id");
    const NAME: &'static str = "playlists";
    const AGGREGATES: &'static [&'static str] = &[jukebox_domain::playlist::AGGREGATE_TYPE];
    const TABLE: &'static str = "playlists";
    const KEY_COLUMN: &'static str = "playlist_id";
    const KEY_TYPE: &'static str = "uuid";
    const COLUMNS: &'static [&'static str] = &[
        "playlist_id",
        "owner_id",
        "name",
        "description",
        "public",
        "entry_count",
        "created_at",
        "updated_at",
    ];
    type Row = PlaylistRow;

    fn key(row: &Self::Row) -> String {
        row.playlist_id.to_string()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        match decode(event) {
            Some(_) => vec![event.aggregate_id.clone()],
            None => Vec::new(),
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let Some(decoded) = decode(event) else {
            return;
        };
        let key = &event.aggregate_id;
        if let PlaylistEvent::PlaylistCreated {
            playlist_id,
            owner,
            name,
            description,
            public,
        } = decoded
        {
            rows.insert(
                key.clone(),
                PlaylistRow {
                    playlist_id,
                    owner_id: owner,
                    name,
                    description,
                    public,
                    entry_count: 0,
                    created_at: event.recorded_at,
                    updated_at: event.recorded_at,
                },
            );
            return;
        }
        if let PlaylistEvent::PlaylistDeleted { .. } = decoded {
            rows.remove(key);
            return;
        }
        let Some(row) = rows.get_mut(key) else {
            return;
        };
        row.updated_at = event.recorded_at;
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        match decoded {
            PlaylistEvent::PlaylistRenamed { name } => row.name = name,
            PlaylistEvent::PlaylistDescribed { description } => row.description = description,
            PlaylistEvent::PlaylistVisibilityChanged { public } => row.public = public,
            PlaylistEvent::PlaylistTracksAdded { entries } => {
                row.entry_count += count(entries.len())
            }
            PlaylistEvent::PlaylistEntriesRemoved { entries } => {
                row.entry_count -= count(entries.len());
            }
            PlaylistEvent::PlaylistEntriesMoved { .. }
            | PlaylistEvent::PlaylistCreated { .. }
            | PlaylistEvent::PlaylistDeleted { .. } => {}
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        let time = |t: &OffsetDateTime| t.format(&Rfc3339).expect("timestamps format");
        vec![
            Some(row.playlist_id.to_string()),
            Some(row.owner_id.to_string()),
            Some(row.name.clone()),
            Some(row.description.clone()),
            Some(row.public.to_string()),
            Some(row.entry_count.to_string()),
            Some(time(&row.created_at)),
            Some(time(&row.updated_at)),
        ]
    }
}

impl Projection for PlaylistEntries {
    const USER_COLUMN: Option<&'static str> = Some("owner_id");
    const NAME: &'static str = "playlist_entries";
    const AGGREGATES: &'static [&'static str] = &[jukebox_domain::playlist::AGGREGATE_TYPE];
    const TABLE: &'static str = "playlist_entries";
    const KEY_COLUMN: &'static str = "entry_key";
    const KEY_TYPE: &'static str = "text";
    const COLUMNS: &'static [&'static str] = &[
        "entry_key",
        "playlist_id",
        "entry_no",
        "track_id",
        "rank",
        "owner_id",
    ];
    type Row = EntryRow;

    fn key(row: &Self::Row) -> String {
        row.entry_key.clone()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        let id = &event.aggregate_id;
        // The owner row: written at creation, read when entries are added.
        let (owner, entries): (bool, Vec<u64>) = match decode(event) {
            Some(PlaylistEvent::PlaylistCreated { .. }) => (true, Vec::new()),
            Some(PlaylistEvent::PlaylistTracksAdded { entries }) => {
                (true, entries.iter().map(|e| e.entry).collect())
            }
            Some(PlaylistEvent::PlaylistDeleted { entries }) => (true, entries),
            Some(PlaylistEvent::PlaylistEntriesRemoved { entries }) => (false, entries),
            Some(PlaylistEvent::PlaylistEntriesMoved { ranks }) => {
                (false, ranks.iter().map(|r| r.entry).collect())
            }
            _ => (false, Vec::new()),
        };
        let entries = entries.into_iter().map(|e| Self::key(id, e));
        owner
            .then(|| id.clone())
            .into_iter()
            .chain(entries)
            .collect()
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let id = &event.aggregate_id;
        let Ok(playlist_id) = Uuid::try_parse(id) else {
            return;
        };
        match decode(event) {
            Some(PlaylistEvent::PlaylistCreated { owner, .. }) => {
                rows.insert(
                    id.clone(),
                    EntryRow {
                        entry_key: id.clone(),
                        playlist_id,
                        entry_no: Self::OWNER_ROW,
                        track_id: String::new(),
                        rank: Self::OWNER_ROW,
                        owner_id: owner,
                    },
                );
            }
            Some(PlaylistEvent::PlaylistTracksAdded { entries }) => {
                // No owner row would mean a playlist never created, which the aggregate
                // rules out; the nil owner is nobody's.
                let owner_id = rows.get(id).map_or(Uuid::nil(), |row| row.owner_id);
                for Entry {
                    entry,
                    track_id,
                    rank,
                } in entries
                {
                    let key = Self::key(id, entry);
                    rows.insert(
                        key.clone(),
                        EntryRow {
                            entry_key: key,
                            playlist_id,
                            entry_no: as_i64(entry),
                            track_id: track_id.to_string(),
                            rank,
                            owner_id,
                        },
                    );
                }
            }
            Some(PlaylistEvent::PlaylistEntriesRemoved { entries }) => {
                for entry in entries {
                    rows.remove(&Self::key(id, entry));
                }
            }
            Some(PlaylistEvent::PlaylistDeleted { entries }) => {
                rows.remove(id);
                for entry in entries {
                    rows.remove(&Self::key(id, entry));
                }
            }
            Some(PlaylistEvent::PlaylistEntriesMoved { ranks }) => {
                for Ranked { entry, rank } in ranks {
                    if let Some(row) = rows.get_mut(&Self::key(id, entry)) {
                        row.rank = rank;
                    }
                }
            }
            _ => {}
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        vec![
            Some(row.entry_key.clone()),
            Some(row.playlist_id.to_string()),
            Some(row.entry_no.to_string()),
            Some(row.track_id.clone()),
            Some(row.rank.to_string()),
            Some(row.owner_id.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests;
