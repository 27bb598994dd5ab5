//! `Track`: one stored piece of audio, shared by everyone who imports its source. Its id
//! is derived from the source (`yt:<video id>`, ...), so two imports of one source meet
//! on the same aggregate. It is stored once: a second `Store` is refused, and the
//! downloader completes such jobs from the stored track instead of downloading again.
//! `Discard` (ADR 42: an erased user's upload nobody else has) records that its objects
//! leave the store; the track is then no longer stored, and the next import of its
//! source stores it again.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::media::TrackId;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Track {
    stored: Option<StoredTrack>,
}

impl Track {
    pub fn stored(&self) -> Option<&StoredTrack> {
        self.stored.as_ref()
    }
}

/// What was stored, as `TrackStored` says it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTrack {
    pub track_id: TrackId,
    pub object_key: String,
    pub size: u64,
    pub duration_ms: u64,
    pub codec: String,
    pub bitrate: u64,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    /// The artists one by one, main first (clean metadata, issue 18). Events written
    /// before it have none: their `artist` stands in (`music::TrackDetails::of`).
    #[serde(default)]
    pub artists: Vec<String>,
    #[serde(default)]
    pub year: Option<i32>,
    /// The cover is embedded in the `.m4a`.
    pub has_cover: bool,
    /// Where it came from: the page URL, or `upload`.
    pub origin: String,
    /// The cover as an image object of its own, for browsers to show. Events written
    /// before covers were stored have none.
    #[serde(default)]
    pub cover: Option<StoredCover>,
}

/// A track's cover picture, stored next to its audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCover {
    pub object_key: String,
    pub size: u64,
    /// `image/jpeg`.
    pub content_type: String,
}

// Most are `Store`, moved once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrackCommand {
    Store(StoredTrack),
    /// Its objects are to leave the store. A track not stored (discarded already, or
    /// never stored) changes nothing.
    Discard,
}

// Most are `TrackStored`, moved once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrackEvent {
    TrackStored(StoredTrack),
    /// The track is no longer stored; `object_keys` (the audio, the cover) are what the
    /// mail reactor deletes from the store.
    TrackDiscarded {
        object_keys: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrackError {
    #[error("this track is already stored")]
    AlreadyStored,
}

impl DomainEvent for TrackEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TrackStored(_) => "TrackStored".into(),
            Self::TrackDiscarded { .. } => "TrackDiscarded".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for Track {
    const TYPE: &'static str = "track";
    type Command = TrackCommand;
    type Event = TrackEvent;
    type Error = TrackError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            TrackCommand::Store(track) => {
                if self.stored.is_some() {
                    return Err(TrackError::AlreadyStored);
                }
                sink.write(TrackEvent::TrackStored(track), self).await;
                Ok(())
            }
            TrackCommand::Discard => {
                let Some(track) = &self.stored else {
                    return Ok(());
                };
                let cover = track.cover.as_ref().map(|c| c.object_key.clone());
                let object_keys = std::iter::once(track.object_key.clone())
                    .chain(cover)
                    .collect();
                sink.write(TrackEvent::TrackDiscarded { object_keys }, self)
                    .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TrackEvent::TrackStored(track) => self.stored = Some(track),
            TrackEvent::TrackDiscarded { .. } => self.stored = None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    pub(crate) fn stored() -> StoredTrack {
        StoredTrack {
            track_id: TrackId::parse("yt:dQw4w9WgXcQ").unwrap(),
            object_key: "tracks/yt:dQw4w9WgXcQ.m4a".into(),
            size: 4_000_000,
            duration_ms: 212_000,
            codec: "aac".into(),
            bitrate: 256_000,
            title: Some("Song".into()),
            artist: Some("Artist".into()),
            album: None,
            artists: Vec::new(),
            year: None,
            has_cover: true,
            origin: "https://www.youtube.com/watch?v=dQw4w9WgXcQ".into(),
            cover: Some(StoredCover {
                object_key: "tracks/yt:dQw4w9WgXcQ.jpg".into(),
                size: 20_000,
                content_type: "image/jpeg".into(),
            }),
        }
    }

    #[test]
    fn a_track_stored_before_covers_were_objects_still_loads() {
        let mut old = serde_json::to_value(TrackEvent::TrackStored(stored())).unwrap();
        old["TrackStored"].as_object_mut().unwrap().remove("cover");
        let Ok(TrackEvent::TrackStored(track)) = serde_json::from_value(old) else {
            panic!("a TrackStored");
        };
        assert_eq!(track.cover, None);
        assert!(track.has_cover);
    }

    #[test]
    fn a_track_is_stored_once() {
        TestFramework::<Track>::with(())
            .given_no_previous_events()
            .when(TrackCommand::Store(stored()))
            .then_expect_events(vec![TrackEvent::TrackStored(stored())]);
        TestFramework::<Track>::with(())
            .given(vec![TrackEvent::TrackStored(stored())])
            .when(TrackCommand::Store(stored()))
            .then_expect_error_message("this track is already stored");
    }

    fn discarded() -> TrackEvent {
        TrackEvent::TrackDiscarded {
            object_keys: vec![
                "tracks/yt:dQw4w9WgXcQ.m4a".into(),
                "tracks/yt:dQw4w9WgXcQ.jpg".into(),
            ],
        }
    }

    #[test]
    fn a_discarded_track_names_its_objects_and_is_stored_again() {
        TestFramework::<Track>::with(())
            .given(vec![TrackEvent::TrackStored(stored())])
            .when(TrackCommand::Discard)
            .then_expect_events(vec![discarded()]);
        let no_cover = StoredTrack {
            cover: None,
            ..stored()
        };
        TestFramework::<Track>::with(())
            .given(vec![TrackEvent::TrackStored(no_cover)])
            .when(TrackCommand::Discard)
            .then_expect_events(vec![TrackEvent::TrackDiscarded {
                object_keys: vec!["tracks/yt:dQw4w9WgXcQ.m4a".into()],
            }]);
        // No longer stored: the next import stores it again.
        TestFramework::<Track>::with(())
            .given(vec![TrackEvent::TrackStored(stored()), discarded()])
            .when(TrackCommand::Store(stored()))
            .then_expect_events(vec![TrackEvent::TrackStored(stored())]);
        let mut track = Track::default();
        for event in [TrackEvent::TrackStored(stored()), discarded()] {
            track.apply(event);
        }
        assert_eq!(track.stored(), None);
    }

    #[test]
    fn a_track_not_stored_is_discarded_once() {
        for given in [vec![], vec![TrackEvent::TrackStored(stored()), discarded()]] {
            TestFramework::<Track>::with(())
                .given(given)
                .when(TrackCommand::Discard)
                .then_expect_events(vec![]);
        }
    }
}
