//! `UserErased` (ADR 42): each upload the erased user added that no other user (not
//! erased) ever added is discarded. `DiscardTrack` records `TrackDiscarded` on the track,
//! which is then no longer stored (the catalog drops it, and the next import of that file
//! stores it again), and the objects it names leave the store. Shared tracks stay.
//!
//! Per track, under the source's lock (which a downloader holds from finding a track
//! stored, or putting its objects, until `CompleteImport` committed), once the track is
//! still nobody else's: the command, its id derived from the event and
//! the track, so a redelivery is answered from its stored outcome; then the deletion,
//! only while the track's last event is a discard. A delete of a key already gone
//! succeeds, and a track stored again since is left alone (its objects are the new
//! ones), so a redelivery deletes nothing twice and nothing it should not.

use jukebox_domain::{Command, TrackEvent, TrackId};
use jukebox_nats::{log, CommandBus, CommandEnvelope, EventRecord, OutcomeStatus};
use tracing::warn;
use uuid::Uuid;

use super::{MailReactor, ReactError, CONSUMER};
use crate::downloader::source_lock::SourceLock;
use crate::storage::{ObjectKey, ObjectStore};

impl MailReactor {
    /// Discards the user's own uploads; returns how many objects it deleted.
    pub(super) async fn erase_uploads(
        &self,
        bus: &CommandBus,
        record: &EventRecord,
        event_id: &str,
    ) -> Result<usize, ReactError> {
        let store = self.store.as_ref().ok_or_else(|| {
            ReactError::Transient("the reactor has no object store to erase uploads from".into())
        })?;
        let user = record
            .aggregate_id
            .parse()
            .map_err(|_| ReactError::Transient("a user id that is not a UUID".into()))?;
        let mut deleted = 0;
        for track_id in log::uploads_only_of(&self.pool, user, None).await? {
            let track_id = TrackId::parse(&track_id)
                .map_err(|e| ReactError::Transient(format!("a track id in the log: {e}")))?;
            let lock = SourceLock::acquire(&self.pool, &track_id, || {})
                .await
                .map_err(|e| ReactError::Transient(format!("taking the source lock: {e}")))?;
            // Asked again under the lock: a job that completed into another library since
            // (it holds the lock while it completes) keeps the track.
            let still_only = log::uploads_only_of(&self.pool, user, Some(track_id.as_str()))
                .await
                .map(|only| !only.is_empty());
            let discarded = match still_only {
                Ok(true) => {
                    self.discard(bus, record, event_id, &track_id, store.as_ref())
                        .await
                }
                Ok(false) => Ok(0),
                Err(e) => Err(e.into()),
            };
            lock.release().await;
            deleted += discarded?;
        }
        Ok(deleted)
    }

    /// `DiscardTrack`, then the deletion of what the discard named, unless the track was
    /// stored again since. Called under the source's lock.
    async fn discard(
        &self,
        bus: &CommandBus,
        record: &EventRecord,
        event_id: &str,
        track_id: &TrackId,
        store: &dyn ObjectStore,
    ) -> Result<usize, ReactError> {
        let envelope = CommandEnvelope {
            command_id: Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("jukebox:{CONSUMER}:discard:{event_id}:{track_id}").as_bytes(),
            ),
            correlation_id: record
                .metadata_str("correlation_id")
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(Uuid::now_v7),
            issued_by: None,
            issued_at: time::OffsetDateTime::now_utc(),
            command: Command::DiscardTrack {
                track_id: track_id.clone(),
            },
        };
        let outcome = self.send(bus, &envelope).await?;
        if outcome.status == OutcomeStatus::Rejected {
            let code = outcome.error.map_or("none", |e| e.code.as_str());
            warn!(%track_id, %code, "the discard was refused; its objects stay");
            return Ok(0);
        }
        let events = log::aggregate(&self.pool, "track", track_id.as_str(), None, None).await?;
        // Never stored (added, never stored), or stored again since: nothing to delete.
        let Some(Ok(TrackEvent::TrackDiscarded { object_keys })) =
            events.last().map(|e| e.decode::<TrackEvent>())
        else {
            return Ok(0);
        };
        for key in &object_keys {
            let key = ObjectKey::parse(key)
                .map_err(|e| ReactError::Transient(format!("a discarded key: {e}")))?;
            store
                .delete(&key)
                .await
                .map_err(|e| ReactError::Transient(format!("deleting {key:?}: {e}")))?;
        }
        Ok(object_keys.len())
    }
}
