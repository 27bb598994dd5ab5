//! Given events, then rows: both playlist folds, live and rebuilt agreeing; and, as a
//! property, the entries' order in the read model equals a plain list's under any edits.

use cqrs_es::test::TestFramework;
use jukebox_domain::playlist::{Edit, PlaylistCommand, RANK_STEP};
use jukebox_domain::{Playlist, TrackId};
use proptest::prelude::*;

use super::*;
use crate::given::Log;

const TYPE: &str = jukebox_domain::playlist::AGGREGATE_TYPE;

fn list() -> Uuid {
    Uuid::from_u128(0x11)
}

fn owner() -> Uuid {
    Uuid::from_u128(1)
}

fn track(n: usize) -> TrackId {
    TrackId::parse(&format!("yt:{n:011}")).unwrap()
}

fn created() -> PlaylistEvent {
    PlaylistEvent::PlaylistCreated {
        playlist_id: list(),
        owner: owner(),
        name: "Mix".into(),
        description: String::new(),
        public: false,
    }
}

fn entry(entry: u64, n: usize) -> Entry {
    Entry {
        entry,
        track_id: track(n),
        rank: entry as i64 * RANK_STEP,
    }
}

/// The table's entries of `list()` in order, as track ids (not the owner row).
fn order(table: &std::collections::BTreeMap<String, EntryRow>) -> Vec<String> {
    let mut rows: Vec<&EntryRow> = table.values().filter(|r| r.entry_no >= 0).collect();
    rows.sort_by_key(|r| (r.rank, r.entry_no));
    rows.iter().map(|r| r.track_id.clone()).collect()
}

#[test]
fn a_playlist_row_follows_its_details_and_count() {
    let log = Log::new()
        .event(TYPE, list(), created())
        .event(
            TYPE,
            list(),
            PlaylistEvent::PlaylistTracksAdded {
                entries: vec![entry(1, 1), entry(2, 2), entry(3, 1)],
            },
        )
        .event(
            TYPE,
            list(),
            PlaylistEvent::PlaylistRenamed {
                name: "Road".into(),
            },
        )
        .event(
            TYPE,
            list(),
            PlaylistEvent::PlaylistVisibilityChanged { public: true },
        )
        .event(
            TYPE,
            list(),
            PlaylistEvent::PlaylistEntriesRemoved { entries: vec![2] },
        );
    let rows = log.rows::<Playlists>();
    let row = &rows[&list().to_string()];
    assert_eq!(
        (row.name.as_str(), row.public, row.entry_count, row.owner_id),
        ("Road", true, 2, owner())
    );
    assert_eq!(row.created_at, Log::time(1));
    assert_eq!(row.updated_at, Log::time(5));
    let entries = log.rows::<PlaylistEntries>();
    assert_eq!(
        entries.keys().cloned().collect::<Vec<_>>(),
        vec![
            list().to_string(),
            format!("{}/1", list()),
            format!("{}/3", list())
        ]
    );
    assert!(entries.values().all(|row| row.owner_id == owner()));
    assert_eq!(
        entries[&list().to_string()].entry_no,
        PlaylistEntries::OWNER_ROW
    );
    // Deleted: both rows go.
    let log = log.event(
        TYPE,
        list(),
        PlaylistEvent::PlaylistDeleted {
            entries: vec![1, 3],
        },
    );
    assert!(log.rows::<Playlists>().is_empty());
    assert!(log.rows::<PlaylistEntries>().is_empty());
}

/// The owner's erasure (ADR 42) drops the entries of their playlists with the playlists,
/// live and rebuilt; another owner's stay.
#[test]
fn an_erasure_drops_the_owners_entries_too() {
    let other = Uuid::from_u128(0x22);
    let log = Log::new()
        .event(TYPE, list(), created())
        .event(
            TYPE,
            list(),
            PlaylistEvent::PlaylistTracksAdded {
                entries: vec![entry(1, 1), entry(2, 2)],
            },
        )
        .event(
            TYPE,
            other,
            PlaylistEvent::PlaylistCreated {
                playlist_id: other,
                owner: Uuid::from_u128(2),
                name: "Bobs".into(),
                description: String::new(),
                public: true,
            },
        )
        .event(
            TYPE,
            other,
            PlaylistEvent::PlaylistTracksAdded {
                entries: vec![entry(1, 1)],
            },
        )
        .event("user", owner(), jukebox_domain::UserEvent::UserErased);
    let entries = log.rows::<PlaylistEntries>();
    assert_eq!(
        entries.keys().cloned().collect::<Vec<_>>(),
        vec![other.to_string(), format!("{other}/1")]
    );
    assert_eq!(
        log.rows::<Playlists>().keys().cloned().collect::<Vec<_>>(),
        vec![other.to_string()]
    );
}

#[test]
fn a_move_rewrites_one_entry_and_a_renumbering_all() {
    let log = Log::new().event(TYPE, list(), created()).event(
        TYPE,
        list(),
        PlaylistEvent::PlaylistTracksAdded {
            entries: vec![entry(1, 1), entry(2, 2), entry(3, 3)],
        },
    );
    let moved = log.event(
        TYPE,
        list(),
        PlaylistEvent::PlaylistEntriesMoved {
            ranks: vec![Ranked { entry: 3, rank: 0 }],
        },
    );
    let table = moved.rows::<PlaylistEntries>();
    assert_eq!(
        order(&table),
        [track(3), track(1), track(2)]
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        PlaylistEntries::keys(&moved.records()[2]),
        vec![format!("{}/3", list())]
    );
}

/// One edit of the property's sequence.
#[derive(Debug, Clone)]
enum Op {
    Add(Vec<usize>),
    Remove(usize),
    Move(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(0..4usize, 1..4).prop_map(Op::Add),
        (0..10usize).prop_map(Op::Remove),
        (0..10usize, 0..10usize).prop_map(|(a, b)| Op::Move(a, b)),
    ]
}

proptest! {
    /// The aggregate's events, folded into `playlist_entries` (live and rebuilt), give
    /// the order the same edits give a plain list.
    #[test]
    fn the_entries_fold_keeps_a_plain_lists_order(ops in proptest::collection::vec(op(), 1..30)) {
        let mut events = vec![created()];
        let mut model: Vec<TrackId> = Vec::new();
        for op in ops {
            let state = Playlist::from_events(events.clone());
            let by = owner();
            let command = match &op {
                Op::Add(tracks) => PlaylistCommand::Edit { by, edit: Edit {
                    add: tracks.iter().map(|n| track(*n)).collect(),
                    ..Edit::default()
                } },
                Op::Remove(at) => PlaylistCommand::Edit { by, edit: Edit {
                    remove_positions: vec![*at],
                    ..Edit::default()
                } },
                Op::Move(from, to) => PlaylistCommand::Move {
                    by,
                    entry: state.entries().get(*from).map_or(u64::MAX, |e| e.entry),
                    to: *to,
                },
            };
            let Ok(more) = TestFramework::<Playlist>::with(()).given(events.clone())
                .when(command).inspect_result() else { continue };
            match op {
                Op::Add(tracks) => model.extend(tracks.iter().map(|n| track(*n))),
                Op::Remove(at) => { model.remove(at); }
                Op::Move(from, to) => { let t = model.remove(from); model.insert(to, t); }
            }
            events.extend(more);
        }
        let log = events.into_iter().fold(Log::new(), |log, e| log.event(TYPE, list(), e));
        let table = log.rows::<PlaylistEntries>();
        let expected: Vec<String> = model.iter().map(ToString::to_string).collect();
        prop_assert_eq!(order(&table), expected);
        let playlists = log.rows::<Playlists>();
        prop_assert_eq!(playlists[&list().to_string()].entry_count as usize, model.len());
    }
}
