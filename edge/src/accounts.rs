//! Reading accounts for sign-in and for authenticated requests.
//!
//! The `accounts` read model answers first. It is eventually consistent: right after a
//! sign-up its row may not exist yet, so a miss is answered from the event log itself
//! (the `email_claim` aggregate gives the user id, the `user` aggregate's events fold into
//! the same row with the projection's own fold). Decisions that must not act on stale
//! data (disabled, unverified, token checks) are taken by the aggregates in the
//! processor, not here. See docs/adr/05-accounts-and-sessions.md.

use jukebox_domain::{EmailClaimEvent, UserEvent};
use jukebox_projections::accounts::{apply_user_event, AccountRow};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

const ACCOUNT_COLUMNS: &str =
    "user_id, email, password_hash, verified, disabled, roles, created_at";

pub async fn by_email(pool: &PgPool, email: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await?;
    if row.is_some() {
        return Ok(row);
    }
    let claim: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT payload::jsonb FROM events
         WHERE aggregate_type = 'email_claim' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(email)
    .fetch_optional(pool)
    .await?;
    let Some(Ok(EmailClaimEvent::EmailClaimed { user_id })) =
        claim.map(|(payload,)| serde_json::from_value(payload))
    else {
        return Ok(None);
    };
    from_log(pool, user_id).await
}

/// The account as its own events say now, for sign-in: a user who just verified (or was
/// just made admin) signs in with that already true, whatever the read model's lag. It
/// costs two indexed reads of the log, next to an argon2 check.
pub async fn by_email_from_log(
    pool: &PgPool,
    email: &str,
) -> Result<Option<AccountRow>, sqlx::Error> {
    let claim: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT payload::jsonb FROM events
         WHERE aggregate_type = 'email_claim' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(email)
    .fetch_optional(pool)
    .await?;
    let Some(Ok(EmailClaimEvent::EmailClaimed { user_id })) =
        claim.map(|(payload,)| serde_json::from_value(payload))
    else {
        return Ok(None);
    };
    from_log(pool, user_id).await
}

pub async fn by_id(pool: &PgPool, user_id: Uuid) -> Result<Option<AccountRow>, sqlx::Error> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE user_id = $1"
    ))
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => Ok(Some(row)),
        None => from_log(pool, user_id).await,
    }
}

/// Folds the user's events from the log (the read model has not caught up yet).
async fn from_log(pool: &PgPool, user_id: Uuid) -> Result<Option<AccountRow>, sqlx::Error> {
    let events: Vec<(serde_json::Value, OffsetDateTime)> = sqlx::query_as(
        "SELECT payload::jsonb, recorded_at FROM events
         WHERE aggregate_type = 'user' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(user_id.to_string())
    .fetch_all(pool)
    .await?;
    let mut account: Option<AccountRow> = None;
    for (payload, recorded_at) in events {
        let Ok(event) = serde_json::from_value::<UserEvent>(payload) else {
            continue;
        };
        if let Some(created) = apply_user_event(account.as_mut(), event, recorded_at) {
            account = Some(created);
        }
    }
    Ok(account)
}

/// Whether a session was revoked. The read model answers; a session it does not know yet
/// (just opened) is checked in the log.
pub async fn session_revoked(
    pool: &PgPool,
    session_id: Uuid,
    user_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let row: Option<(Uuid, bool)> = sqlx::query_as(
        "SELECT user_id, revoked_at IS NOT NULL FROM auth_sessions WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    if let Some((owner, revoked)) = row {
        return Ok(revoked || owner != user_id);
    }
    let (started, revoked): (bool, bool) = sqlx::query_as(
        "SELECT bool_or(event_type = 'SessionStarted'), bool_or(event_type = 'SessionRevoked')
         FROM events WHERE aggregate_type = 'session' AND aggregate_id = $1",
    )
    .bind(session_id.to_string())
    .fetch_one(pool)
    .await
    .map(|(s, r): (Option<bool>, Option<bool>)| (s.unwrap_or(false), r.unwrap_or(false)))?;
    Ok(!started || revoked)
}

/// The account behind an access token and whether its session was revoked, in one query
/// on the fast path (both read-model rows present).
pub async fn authenticate(
    pool: &PgPool,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Option<(AccountRow, bool)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        account: AccountRow,
        session_user: Option<Uuid>,
        revoked: Option<bool>,
    }
    let joined: Option<Joined> = sqlx::query_as(
        "SELECT a.user_id, a.email, NULL::text AS password_hash, a.verified, a.disabled,
                a.roles, a.created_at, s.user_id AS session_user,
                s.revoked_at IS NOT NULL AS revoked
         FROM accounts a LEFT JOIN auth_sessions s ON s.session_id = $2
         WHERE a.user_id = $1",
    )
    .bind(user_id)
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    match joined {
        Some(Joined {
            account,
            session_user: Some(owner),
            revoked,
        }) => Ok(Some((account, revoked.unwrap_or(true) || owner != user_id))),
        Some(Joined { account, .. }) => {
            let revoked = session_revoked(pool, session_id, user_id).await?;
            Ok(Some((account, revoked)))
        }
        None => match from_log(pool, user_id).await? {
            Some(account) => {
                let revoked = session_revoked(pool, session_id, user_id).await?;
                Ok(Some((account, revoked)))
            }
            None => Ok(None),
        },
    }
}

/// A short-lived memory of `authenticate` results per (user, session), so a busy client
/// does not cost a query per request. Revocations, disabling and role changes are seen
/// after at most `ttl` (plus the read model's lag), well within an access token's life.
pub struct AuthCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<(Uuid, Uuid), Remembered>>,
}

/// When it was checked, the account, and whether the session was revoked.
type Remembered = (std::time::Instant, AccountRow, bool);

impl AuthCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: Default::default(),
        }
    }

    pub async fn authenticate(
        &self,
        pool: &PgPool,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<Option<(AccountRow, bool)>, sqlx::Error> {
        let key = (user_id, session_id);
        if !self.ttl.is_zero() {
            let entries = self.entries.lock().expect("auth cache");
            if let Some((at, account, revoked)) = entries.get(&key) {
                if at.elapsed() < self.ttl {
                    return Ok(Some((account.clone(), *revoked)));
                }
            }
        }
        let found = authenticate(pool, user_id, session_id).await?;
        if let (Some((account, revoked)), false) = (&found, self.ttl.is_zero()) {
            let now = std::time::Instant::now();
            let mut entries = self.entries.lock().expect("auth cache");
            if entries.len() >= 100_000 {
                let ttl = self.ttl;
                entries.retain(|_, (at, _, _)| now.duration_since(*at) < ttl);
            }
            entries.insert(key, (now, account.clone(), *revoked));
        }
        Ok(found)
    }
}
