use super::*;
use cqrs_es::test::TestFramework;
use proptest::prelude::*;

type Framework = TestFramework<Playlist>;

fn track(n: usize) -> TrackId {
    TrackId::parse(&format!("yt:{n:011}")).unwrap()
}

fn ids() -> (Uuid, Uuid) {
    (Uuid::from_u128(7), Uuid::from_u128(1))
}

fn created() -> PlaylistEvent {
    let (playlist_id, owner) = ids();
    PlaylistEvent::PlaylistCreated {
        playlist_id,
        owner,
        name: "Road trip".into(),
        description: String::new(),
        public: false,
    }
}

fn added(first: u64, tracks: &[usize]) -> PlaylistEvent {
    PlaylistEvent::PlaylistTracksAdded {
        entries: (0..)
            .zip(tracks)
            .map(|(i, n)| Entry {
                entry: first + i,
                track_id: track(*n),
                rank: (first + i) as i64 * RANK_STEP,
            })
            .collect(),
    }
}

fn edit(edit: Edit) -> PlaylistCommand {
    PlaylistCommand::Edit { by: ids().1, edit }
}

fn order(events: Vec<PlaylistEvent>) -> Vec<TrackId> {
    Playlist::from_events(events)
        .entries()
        .iter()
        .map(|e| e.track_id.clone())
        .collect()
}

#[test]
fn a_playlist_is_created_with_its_tracks_in_one_add() {
    let (playlist_id, owner) = ids();
    Framework::with(())
        .given_no_previous_events()
        .when(PlaylistCommand::Create {
            playlist_id,
            owner,
            name: "Road trip".into(),
            description: String::new(),
            public: false,
            tracks: vec![track(1), track(2), track(1)],
        })
        .then_expect_events(vec![created(), added(1, &[1, 2, 1])]);
    Framework::with(())
        .given(vec![created()])
        .when(PlaylistCommand::Create {
            playlist_id,
            owner,
            name: "Again".into(),
            description: String::new(),
            public: false,
            tracks: vec![],
        })
        .then_expect_error(PlaylistError::AlreadyCreated);
}

#[test]
fn names_and_descriptions_are_checked_and_nothing_is_half_applied() {
    for name in ["", " x", "a\u{0}b", &"x".repeat(201)] {
        Framework::with(())
            .given(vec![created()])
            .when(edit(Edit {
                name: Some(name.into()),
                ..Edit::default()
            }))
            .then_expect_error(PlaylistError::InvalidName);
    }
    // A valid add after a bad description: refused as a whole.
    Framework::with(())
        .given(vec![created()])
        .when(edit(Edit {
            description: Some("x".repeat(2001)),
            add: vec![track(1)],
            ..Edit::default()
        }))
        .then_expect_error(PlaylistError::InvalidDescription);
    // A valid rename and add with an out-of-range removal: refused as a whole.
    Framework::with(())
        .given(vec![created(), added(1, &[1])])
        .when(edit(Edit {
            name: Some("New".into()),
            remove_positions: vec![1],
            add: vec![track(2)],
            ..Edit::default()
        }))
        .then_expect_error(PlaylistError::PositionOutOfRange {
            position: 1,
            len: 1,
        });
}

#[test]
fn only_the_owner_changes_a_live_playlist() {
    let stranger = Uuid::from_u128(99);
    Framework::with(())
        .given(vec![created()])
        .when(PlaylistCommand::Delete { by: stranger })
        .then_expect_error_message("only the playlist's owner can change it");
    Framework::with(())
        .given_no_previous_events()
        .when(PlaylistCommand::Delete { by: ids().1 })
        .then_expect_error(PlaylistError::UnknownPlaylist);
    Framework::with(())
        .given(vec![
            created(),
            added(1, &[1, 2]),
            PlaylistEvent::PlaylistDeleted {
                entries: vec![1, 2],
            },
        ])
        .when(edit(Edit {
            add: vec![track(3)],
            ..Edit::default()
        }))
        .then_expect_error(PlaylistError::UnknownPlaylist);
    Framework::with(())
        .given(vec![created(), added(1, &[1, 2])])
        .when(PlaylistCommand::Delete { by: ids().1 })
        .then_expect_events(vec![PlaylistEvent::PlaylistDeleted {
            entries: vec![1, 2],
        }]);
}

#[test]
fn an_update_applies_details_removals_then_adds() {
    Framework::with(())
        .given(vec![created(), added(1, &[1, 2, 3])])
        .when(edit(Edit {
            name: Some("Road trip".into()),
            public: Some(true),
            remove_positions: vec![2, 0, 2],
            add: vec![track(4)],
            ..Edit::default()
        }))
        .then_expect_events(vec![
            PlaylistEvent::PlaylistVisibilityChanged { public: true },
            PlaylistEvent::PlaylistEntriesRemoved {
                entries: vec![3, 1],
            },
            PlaylistEvent::PlaylistTracksAdded {
                entries: vec![Entry {
                    entry: 4,
                    track_id: track(4),
                    rank: 3 * RANK_STEP,
                }],
            },
        ]);
    Framework::with(())
        .given(vec![created(), added(1, &[1])])
        .when(edit(Edit {
            remove_entries: vec![5],
            ..Edit::default()
        }))
        .then_expect_error(PlaylistError::UnknownEntry(5));
}

#[test]
fn a_move_changes_one_rank_and_a_full_gap_renumbers() {
    Framework::with(())
        .given(vec![created(), added(1, &[1, 2, 3])])
        .when(PlaylistCommand::Move {
            by: ids().1,
            entry: 3,
            to: 0,
        })
        .then_expect_events(vec![PlaylistEvent::PlaylistEntriesMoved {
            ranks: vec![Ranked { entry: 3, rank: 0 }],
        }]);
    // Moving the last entry between the first two, again and again: the gap halves each
    // time and, once empty, the list is renumbered. The order is right throughout.
    let mut events = vec![created(), added(1, &[1, 2])];
    let mut model = vec![track(1), track(2)];
    for n in 3..40 {
        let more = Framework::with(())
            .given(events.clone())
            .when(edit(Edit {
                add: vec![track(n)],
                ..Edit::default()
            }))
            .inspect_result()
            .unwrap();
        events.extend(more);
        let last = Playlist::from_events(events.clone())
            .entries()
            .last()
            .unwrap()
            .entry;
        let more = Framework::with(())
            .given(events.clone())
            .when(PlaylistCommand::Move {
                by: ids().1,
                entry: last,
                to: 1,
            })
            .inspect_result()
            .unwrap();
        events.extend(more);
        model.insert(1, track(n));
    }
    assert_eq!(order(events.clone()), model);
    assert!(events
        .iter()
        .any(|e| matches!(e, PlaylistEvent::PlaylistEntriesMoved { ranks } if ranks.len() > 1)));
    Framework::with(())
        .given(vec![created(), added(1, &[1])])
        .when(PlaylistCommand::Move {
            by: ids().1,
            entry: 1,
            to: 1,
        })
        .then_expect_error(PlaylistError::PositionOutOfRange {
            position: 1,
            len: 1,
        });
}

#[test]
fn replace_swaps_the_whole_list_and_the_size_is_capped() {
    Framework::with(())
        .given(vec![created(), added(1, &[1, 2])])
        .when(PlaylistCommand::Replace {
            by: ids().1,
            tracks: vec![track(2), track(1)],
        })
        .then_expect_events(vec![
            PlaylistEvent::PlaylistEntriesRemoved {
                entries: vec![1, 2],
            },
            PlaylistEvent::PlaylistTracksAdded {
                entries: vec![
                    Entry {
                        entry: 3,
                        track_id: track(2),
                        rank: RANK_STEP,
                    },
                    Entry {
                        entry: 4,
                        track_id: track(1),
                        rank: 2 * RANK_STEP,
                    },
                ],
            },
        ]);
    Framework::with(())
        .given(vec![created()])
        .when(edit(Edit {
            add: vec![track(1); MAX_ENTRIES + 1],
            ..Edit::default()
        }))
        .then_expect_error(PlaylistError::TooManyEntries);
}

/// One edit of a property test's sequence.
#[derive(Debug, Clone)]
enum Op {
    Add(Vec<usize>),
    Remove(Vec<usize>),
    Move(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(0..5usize, 0..4).prop_map(Op::Add),
        proptest::collection::vec(0..12usize, 1..3).prop_map(Op::Remove),
        (0..12usize, 0..12usize).prop_map(|(a, b)| Op::Move(a, b)),
    ]
}

proptest! {
    /// Any sequence of adds, removals and moves leaves the playlist equal to the same
    /// operations on a plain list; a refused one changes neither.
    #[test]
    fn edits_match_a_plain_list(ops in proptest::collection::vec(op(), 1..40)) {
        let mut events = vec![created()];
        let mut model: Vec<TrackId> = Vec::new();
        for op in ops {
            let state = Playlist::from_events(events.clone());
            let command = match &op {
                Op::Add(tracks) => edit(Edit {
                    add: tracks.iter().map(|n| track(*n)).collect(),
                    ..Edit::default()
                }),
                Op::Remove(positions) => edit(Edit {
                    remove_positions: positions.clone(),
                    ..Edit::default()
                }),
                Op::Move(from, to) => PlaylistCommand::Move {
                    by: ids().1,
                    // An entry that is not there when `from` is out of range.
                    entry: state.entries().get(*from).map_or(u64::MAX, |e| e.entry),
                    to: *to,
                },
            };
            let result = Framework::with(()).given(events.clone()).when(command).inspect_result();
            let expected_ok = match &op {
                Op::Add(tracks) => {
                    model.extend(tracks.iter().map(|n| track(*n)));
                    true
                }
                Op::Remove(positions) if positions.iter().all(|p| *p < model.len()) => {
                    let mut gone: Vec<usize> = positions.clone();
                    gone.sort_unstable();
                    gone.dedup();
                    for p in gone.into_iter().rev() {
                        model.remove(p);
                    }
                    true
                }
                Op::Move(from, to) if *from < model.len() && *to < model.len() => {
                    let moved = model.remove(*from);
                    model.insert(*to, moved);
                    true
                }
                _ => false,
            };
            prop_assert_eq!(result.is_ok(), expected_ok, "{:?}", op);
            events.extend(result.unwrap_or_default());
            prop_assert_eq!(order(events.clone()), model.clone());
        }
    }
}
