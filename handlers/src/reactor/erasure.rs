//! `UserErased` (ADR 42): the erased user's uploads that no other user ever added leave
//! the object store (the audio and its cover). Shared tracks stay for the others. A
//! delete of a key already gone succeeds, so a redelivery does no harm.

use jukebox_nats::{log, EventRecord};

use super::{MailReactor, ReactError};
use crate::storage::ObjectKey;

impl MailReactor {
    /// Deletes the objects of the user's own uploads; returns how many it deleted.
    pub(super) async fn erase_uploads(&self, record: &EventRecord) -> Result<usize, ReactError> {
        let store = self.store.as_ref().ok_or_else(|| {
            ReactError::Transient("the reactor has no object store to erase uploads from".into())
        })?;
        let user = record
            .aggregate_id
            .parse()
            .map_err(|_| ReactError::Transient("a user id that is not a UUID".into()))?;
        let mut deleted = 0;
        for track_id in log::uploads_only_of(&self.pool, user).await? {
            let Some(stored) = log::first(&self.pool, "track", &track_id).await? else {
                continue; // added to a library but never stored: nothing in the store
            };
            let track = &stored.payload["TrackStored"];
            let keys = [&track["object_key"], &track["cover"]["object_key"]];
            for key in keys.into_iter().filter_map(|k| k.as_str()) {
                let key = ObjectKey::parse(key)
                    .map_err(|e| ReactError::Transient(format!("a stored key: {e}")))?;
                store
                    .delete(&key)
                    .await
                    .map_err(|e| ReactError::Transient(format!("deleting {key:?}: {e}")))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
