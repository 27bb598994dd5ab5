//! The reads behind `GET /me/export` (issue 21): everything of one user's that the read
//! side holds, whole, not paged, and not only what is still in the library (a play or a
//! star outlives the track's removal; the export shows it as it is).

use sqlx::PgPool;
use uuid::Uuid;

use crate::favourites::FavouriteRow;
use crate::plays::PlayRow;

/// `user_id`'s stars, oldest first.
pub async fn favourites(pool: &PgPool, user_id: Uuid) -> Result<Vec<FavouriteRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key, user_id, kind, item_id, starred_at FROM favourites WHERE user_id = $1
         ORDER BY starred_at, kind, item_id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// `user_id`'s plays per track (count and last play), by track id.
pub async fn plays(pool: &PgPool, user_id: Uuid) -> Result<Vec<PlayRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key, user_id, track_id, play_count, last_played FROM plays WHERE user_id = $1
         ORDER BY track_id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}
