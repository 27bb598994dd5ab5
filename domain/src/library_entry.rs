//! `LibraryEntry`: one track in one user's library (id `<user_id>/<track_id>`), so adding
//! a track costs the same in a library of 100,000 tracks as in an empty one (issue 16,
//! ADR 14). The rule "a track is in a library at most once" is the entry's own state, and
//! two imports of one track race on the events primary key of this one entry.
//!
//! Its events are `Library`'s (`TrackAddedToLibrary`, `TrackRemovedFromLibrary`, same
//! names and payloads), so every consumer reads them alike. Logs written before issue 16
//! hold them on the per-user `Library` aggregate: an entry with no events of its own
//! starts from the last of those for its track (`seed`), which the processor looks up.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::library::{LibraryCommand, LibraryError, LibraryEvent};
use crate::media::TrackId;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LibraryEntry {
    held: bool,
}

impl LibraryEntry {
    /// The aggregate id of `track_id` in `user_id`'s library.
    pub fn id(user_id: Uuid, track_id: &TrackId) -> String {
        format!("{user_id}/{}", track_id.as_str())
    }

    pub fn held(&self) -> bool {
        self.held
    }

    /// The state an entry with no events of its own starts from: the legacy `Library`
    /// events of its track, in order (only the last one decides).
    pub fn seed(legacy: impl IntoIterator<Item = LibraryEvent>) -> Self {
        let mut entry = Self::default();
        for event in legacy {
            entry.apply(event);
        }
        entry
    }
}

impl Aggregate for LibraryEntry {
    const TYPE: &'static str = "library_entry";
    type Command = LibraryCommand;
    type Event = LibraryEvent;
    type Error = LibraryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            // Already there: nothing happens, so a retried import cannot add it twice.
            LibraryCommand::AddTrack { .. } if self.held => return Ok(()),
            LibraryCommand::AddTrack {
                user_id,
                track_id,
                job_id,
            } => LibraryEvent::TrackAddedToLibrary {
                user_id,
                track_id,
                job_id,
            },
            LibraryCommand::RemoveTrack { .. } if !self.held => {
                return Err(LibraryError::NotInLibrary)
            }
            LibraryCommand::RemoveTrack { user_id, track_id } => {
                LibraryEvent::TrackRemovedFromLibrary { user_id, track_id }
            }
            LibraryCommand::CorrectDetails { .. } if !self.held => {
                return Err(LibraryError::NotInLibrary)
            }
            LibraryCommand::CorrectDetails {
                user_id,
                track_id,
                correction,
            } => LibraryEvent::TrackDetailsCorrected {
                user_id,
                track_id,
                correction,
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            LibraryEvent::TrackAddedToLibrary { .. } => self.held = true,
            LibraryEvent::TrackRemovedFromLibrary { .. } => self.held = false,
            // The projections keep the corrected details; the entry decides nothing on them.
            LibraryEvent::TrackDetailsCorrected { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<LibraryEntry>;

    fn fixture() -> (Uuid, Uuid, TrackId) {
        let track_id = TrackId::parse("yt:dQw4w9WgXcQ").unwrap();
        (Uuid::now_v7(), Uuid::now_v7(), track_id)
    }

    #[test]
    fn a_track_is_added_once_removed_once_and_can_come_back() {
        let (user_id, job_id, track_id) = fixture();
        let add = LibraryCommand::AddTrack {
            user_id,
            track_id: track_id.clone(),
            job_id,
        };
        let added = LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id: track_id.clone(),
            job_id,
        };
        let remove = LibraryCommand::RemoveTrack {
            user_id,
            track_id: track_id.clone(),
        };
        let removed = LibraryEvent::TrackRemovedFromLibrary { user_id, track_id };
        Framework::with(())
            .given_no_previous_events()
            .when(add.clone())
            .then_expect_events(vec![added.clone()]);
        Framework::with(())
            .given(vec![added.clone()])
            .when(add.clone())
            .then_expect_events(vec![]);
        Framework::with(())
            .given(vec![added.clone()])
            .when(remove.clone())
            .then_expect_events(vec![removed.clone()]);
        Framework::with(())
            .given(vec![added.clone(), removed.clone()])
            .when(remove.clone())
            .then_expect_error_message("this track is not in your library");
        Framework::with(())
            .given_no_previous_events()
            .when(remove)
            .then_expect_error(LibraryError::NotInLibrary);
        Framework::with(())
            .given(vec![added.clone(), removed])
            .when(add)
            .then_expect_events(vec![added]);
    }

    #[test]
    fn only_a_held_track_is_corrected() {
        let (user_id, job_id, track_id) = fixture();
        let correction =
            crate::music::Correction::parse(Some("New".into()), None, None, None).unwrap();
        let correct = LibraryCommand::CorrectDetails {
            user_id,
            track_id: track_id.clone(),
            correction: correction.clone(),
        };
        let added = LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id: track_id.clone(),
            job_id,
        };
        let corrected = LibraryEvent::TrackDetailsCorrected {
            user_id,
            track_id: track_id.clone(),
            correction,
        };
        Framework::with(())
            .given(vec![added.clone()])
            .when(correct.clone())
            .then_expect_events(vec![corrected.clone()]);
        Framework::with(())
            .given(vec![added, corrected])
            .when(correct.clone())
            .then_expect_events(vec![LibraryEvent::TrackDetailsCorrected {
                user_id,
                track_id: track_id.clone(),
                correction: crate::music::Correction::parse(Some("New".into()), None, None, None)
                    .unwrap(),
            }]);
        Framework::with(())
            .given_no_previous_events()
            .when(correct)
            .then_expect_error(LibraryError::NotInLibrary);
    }

    #[test]
    fn a_legacy_library_seeds_the_entry_of_its_track() {
        let (user_id, job_id, track_id) = fixture();
        let added = LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id: track_id.clone(),
            job_id,
        };
        assert!(LibraryEntry::seed([added.clone()]).held());
        let removed = LibraryEvent::TrackRemovedFromLibrary {
            user_id,
            track_id: track_id.clone(),
        };
        assert!(!LibraryEntry::seed([added, removed]).held());
        assert_eq!(
            LibraryEntry::id(user_id, &track_id),
            format!("{user_id}/yt:dQw4w9WgXcQ")
        );
    }
}
