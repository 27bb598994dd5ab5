//! `now_playing`: what each of a user's players plays now (Subsonic `scrobble` with
//! `submission=false`). Ephemeral state the edge writes, not a read model: nobody asks
//! what was playing an hour ago, so it is no event (ADR 26). A row counts until it
//! expires (the track's end, plus a minute); the next report of that player replaces it.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NowPlaying {
    /// The player, as it names itself (the Subsonic `c` parameter).
    pub client: String,
    pub track_id: String,
    pub started_at: OffsetDateTime,
}

/// `client` of `user_id` plays `track_id` since `started_at`, until `expires_at`.
pub async fn set(
    pool: &PgPool,
    user_id: Uuid,
    client: &str,
    track_id: &str,
    started_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    // Expired rows of this user go with it, so the table holds about one row per player.
    sqlx::query(
        "WITH gone AS (DELETE FROM now_playing WHERE user_id = $1 AND expires_at < $4)
         INSERT INTO now_playing (user_id, client, track_id, started_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, client) DO UPDATE
         SET track_id = EXCLUDED.track_id, started_at = EXCLUDED.started_at,
             expires_at = EXCLUDED.expires_at",
    )
    .bind(user_id)
    .bind(client)
    .bind(track_id)
    .bind(started_at)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// What `user_id`'s players play at `now`, latest first.
pub async fn of_user(
    pool: &PgPool,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<NowPlaying>, sqlx::Error> {
    sqlx::query_as(
        "SELECT client, track_id, started_at FROM now_playing
         WHERE user_id = $1 AND expires_at > $2 ORDER BY started_at DESC, client",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(pool)
    .await
}
