//! The Subsonic API's track-level reads (ADR 25): a user's songs from `library` (what
//! they may play) with the catalog's codec, bit rate and album from `tracks`. Always
//! scoped to the caller: another user's track is simply not found.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::library::like_pattern;

/// One song of a user's library.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Song {
    pub track_id: String,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub duration_ms: i64,
    pub cover_stored: bool,
    pub added_at: Option<OffsetDateTime>,
    pub size: Option<i64>,
    pub codec: Option<String>,
    pub bitrate: Option<i64>,
}

const COLUMNS: &str = "l.track_id, l.title, l.artist, t.album, l.duration_ms, l.cover_stored,
                       l.added_at, l.size, t.codec, t.bitrate";

/// The song, when it is in `user_id`'s library.
pub async fn song(
    pool: &PgPool,
    user_id: Uuid,
    track_id: &str,
) -> Result<Option<Song>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM library l LEFT JOIN tracks t ON t.track_id = l.track_id
         WHERE l.entry_id = $1"
    ))
    .bind(crate::UserLibrary::entry_id(user_id, track_id))
    .fetch_optional(pool)
    .await
}

/// Songs whose title or artist contains `text` (all when `None`), in the order they were
/// added (then by id), from `offset`: a sync that pages through it sees every song once.
pub async fn songs(
    pool: &PgPool,
    user_id: Uuid,
    text: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<Vec<Song>, sqlx::Error> {
    let filter = if text.is_some() {
        "AND (l.title_key LIKE $4 OR l.artist_key LIKE $4)"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM library l LEFT JOIN tracks t ON t.track_id = l.track_id
         WHERE l.user_id = $1 {filter}
         ORDER BY l.added_at, l.track_id OFFSET $2 LIMIT $3"
    );
    let mut query = sqlx::query_as(&sql).bind(user_id).bind(offset).bind(limit);
    if let Some(text) = text {
        query = query.bind(like_pattern(&text.to_lowercase()));
    }
    query.fetch_all(pool).await
}

/// Up to `limit` songs picked at random.
pub async fn random(pool: &PgPool, user_id: Uuid, limit: i64) -> Result<Vec<Song>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM library l LEFT JOIN tracks t ON t.track_id = l.track_id
         WHERE l.user_id = $1 ORDER BY random() LIMIT $2"
    ))
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}
