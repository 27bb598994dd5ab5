//! `user_keys`: each user's sealing key (ADR 34), write-side state outside the log, read
//! by whoever opens sealed event fields. A row with no key is an erased user: nothing is
//! sealed for them again, and what was sealed reads as erased.

use std::collections::HashSet;

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::envelope::EventRecord;
use crate::sealed::{owners, Keys, UserKey};

/// The user's key, made on first use; `None` once the user was erased.
pub async fn for_sealing(pool: &sqlx::PgPool, user: Uuid) -> Result<Option<UserKey>, sqlx::Error> {
    let fresh = UserKey::generate();
    // A first seal racing another one for the same user finds neither its own insert
    // (the other won) nor the other's row (not in this statement's snapshot): read again.
    let made: Option<Option<Vec<u8>>> = sqlx::query_scalar(
        "WITH made AS (
             INSERT INTO user_keys (user_id, key) VALUES ($1, $2)
             ON CONFLICT (user_id) DO NOTHING
             RETURNING key)
         SELECT key FROM made
         UNION ALL
         SELECT key FROM user_keys WHERE user_id = $1
         LIMIT 1",
    )
    .bind(user)
    .bind(fresh.as_bytes())
    .fetch_optional(pool)
    .await?;
    let key = match made {
        Some(key) => key,
        None => {
            sqlx::query_scalar("SELECT key FROM user_keys WHERE user_id = $1")
                .bind(user)
                .fetch_one(pool)
                .await?
        }
    };
    Ok(key.as_deref().and_then(UserKey::from_bytes))
}

/// The keys of these users that still exist.
pub async fn of<'e, E: PgExecutor<'e>>(
    executor: E,
    users: &HashSet<Uuid>,
) -> Result<Keys, sqlx::Error> {
    if users.is_empty() {
        return Ok(Keys::default());
    }
    let users: Vec<Uuid> = users.iter().copied().collect();
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT user_id, key FROM user_keys WHERE user_id = ANY($1) AND key IS NOT NULL",
    )
    .bind(&users)
    .fetch_all(executor)
    .await?;
    Ok(keys(rows))
}

/// Every key that still exists (a rebuild's fold opens the whole log with them).
pub async fn all<'e, E: PgExecutor<'e>>(executor: E) -> Result<Keys, sqlx::Error> {
    let rows: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT user_id, key FROM user_keys WHERE key IS NOT NULL")
            .fetch_all(executor)
            .await?;
    Ok(keys(rows))
}

fn keys(rows: Vec<(Uuid, Vec<u8>)>) -> Keys {
    Keys(
        rows.into_iter()
            .filter_map(|(user, key)| Some((user, UserKey::from_bytes(&key)?)))
            .collect(),
    )
}

/// Opens every sealed value of these payloads with the keys Postgres holds now: one
/// query, none when nothing is sealed. A value whose key is gone becomes `erased`.
pub async fn open_values<'e, E: PgExecutor<'e>>(
    executor: E,
    payloads: &mut [Value],
    erased: &str,
) -> Result<(), sqlx::Error> {
    let mut users = HashSet::new();
    payloads.iter().for_each(|p| owners(p, &mut users));
    if users.is_empty() {
        return Ok(());
    }
    let keys = of(executor, &users).await?;
    payloads
        .iter_mut()
        .for_each(|p| keys.open_payload(p, erased));
    Ok(())
}

/// [`open_values`] for events read from the log or the stream.
pub async fn open_records<'e, E: PgExecutor<'e>>(
    executor: E,
    records: &mut [EventRecord],
    erased: &str,
) -> Result<(), sqlx::Error> {
    let mut users = HashSet::new();
    records.iter().for_each(|r| owners(&r.payload, &mut users));
    if users.is_empty() {
        return Ok(());
    }
    let keys = of(executor, &users).await?;
    records
        .iter_mut()
        .for_each(|r| keys.open_payload(&mut r.payload, erased));
    Ok(())
}
