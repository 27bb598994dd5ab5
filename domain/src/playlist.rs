//! `Playlist`: one user's ordered list of tracks (id = a UUIDv7 the edge picks), issue 19,
//! ADR 27. Entries have their own numbers (`entry`, assigned here in order) so that edits
//! from two devices address entries, not positions that shift under them; a position
//! (Subsonic's `songIndexToRemove`, a drag's target) is resolved to entries against the
//! state the command meets. Each entry carries a `rank`: the list is the entries sorted by
//! rank, and a move changes one entry's rank (a whole renumbering only when two
//! neighbours leave no room between them), so the read model updates one row per move.
//!
//! Only the owner changes a playlist. Duplicates are allowed. A bulk add is one event.

use std::collections::HashSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::media::TrackId;

/// The aggregate type, for readers of the log without `cqrs_es`.
pub const AGGREGATE_TYPE: &str = "playlist";
/// The most entries a playlist holds: keeps the aggregate (and a load of it) bounded.
pub const MAX_ENTRIES: usize = 10_000;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// The gap between neighbours' ranks when they are appended or renumbered: 32 moves into
/// one gap before a renumbering, and 2^31 appends before the ranks run out.
pub const RANK_STEP: i64 = 1 << 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's number in its playlist, never reused.
    pub entry: u64,
    pub track_id: TrackId,
    pub rank: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked {
    pub entry: u64,
    pub rank: i64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Playlist {
    owner: Option<Uuid>,
    name: String,
    description: String,
    public: bool,
    deleted: bool,
    next_entry: u64,
    /// In list order (ascending rank).
    entries: Vec<Entry>,
}

impl Playlist {
    pub fn owner(&self) -> Option<Uuid> {
        self.owner
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    pub fn public(&self) -> bool {
        self.public
    }
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// Live (created and not deleted).
    pub fn exists(&self) -> bool {
        self.owner.is_some() && !self.deleted
    }

    /// Folds events (as the log reader returns them).
    pub fn from_events(events: impl IntoIterator<Item = PlaylistEvent>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// Several edits in one command, applied in this order: details, removals (positions in
/// the list as the command finds it), adds (appended). Subsonic's `updatePlaylist`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub public: Option<bool>,
    pub remove_positions: Vec<usize>,
    pub remove_entries: Vec<u64>,
    pub add: Vec<TrackId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlaylistCommand {
    Create {
        playlist_id: Uuid,
        owner: Uuid,
        name: String,
        description: String,
        public: bool,
        tracks: Vec<TrackId>,
    },
    Edit {
        by: Uuid,
        edit: Edit,
    },
    /// Moves an entry so that it ends at index `to` of the list.
    Move {
        by: Uuid,
        entry: u64,
        to: usize,
    },
    /// Replaces the whole list (Subsonic's `createPlaylist` with a `playlistId`).
    Replace {
        by: Uuid,
        tracks: Vec<TrackId>,
    },
    Delete {
        by: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlaylistEvent {
    PlaylistCreated {
        playlist_id: Uuid,
        owner: Uuid,
        name: String,
        description: String,
        public: bool,
    },
    PlaylistRenamed {
        name: String,
    },
    PlaylistDescribed {
        description: String,
    },
    PlaylistVisibilityChanged {
        public: bool,
    },
    PlaylistTracksAdded {
        entries: Vec<Entry>,
    },
    PlaylistEntriesRemoved {
        entries: Vec<u64>,
    },
    /// New ranks for these entries (one for a move; every entry for a renumbering).
    PlaylistEntriesMoved {
        ranks: Vec<Ranked>,
    },
    /// Lists the entries it held, so readers drop them without a look-up.
    PlaylistDeleted {
        entries: Vec<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlaylistError {
    #[error("no such playlist (it may have been deleted)")]
    UnknownPlaylist,
    #[error("a playlist with this id exists")]
    AlreadyCreated,
    #[error("only the playlist's owner can change it")]
    NotOwner,
    #[error("a playlist name is 1 to 200 characters, without control characters")]
    InvalidName,
    #[error("a playlist description is at most 2000 characters")]
    InvalidDescription,
    #[error("position {position} is outside the playlist (it has {len} tracks)")]
    PositionOutOfRange { position: usize, len: usize },
    #[error("entry {0} is not in the playlist (it may have been removed)")]
    UnknownEntry(u64),
    #[error("a playlist holds at most 10000 tracks")]
    TooManyEntries,
}

/// A name as people type it: trimmed, 1 to 200 characters, no control characters.
pub fn valid_name(name: &str) -> bool {
    let chars = name.chars().count();
    name.trim() == name
        && (1..=MAX_NAME_CHARS).contains(&chars)
        && !name.chars().any(char::is_control)
}

/// A description: at most 2,000 characters, no control characters but line breaks.
pub fn valid_description(description: &str) -> bool {
    description.chars().count() <= MAX_DESCRIPTION_CHARS
        && !description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
}

impl DomainEvent for PlaylistEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PlaylistCreated { .. } => "PlaylistCreated",
            Self::PlaylistRenamed { .. } => "PlaylistRenamed",
            Self::PlaylistDescribed { .. } => "PlaylistDescribed",
            Self::PlaylistVisibilityChanged { .. } => "PlaylistVisibilityChanged",
            Self::PlaylistTracksAdded { .. } => "PlaylistTracksAdded",
            Self::PlaylistEntriesRemoved { .. } => "PlaylistEntriesRemoved",
            Self::PlaylistEntriesMoved { .. } => "PlaylistEntriesMoved",
            Self::PlaylistDeleted { .. } => "PlaylistDeleted",
        }
        .into()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

/// The events a command makes, computed against a scratch copy of the state so that a
/// command of several edits sees its own earlier ones; nothing is written on an error.
struct Draft {
    state: Playlist,
    events: Vec<PlaylistEvent>,
}

impl Draft {
    fn push(&mut self, event: PlaylistEvent) {
        self.state.apply(event.clone());
        self.events.push(event);
    }

    fn owned_by(&self, by: Uuid) -> Result<(), PlaylistError> {
        if !self.state.exists() {
            return Err(PlaylistError::UnknownPlaylist);
        }
        if self.state.owner != Some(by) {
            return Err(PlaylistError::NotOwner);
        }
        Ok(())
    }

    fn add(&mut self, tracks: Vec<TrackId>) -> Result<(), PlaylistError> {
        if tracks.is_empty() {
            return Ok(());
        }
        if self.state.entries.len() + tracks.len() > MAX_ENTRIES {
            return Err(PlaylistError::TooManyEntries);
        }
        let last = i128::from(self.state.entries.last().map_or(0, |e| e.rank));
        let needed = i128::from(RANK_STEP) * tracks.len() as i128;
        if last + needed > i128::from(i64::MAX) {
            self.renumber(self.state.entries.iter().map(|e| e.entry).collect());
        }
        let mut rank = self.state.entries.last().map_or(0, |e| e.rank);
        let mut entry = self.state.next_entry;
        let entries = tracks
            .into_iter()
            .map(|track_id| {
                rank += RANK_STEP;
                entry += 1;
                Entry {
                    entry,
                    track_id,
                    rank,
                }
            })
            .collect();
        self.push(PlaylistEvent::PlaylistTracksAdded { entries });
        Ok(())
    }

    fn remove(&mut self, positions: &[usize], entries: &[u64]) -> Result<(), PlaylistError> {
        let len = self.state.entries.len();
        let mut gone: Vec<u64> = Vec::new();
        let mut seen = HashSet::new();
        for &position in positions {
            let Some(found) = self.state.entries.get(position) else {
                return Err(PlaylistError::PositionOutOfRange { position, len });
            };
            if seen.insert(found.entry) {
                gone.push(found.entry);
            }
        }
        for &entry in entries {
            if !self.state.entries.iter().any(|e| e.entry == entry) {
                return Err(PlaylistError::UnknownEntry(entry));
            }
            if seen.insert(entry) {
                gone.push(entry);
            }
        }
        if !gone.is_empty() {
            self.push(PlaylistEvent::PlaylistEntriesRemoved { entries: gone });
        }
        Ok(())
    }

    fn move_entry(&mut self, entry: u64, to: usize) -> Result<(), PlaylistError> {
        let entries = &self.state.entries;
        let Some(from) = entries.iter().position(|e| e.entry == entry) else {
            return Err(PlaylistError::UnknownEntry(entry));
        };
        if to >= entries.len() {
            return Err(PlaylistError::PositionOutOfRange {
                position: to,
                len: entries.len(),
            });
        }
        if from == to {
            return Ok(());
        }
        let mut order: Vec<&Entry> = entries.iter().filter(|e| e.entry != entry).collect();
        let before = to.checked_sub(1).and_then(|i| order.get(i)).map(|e| e.rank);
        let after = order.get(to).map(|e| e.rank);
        let rank = match (before, after) {
            (None, Some(next)) => next.checked_sub(RANK_STEP),
            (Some(prev), None) => prev.checked_add(RANK_STEP),
            (Some(prev), Some(next)) if i128::from(next) - i128::from(prev) >= 2 => {
                i64::try_from((i128::from(prev) + i128::from(next)) / 2).ok()
            }
            _ => None,
        };
        match rank {
            Some(rank) => self.push(PlaylistEvent::PlaylistEntriesMoved {
                ranks: vec![Ranked { entry, rank }],
            }),
            None => {
                let moved = &entries[from];
                order.insert(to, moved);
                let order = order.iter().map(|e| e.entry).collect();
                self.renumber(order);
            }
        }
        Ok(())
    }

    /// Every entry gets a fresh, evenly spaced rank, in `order`.
    fn renumber(&mut self, order: Vec<u64>) {
        let ranks = (1..)
            .zip(order)
            .map(|(i, entry)| Ranked {
                entry,
                rank: i * RANK_STEP,
            })
            .collect();
        self.push(PlaylistEvent::PlaylistEntriesMoved { ranks });
    }

    fn edit(&mut self, edit: Edit) -> Result<(), PlaylistError> {
        if let Some(name) = edit.name {
            if !valid_name(&name) {
                return Err(PlaylistError::InvalidName);
            }
            if name != self.state.name {
                self.push(PlaylistEvent::PlaylistRenamed { name });
            }
        }
        if let Some(description) = edit.description {
            if !valid_description(&description) {
                return Err(PlaylistError::InvalidDescription);
            }
            if description != self.state.description {
                self.push(PlaylistEvent::PlaylistDescribed { description });
            }
        }
        if let Some(public) = edit.public {
            if public != self.state.public {
                self.push(PlaylistEvent::PlaylistVisibilityChanged { public });
            }
        }
        self.remove(&edit.remove_positions, &edit.remove_entries)?;
        self.add(edit.add)
    }
}

impl Aggregate for Playlist {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = PlaylistCommand;
    type Event = PlaylistEvent;
    type Error = PlaylistError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let mut draft = Draft {
            state: self.clone(),
            events: Vec::new(),
        };
        match command {
            PlaylistCommand::Create {
                playlist_id,
                owner,
                name,
                description,
                public,
                tracks,
            } => {
                if self.owner.is_some() {
                    return Err(PlaylistError::AlreadyCreated);
                }
                if !valid_name(&name) {
                    return Err(PlaylistError::InvalidName);
                }
                if !valid_description(&description) {
                    return Err(PlaylistError::InvalidDescription);
                }
                draft.push(PlaylistEvent::PlaylistCreated {
                    playlist_id,
                    owner,
                    name,
                    description,
                    public,
                });
                draft.add(tracks)?;
            }
            PlaylistCommand::Edit { by, edit } => {
                draft.owned_by(by)?;
                draft.edit(edit)?;
            }
            PlaylistCommand::Move { by, entry, to } => {
                draft.owned_by(by)?;
                draft.move_entry(entry, to)?;
            }
            PlaylistCommand::Replace { by, tracks } => {
                draft.owned_by(by)?;
                let all: Vec<u64> = draft.state.entries.iter().map(|e| e.entry).collect();
                draft.remove(&[], &all)?;
                draft.add(tracks)?;
            }
            PlaylistCommand::Delete { by } => {
                draft.owned_by(by)?;
                let entries = draft.state.entries.iter().map(|e| e.entry).collect();
                draft.push(PlaylistEvent::PlaylistDeleted { entries });
            }
        }
        for event in draft.events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PlaylistEvent::PlaylistCreated {
                owner,
                name,
                description,
                public,
                ..
            } => {
                self.owner = Some(owner);
                self.name = name;
                self.description = description;
                self.public = public;
            }
            PlaylistEvent::PlaylistRenamed { name } => self.name = name,
            PlaylistEvent::PlaylistDescribed { description } => self.description = description,
            PlaylistEvent::PlaylistVisibilityChanged { public } => self.public = public,
            PlaylistEvent::PlaylistTracksAdded { entries } => {
                for entry in entries {
                    self.next_entry = self.next_entry.max(entry.entry);
                    let at = self.entries.partition_point(|e| e.rank <= entry.rank);
                    self.entries.insert(at, entry);
                }
            }
            PlaylistEvent::PlaylistEntriesRemoved { entries } => {
                let gone: HashSet<u64> = entries.into_iter().collect();
                self.entries.retain(|e| !gone.contains(&e.entry));
            }
            PlaylistEvent::PlaylistEntriesMoved { ranks } => {
                if let [Ranked { entry, rank }] = ranks[..] {
                    // One move: take it out and put it back where its rank says, O(n).
                    if let Some(from) = self.entries.iter().position(|e| e.entry == entry) {
                        let mut moved = self.entries.remove(from);
                        moved.rank = rank;
                        let at = self.entries.partition_point(|e| e.rank <= rank);
                        self.entries.insert(at, moved);
                    }
                    return;
                }
                let ranks: std::collections::HashMap<u64, i64> =
                    ranks.into_iter().map(|r| (r.entry, r.rank)).collect();
                for entry in &mut self.entries {
                    if let Some(rank) = ranks.get(&entry.entry) {
                        entry.rank = *rank;
                    }
                }
                self.entries.sort_by_key(|e| e.rank);
            }
            PlaylistEvent::PlaylistDeleted { .. } => {
                self.deleted = true;
                self.entries.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests;
