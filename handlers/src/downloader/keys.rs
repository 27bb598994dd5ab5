//! Where a track's audio and cover go in the object store.

use jukebox_domain::TrackId;
use sha2::{Digest, Sha256};

use super::Downloader;
use crate::storage::ObjectKey;

impl Downloader {
    /// The object key of a track: `tracks/<track id>.m4a`, or a hash of the id when the
    /// id cannot be a key segment.
    pub fn object_key(track_id: &TrackId) -> ObjectKey {
        track_object_key(track_id, "m4a")
    }

    /// The key of a track's cover image, next to its audio: `tracks/<track id>.jpg`
    /// (hashed like the audio's key when the id cannot be a key segment).
    pub fn cover_key(track_id: &TrackId) -> ObjectKey {
        track_object_key(track_id, "jpg")
    }
}

/// `tracks/<track id>.<extension>`, or `tracks/h-<hash of the id>.<extension>` when the
/// id cannot be a key segment.
fn track_object_key(track_id: &TrackId, extension: &str) -> ObjectKey {
    ObjectKey::parse(&format!("tracks/{track_id}.{extension}"))
        .ok()
        .filter(|_| !track_id.as_str().contains('/'))
        .unwrap_or_else(|| {
            let digest = Sha256::digest(track_id.as_str().as_bytes());
            let name = format!("tracks/h-{}.{extension}", hex::encode(&digest[..16]));
            ObjectKey::parse(&name).expect("a hex key is valid")
        })
}
