//! The devices page (issue 21, ADR 29): a person's live sessions, from the write-side
//! access state (`access_sessions`, never behind the log, ADR 14) and the edge's
//! bookkeeping of where each was last used (`session_use`, migration 0018).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// One live session of a person.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceSession {
    pub session_id: Uuid,
    pub started_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Sign-in or last refresh; `None` before it was recorded.
    pub last_used_at: Option<OffsetDateTime>,
    pub user_agent: Option<String>,
    /// The client's address, shortened.
    pub client: Option<String>,
}

/// The most sessions a page lists (a person rarely has more than a handful).
pub const MAX_SESSIONS: i64 = 100;

/// Records that a session was used now (sign-in, refresh); the later one wins.
pub async fn record_use(
    pool: &PgPool,
    session_id: Uuid,
    user_id: Uuid,
    user_agent: &str,
    client: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_use (session_id, user_id, last_used_at, user_agent, client)
         VALUES ($1, $2, now(), $3, $4)
         ON CONFLICT (session_id) DO UPDATE
         SET last_used_at = EXCLUDED.last_used_at, user_agent = EXCLUDED.user_agent,
             client = EXCLUDED.client
         WHERE session_use.last_used_at <= EXCLUDED.last_used_at",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(user_agent)
    .bind(client)
    .execute(pool)
    .await?;
    Ok(())
}

/// The person's live sessions (not revoked, not ended by a newer epoch, not expired),
/// most recently used first.
pub async fn live_sessions(
    pool: &PgPool,
    user_id: Uuid,
) -> Result<Vec<DeviceSession>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.session_id, s.started_at, s.expires_at, u.last_used_at, u.user_agent,
                u.client
         FROM access_sessions s
         JOIN access_users a ON a.user_id = s.user_id
         LEFT JOIN session_use u ON u.session_id = s.session_id
         WHERE s.user_id = $1 AND NOT s.revoked AND s.epoch = a.session_epoch
           AND s.expires_at > now()
         ORDER BY COALESCE(u.last_used_at, s.started_at) DESC, s.session_id
         LIMIT $2",
    )
    .bind(user_id)
    .bind(MAX_SESSIONS)
    .fetch_all(pool)
    .await
}
