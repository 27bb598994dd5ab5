//! `PlayQueueSave`: one saved play queue (issue 19, ADR 28). Every save is its own
//! aggregate (id = the save's id, which the edge picks) holding one `PlayQueueSaved`: a
//! save replaces the queue, needs no earlier state, and so loading the aggregate it
//! writes costs the same on the first save as on the ten-thousandth. The read model keeps
//! each user's latest save (by `saved_at`, then commit order).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::TrackId;

/// The aggregate type, for readers of the log without `cqrs_es`.
pub const AGGREGATE_TYPE: &str = "play_queue_save";
/// The longest queue a save keeps (Subsonic apps send whole libraries as a queue).
pub const MAX_TRACKS: usize = 1000;
/// The longest client name kept (the Subsonic `c` parameter, or "Jukebox web").
pub const MAX_CLIENT_CHARS: usize = 100;
/// A position past a day into one track is not a position.
pub const MAX_POSITION_MS: u64 = 24 * 3600 * 1000;

/// What a save holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedQueue {
    pub user_id: Uuid,
    pub track_ids: Vec<TrackId>,
    /// The track playing, one of `track_ids`; `None` only for an empty queue. (Not named
    /// `current`: the audit redacts that key, a session's token hash.)
    pub current_track: Option<TrackId>,
    /// Where in `current_track`, in milliseconds.
    pub position_ms: u64,
    /// The app that saved it.
    pub client: String,
    #[serde(with = "time::serde::rfc3339")]
    pub saved_at: OffsetDateTime,
}

impl SavedQueue {
    /// Why this queue cannot be saved, if it cannot.
    pub fn check(&self) -> Result<(), PlayQueueError> {
        if self.track_ids.len() > MAX_TRACKS {
            return Err(PlayQueueError::TooLong);
        }
        match &self.current_track {
            None if !self.track_ids.is_empty() => return Err(PlayQueueError::NoCurrent),
            Some(current) if !self.track_ids.contains(current) => {
                return Err(PlayQueueError::CurrentNotQueued)
            }
            _ => {}
        }
        if self.position_ms > MAX_POSITION_MS {
            return Err(PlayQueueError::BadPosition);
        }
        if self.client.chars().count() > MAX_CLIENT_CHARS
            || self.client.chars().any(char::is_control)
        {
            return Err(PlayQueueError::BadClient);
        }
        Ok(())
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PlayQueueSave {
    saved: Option<SavedQueue>,
}

impl PlayQueueSave {
    pub fn saved(&self) -> Option<&SavedQueue> {
        self.saved.as_ref()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlayQueueCommand {
    Save(SavedQueue),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlayQueueEvent {
    PlayQueueSaved(SavedQueue),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlayQueueError {
    #[error("a saved play queue holds at most 1000 tracks; save the first 1000")]
    TooLong,
    #[error("a play queue with tracks needs the current track (`current`)")]
    NoCurrent,
    #[error("the current track must be one of the queue's tracks")]
    CurrentNotQueued,
    #[error("the position is milliseconds into the current track, 0 to 86400000")]
    BadPosition,
    #[error("a client name is at most 100 characters, without control characters")]
    BadClient,
    #[error("this save exists already")]
    AlreadySaved,
}

impl DomainEvent for PlayQueueEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PlayQueueSaved(_) => "PlayQueueSaved".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for PlayQueueSave {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = PlayQueueCommand;
    type Event = PlayQueueEvent;
    type Error = PlayQueueError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            PlayQueueCommand::Save(queue) => {
                if self.saved.is_some() {
                    return Err(PlayQueueError::AlreadySaved);
                }
                queue.check()?;
                sink.write(PlayQueueEvent::PlayQueueSaved(queue), self)
                    .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PlayQueueEvent::PlayQueueSaved(queue) => self.saved = Some(queue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<PlayQueueSave>;

    fn track(n: usize) -> TrackId {
        TrackId::parse(&format!("yt:video{n:05}")).unwrap()
    }

    fn queue(n: usize, current: Option<usize>) -> SavedQueue {
        SavedQueue {
            user_id: Uuid::from_u128(1),
            track_ids: (0..n).map(track).collect(),
            current_track: current.map(track),
            position_ms: 1500,
            client: "Jukebox web".into(),
            saved_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_save_records_the_queue_as_given() {
        Framework::with(())
            .given_no_previous_events()
            .when(PlayQueueCommand::Save(queue(3, Some(1))))
            .then_expect_events(vec![PlayQueueEvent::PlayQueueSaved(queue(3, Some(1)))]);
    }

    #[test]
    fn an_empty_queue_is_a_save_that_clears() {
        Framework::with(())
            .given_no_previous_events()
            .when(PlayQueueCommand::Save(queue(0, None)))
            .then_expect_events(vec![PlayQueueEvent::PlayQueueSaved(queue(0, None))]);
    }

    #[test]
    fn the_queue_is_capped_and_the_cap_is_in_the_message() {
        Framework::with(())
            .given_no_previous_events()
            .when(PlayQueueCommand::Save(queue(MAX_TRACKS + 1, Some(0))))
            .then_expect_error(PlayQueueError::TooLong);
        assert!(PlayQueueError::TooLong.to_string().contains("1000"));
        assert_eq!(queue(MAX_TRACKS, Some(999)).check(), Ok(()));
    }

    #[test]
    fn the_current_track_is_one_of_the_queue() {
        let mut outside = queue(2, Some(0));
        outside.current_track = Some(track(7));
        assert_eq!(outside.check(), Err(PlayQueueError::CurrentNotQueued));
        assert_eq!(queue(2, None).check(), Err(PlayQueueError::NoCurrent));
    }

    #[test]
    fn positions_and_client_names_are_bounded() {
        let mut far = queue(1, Some(0));
        far.position_ms = MAX_POSITION_MS + 1;
        assert_eq!(far.check(), Err(PlayQueueError::BadPosition));
        let mut named = queue(1, Some(0));
        named.client = "x".repeat(MAX_CLIENT_CHARS + 1);
        assert_eq!(named.check(), Err(PlayQueueError::BadClient));
        named.client = "a\nb".into();
        assert_eq!(named.check(), Err(PlayQueueError::BadClient));
    }

    #[test]
    fn a_save_is_written_once() {
        Framework::with(())
            .given(vec![PlayQueueEvent::PlayQueueSaved(queue(1, Some(0)))])
            .when(PlayQueueCommand::Save(queue(2, Some(1))))
            .then_expect_error(PlayQueueError::AlreadySaved);
    }
}
