//! A job as its message carries it, how an attempt at it fails, and the stored track it
//! ends with.

use async_nats::jetstream;
use jukebox_domain::{ImportEvent, SourceRef, StoredCover, StoredTrack, TrackId};
use jukebox_nats::consumer::delivery_count;
use jukebox_nats::{EventRecord, FailPointFired};
use uuid::Uuid;

use crate::media::{MediaError, PreparedTrack};
use crate::storage::{ObjectKey, StoreError};

/// Why a job attempt did not finish.
#[derive(Debug, thiserror::Error)]
pub(super) enum JobError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("object store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Transient(String),
    #[error(transparent)]
    FailPoint(#[from] FailPointFired),
}

impl JobError {
    pub(super) fn is_permanent(&self) -> bool {
        match self {
            Self::Media(e) => e.is_permanent(),
            Self::Store(StoreError::InvalidKey { .. }) => true,
            _ => false,
        }
    }

    pub(super) fn code(&self) -> &'static str {
        match self {
            Self::Media(e) => e.code(),
            Self::Store(_) => "storage",
            Self::Transient(_) | Self::FailPoint(_) => "internal",
        }
    }

    /// The sentence a user reads.
    pub(super) fn reason(&self) -> String {
        match self {
            Self::Media(e) => e.to_string(),
            Self::Store(_) => "the track could not be stored; please try again later".into(),
            Self::Transient(_) | Self::FailPoint(_) => {
                "the import could not be finished; please try again later".into()
            }
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(format!("database: {error}"))
    }
}

/// The job a message carries.
pub(super) struct Job {
    pub(super) job_id: Uuid,
    pub(super) user_id: Uuid,
    pub(super) source: SourceRef,
    pub(super) correlation_id: Uuid,
    pub(super) attempt: i64,
}

pub(super) fn read_job(message: &jetstream::Message) -> Option<Job> {
    let record: EventRecord = serde_json::from_slice(&message.payload).ok()?;
    let ImportEvent::ImportRequested {
        job_id,
        requested_by,
        source,
    } = record.decode().ok()?
    else {
        return None;
    };
    let correlation_id = record
        .metadata_str("correlation_id")
        .and_then(|c| Uuid::parse_str(c).ok())
        .unwrap_or(job_id);
    let attempt = delivery_count(message).unwrap_or(1);
    Some(Job {
        job_id,
        user_id: requested_by,
        source,
        correlation_id,
        attempt,
    })
}

pub(super) fn stored_track(
    track_id: &TrackId,
    key: &ObjectKey,
    size: u64,
    prepared: &PreparedTrack,
    source: &SourceRef,
    cover: Option<StoredCover>,
) -> StoredTrack {
    let output = &prepared.output;
    StoredTrack {
        track_id: track_id.clone(),
        object_key: key.to_string(),
        size,
        duration_ms: output.duration.as_millis() as u64,
        codec: output.audio.codec.clone(),
        bitrate: output.audio.bit_rate.or(output.bit_rate).unwrap_or(0),
        // The cleaned metadata, as written into the file's tags.
        title: prepared.tags.title.clone(),
        artist: prepared.tags.artist.clone(),
        album: prepared.tags.album.clone(),
        artists: crate::media::pipeline::known_artists(&prepared.metadata),
        year: prepared.metadata.year,
        has_cover: output.cover_stream.is_some(),
        origin: match (source, &prepared.source) {
            (_, Some(info)) => info.webpage_url.clone(),
            (SourceRef::Upload { .. }, None) => "upload".into(),
            (other, None) => other.fetch_url().unwrap_or_default(),
        },
        cover,
    }
}
