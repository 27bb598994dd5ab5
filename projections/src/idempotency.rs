//! `idempotency_keys`: the first request made under each `Idempotency-Key` scope, as
//! keyed digests (the edge computes them; nothing here can be turned back into a key,
//! a nonce or a body). Request-path state, not a read model: the edge writes and reads
//! it on every keyed request, and reaches Postgres only through this crate (ADR 17).

use sqlx::PgPool;

/// What an `Idempotency-Key` scope had seen before this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// This request is the scope's first: it is recorded now.
    First,
    /// The same request was made under this scope before: a replay.
    Replay,
    /// Another request was made under this scope before.
    Reused,
}

/// Records `request_digest` as the first request of `scope`, or says how it compares
/// with the one recorded before.
pub async fn record(
    pool: &PgPool,
    scope: &str,
    request_digest: &str,
) -> Result<KeyUse, sqlx::Error> {
    // Two statements: the insert waits for a concurrent first use of the scope to
    // commit, and the select after it (its own snapshot) then sees that row.
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, request_digest) VALUES ($1, $2)
         ON CONFLICT (scope) DO NOTHING",
    )
    .bind(scope)
    .bind(request_digest)
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        return Ok(KeyUse::First);
    }
    let first: Option<(String,)> =
        sqlx::query_as("SELECT request_digest FROM idempotency_keys WHERE scope = $1")
            .bind(scope)
            .fetch_optional(pool)
            .await?;
    Ok(match first {
        None => KeyUse::First,
        Some((stored,)) if stored == request_digest => KeyUse::Replay,
        Some(_) => KeyUse::Reused,
    })
}
