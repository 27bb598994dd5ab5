//! May this user play this song, and which stored objects are behind it.

use jukebox_projections::access;
use sqlx::PgPool;
use uuid::Uuid;

/// The stored objects behind a song, as the library read model records them.
pub(crate) struct StoredObject {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) cover: Option<StoredImage>,
}

/// A song's cover picture in the store.
pub(crate) struct StoredImage {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) content_type: String,
}

pub(crate) enum Access {
    UnknownSong,
    Denied,
    Granted(StoredObject),
}

/// May `user_id` play `song_id`: it is in their library, or they are an admin (and not
/// disabled). Unknown songs are told apart so the API can answer 404. The library read
/// model answers both questions (`jukebox_projections::library::playable`).
pub(crate) async fn song_access(
    pool: &PgPool,
    song_id: &str,
    user_id: Uuid,
    is_admin: bool,
) -> Result<Access, sqlx::Error> {
    use jukebox_projections::library::{playable, Playable};
    let (track, mine) = match playable(pool, user_id, song_id).await? {
        Playable::Unknown => return Ok(Access::UnknownSong),
        Playable::InLibrary(track) => (track, true),
        Playable::NotInLibrary(track) => (track, false),
    };
    // The token's claim is checked against the account as it is now (write-side state).
    let granted = mine
        || (is_admin
            && access::by_id(pool, user_id)
                .await?
                .is_some_and(|account| !account.disabled && account.is_admin()));
    if !granted {
        return Ok(Access::Denied);
    }
    Ok(Access::Granted(StoredObject {
        key: track.object_key,
        size: track.size,
        cover: track.cover.map(|(key, size, content_type)| StoredImage {
            key,
            size,
            content_type,
        }),
    }))
}
