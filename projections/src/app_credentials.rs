//! `app_credential_use`: when each app credential was last used and by which client
//! (the Subsonic `c` parameter). Request-path bookkeeping the edge writes, not a read
//! model: the credentials themselves are read from the log (ADR 24).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// The last use of one credential.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LastUse {
    pub credential_id: Uuid,
    pub last_used_at: OffsetDateTime,
    pub client: String,
}

/// Records a use (the later one wins when two edges race).
pub async fn record_use(
    pool: &PgPool,
    user_id: Uuid,
    credential_id: Uuid,
    at: OffsetDateTime,
    client: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO app_credential_use (credential_id, user_id, last_used_at, client)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (credential_id) DO UPDATE
         SET last_used_at = EXCLUDED.last_used_at, client = EXCLUDED.client
         WHERE app_credential_use.last_used_at <= EXCLUDED.last_used_at",
    )
    .bind(credential_id)
    .bind(user_id)
    .bind(at)
    .bind(client)
    .execute(pool)
    .await?;
    Ok(())
}

/// The last uses of a user's credentials.
pub async fn last_uses(pool: &PgPool, user_id: Uuid) -> Result<Vec<LastUse>, sqlx::Error> {
    sqlx::query_as(
        "SELECT credential_id, last_used_at, client FROM app_credential_use WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}
