//! `Play`: one play of one track by one user (id `<user_id>/<track_id>@<unix ms>`, ADR 26).
//! The id is the play's dedup key (user, track, when it was played), so a client that
//! sends a scrobble again records nothing new, whatever command id it comes with; no
//! aggregate grows with plays (each holds one event).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::media::TrackId;

/// The aggregate type, for readers of the log without `cqrs_es`.
pub const AGGREGATE_TYPE: &str = "play";
/// A play's time may run ahead of the server's clock by this much (clients' clocks drift).
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
/// Nothing was played through Jukebox before this.
pub const EARLIEST: OffsetDateTime = time::macros::datetime!(2000-01-01 00:00 UTC);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayError {
    #[error("a play's time must lie between the year 2000 and now")]
    InvalidTime,
}

/// When a play happened, to the millisecond (what Subsonic's `time` carries).
pub fn played_at_ms(unix_ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).ok()
}

/// `at` truncated to the millisecond.
pub fn to_ms(at: OffsetDateTime) -> OffsetDateTime {
    played_at_ms(unix_ms(at)).unwrap_or(at)
}

pub fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Whether `played_at` is a time a play can have, seen at `now`.
pub fn plausible(played_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    played_at >= EARLIEST && played_at <= now + MAX_CLOCK_SKEW
}

/// The aggregate id of `user_id`'s play of `track_id` at `played_at`.
pub fn id(user_id: Uuid, track_id: &TrackId, played_at: OffsetDateTime) -> String {
    format!("{user_id}/{}@{}", track_id.as_str(), unix_ms(played_at))
}

/// The command id of recording that play: the same for every retry, so the bus and the
/// processor answer a retry as the first (ADR 02).
pub fn command_id(user_id: Uuid, track_id: &TrackId, played_at: OffsetDateTime) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("jukebox:play:{}", id(user_id, track_id, played_at)).as_bytes(),
    )
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Play {
    recorded: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlayCommand {
    Record {
        user_id: Uuid,
        track_id: TrackId,
        played_at: OffsetDateTime,
        now: OffsetDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlayEvent {
    PlayRecorded {
        user_id: Uuid,
        track_id: TrackId,
        #[serde(with = "time::serde::rfc3339")]
        played_at: OffsetDateTime,
    },
}

impl DomainEvent for PlayEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PlayRecorded { .. } => "PlayRecorded".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for Play {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = PlayCommand;
    type Event = PlayEvent;
    type Error = PlayError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let PlayCommand::Record {
            user_id,
            track_id,
            played_at,
            now,
        } = command;
        if !plausible(played_at, now) {
            return Err(PlayError::InvalidTime);
        }
        // A retry of a recorded play: counted once.
        if self.recorded {
            return Ok(());
        }
        let event = PlayEvent::PlayRecorded {
            user_id,
            track_id,
            played_at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PlayEvent::PlayRecorded { .. } => self.recorded = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<Play>;

    #[test]
    fn a_play_is_recorded_once_and_only_at_a_plausible_time() {
        let user_id = Uuid::from_u128(7);
        let track_id = TrackId::parse("yt:dQw4w9WgXcQ").unwrap();
        let now = time::macros::datetime!(2026-06-01 12:00 UTC);
        let record = |played_at| PlayCommand::Record {
            user_id,
            track_id: track_id.clone(),
            played_at,
            now,
        };
        let recorded = PlayEvent::PlayRecorded {
            user_id,
            track_id: track_id.clone(),
            played_at: now,
        };
        Framework::with(())
            .given_no_previous_events()
            .when(record(now))
            .then_expect_events(vec![recorded.clone()]);
        Framework::with(())
            .given(vec![recorded])
            .when(record(now))
            .then_expect_events(vec![]);
        Framework::with(())
            .given_no_previous_events()
            .when(record(now + Duration::hours(1)))
            .then_expect_error(PlayError::InvalidTime);
        Framework::with(())
            .given_no_previous_events()
            .when(record(time::macros::datetime!(1999-12-31 23:59 UTC)))
            .then_expect_error_message("a play's time must lie between the year 2000 and now");
    }

    #[test]
    fn a_play_is_named_by_user_track_and_millisecond() {
        let user_id = Uuid::from_u128(7);
        let track_id = TrackId::parse("yt:dQw4w9WgXcQ").unwrap();
        let at = played_at_ms(1_700_000_000_123).unwrap();
        assert_eq!(
            id(user_id, &track_id, at),
            format!("{user_id}/yt:dQw4w9WgXcQ@1700000000123")
        );
        assert_eq!(to_ms(at + Duration::microseconds(400)), at);
        assert_eq!(
            command_id(user_id, &track_id, at),
            command_id(user_id, &track_id, at)
        );
        assert_ne!(
            command_id(user_id, &track_id, at),
            command_id(user_id, &track_id, at + Duration::milliseconds(1))
        );
    }
}
