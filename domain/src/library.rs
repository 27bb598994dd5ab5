//! `Library`: one per user (id = the user id), the tracks they have. Since issue 16 new
//! events go to the per-track `LibraryEntry` (ADR 14); this aggregate stays so that logs
//! written before it load, fold (audit `as_of`) and seed their entries. Its commands and
//! events are the ones `LibraryEntry` uses. Removing a track takes it out of this
//! library only; the stored track stays in the catalog.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::media::TrackId;
use crate::music::Correction;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Library {
    tracks: BTreeSet<TrackId>,
}

impl Library {
    pub fn contains(&self, track_id: &TrackId) -> bool {
        self.tracks.contains(track_id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LibraryCommand {
    AddTrack {
        user_id: Uuid,
        track_id: TrackId,
        /// The import that brought it.
        job_id: Uuid,
    },
    RemoveTrack {
        user_id: Uuid,
        track_id: TrackId,
    },
    /// The owner corrects the track's details in their library (issue 18).
    CorrectDetails {
        user_id: Uuid,
        track_id: TrackId,
        correction: Correction,
    },
}

impl LibraryCommand {
    /// The library and track the command is about.
    pub fn entry(&self) -> (Uuid, &TrackId) {
        match self {
            Self::AddTrack {
                user_id, track_id, ..
            }
            | Self::RemoveTrack { user_id, track_id }
            | Self::CorrectDetails {
                user_id, track_id, ..
            } => (*user_id, track_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LibraryEvent {
    TrackAddedToLibrary {
        user_id: Uuid,
        track_id: TrackId,
        job_id: Uuid,
    },
    TrackRemovedFromLibrary {
        user_id: Uuid,
        track_id: TrackId,
    },
    /// The owner's correction of the track's details, for their library only.
    TrackDetailsCorrected {
        user_id: Uuid,
        track_id: TrackId,
        correction: Correction,
    },
}

impl LibraryEvent {
    /// The library and track the event is about.
    pub fn entry(&self) -> (Uuid, &TrackId) {
        match self {
            Self::TrackAddedToLibrary {
                user_id, track_id, ..
            }
            | Self::TrackRemovedFromLibrary { user_id, track_id }
            | Self::TrackDetailsCorrected {
                user_id, track_id, ..
            } => (*user_id, track_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LibraryError {
    #[error("this track is not in your library")]
    NotInLibrary,
}

impl DomainEvent for LibraryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TrackAddedToLibrary { .. } => "TrackAddedToLibrary".into(),
            Self::TrackRemovedFromLibrary { .. } => "TrackRemovedFromLibrary".into(),
            Self::TrackDetailsCorrected { .. } => "TrackDetailsCorrected".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for Library {
    const TYPE: &'static str = "library";
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
        match command {
            LibraryCommand::AddTrack {
                user_id,
                track_id,
                job_id,
            } => {
                if !self.tracks.contains(&track_id) {
                    let event = LibraryEvent::TrackAddedToLibrary {
                        user_id,
                        track_id,
                        job_id,
                    };
                    sink.write(event, self).await;
                }
                Ok(())
            }
            LibraryCommand::RemoveTrack { user_id, track_id } => {
                if !self.tracks.contains(&track_id) {
                    return Err(LibraryError::NotInLibrary);
                }
                let event = LibraryEvent::TrackRemovedFromLibrary { user_id, track_id };
                sink.write(event, self).await;
                Ok(())
            }
            // Nothing writes this aggregate since issue 16; answered as an entry would be.
            LibraryCommand::CorrectDetails {
                user_id,
                track_id,
                correction,
            } => {
                if !self.tracks.contains(&track_id) {
                    return Err(LibraryError::NotInLibrary);
                }
                let event = LibraryEvent::TrackDetailsCorrected {
                    user_id,
                    track_id,
                    correction,
                };
                sink.write(event, self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            LibraryEvent::TrackAddedToLibrary { track_id, .. } => {
                self.tracks.insert(track_id);
            }
            LibraryEvent::TrackRemovedFromLibrary { track_id, .. } => {
                self.tracks.remove(&track_id);
            }
            LibraryEvent::TrackDetailsCorrected { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    #[test]
    fn a_track_is_added_once() {
        let (user_id, job_id) = (Uuid::now_v7(), Uuid::now_v7());
        let track_id = TrackId::parse("yt:dQw4w9WgXcQ").unwrap();
        let add = LibraryCommand::AddTrack {
            user_id,
            track_id: track_id.clone(),
            job_id,
        };
        let added = LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id,
            job_id,
        };
        TestFramework::<Library>::with(())
            .given_no_previous_events()
            .when(add.clone())
            .then_expect_events(vec![added.clone()]);
        TestFramework::<Library>::with(())
            .given(vec![added])
            .when(add)
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_track_in_the_library_is_removed_and_can_be_added_again() {
        let (user_id, job_id) = (Uuid::now_v7(), Uuid::now_v7());
        let track_id = TrackId::parse("yt:dQw4w9WgXcQ").unwrap();
        let added = LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id: track_id.clone(),
            job_id,
        };
        let removed = LibraryEvent::TrackRemovedFromLibrary {
            user_id,
            track_id: track_id.clone(),
        };
        let remove = LibraryCommand::RemoveTrack {
            user_id,
            track_id: track_id.clone(),
        };
        TestFramework::<Library>::with(())
            .given(vec![added.clone()])
            .when(remove.clone())
            .then_expect_events(vec![removed.clone()]);
        // Removed already (or never there): refused, nothing recorded.
        TestFramework::<Library>::with(())
            .given(vec![added.clone(), removed.clone()])
            .when(remove.clone())
            .then_expect_error_message("this track is not in your library");
        TestFramework::<Library>::with(())
            .given_no_previous_events()
            .when(remove)
            .then_expect_error(LibraryError::NotInLibrary);
        // A new import brings it back.
        TestFramework::<Library>::with(())
            .given(vec![added.clone(), removed])
            .when(LibraryCommand::AddTrack {
                user_id,
                track_id,
                job_id,
            })
            .then_expect_events(vec![added]);
    }
}
