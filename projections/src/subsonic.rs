//! The Subsonic API's text search (ADR 25): which of a user's songs match a `search3`
//! query, by title or artist, from `library`. The songs themselves are read from the
//! `music` model (`music::tracks`); this only finds their ids.

use sqlx::PgPool;
use uuid::Uuid;

use crate::library::like_pattern;

/// Ids of `user_id`'s songs whose title or artist contains `text` (case-insensitive),
/// in the order they were added (then by id), `limit` from `offset`.
pub async fn matching_songs(
    pool: &PgPool,
    user_id: Uuid,
    text: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT track_id FROM library
         WHERE user_id = $1 AND (title_key LIKE $2 OR artist_key LIKE $2)
         ORDER BY added_at, track_id OFFSET $3 LIMIT $4",
    )
    .bind(user_id)
    .bind(like_pattern(&text.to_lowercase()))
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await
}
