//! Reads of the processor's write-side access state (`access_users`, `access_sessions`;
//! `handlers/src/access.rs`), which is written in the same commit as the `User` and
//! `Session` events that change it. So a verification, a role change, a disable or a
//! logout counts from the next request, whatever the projectors' lag, and with every
//! projector stopped (issue 15). Not a projection: it is never behind the log, and needs
//! no read-your-writes wait. See docs/adr/14-small-aggregates-and-access-state.md.

use sqlx::PgPool;
use uuid::Uuid;

use crate::accounts::AccountRow;

const ACCOUNT_COLUMNS: &str =
    "user_id, email, password_hash, verified, disabled, roles, created_at";

/// The account with this (normalized) address.
pub async fn by_email(pool: &PgPool, email: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM access_users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await
}

pub async fn by_id(pool: &PgPool, user_id: Uuid) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM access_users WHERE user_id = $1"
    ))
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// How many enabled admins there are besides `user_id` (erasing the last one is refused).
pub async fn other_admins(pool: &PgPool, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM access_users
         WHERE user_id <> $1 AND NOT disabled AND 'admin' = ANY(roles)",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
}

/// Whether session `s` is live for user `u` (the aliases of [`authenticate`] and
/// [`live_sql`] and [`verdict`]): the user's, not revoked, and started under the current
/// epoch.
const LIVE: &str = "COALESCE(s.user_id = u.user_id AND NOT s.revoked
                            AND s.epoch = u.session_epoch, false)";

/// What the access state says of an access token's user and session, for a read that
/// checks it in its own statement (see [`live_sql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Live,
    NoAccount,
    Disabled,
    /// The session is unknown, someone else's, revoked, or older than the last disable.
    SessionOver,
}

impl Verdict {
    /// From the account's `disabled` and the session's liveness; `None`: no account row.
    pub fn of(disabled: Option<bool>, live: Option<bool>) -> Self {
        match (disabled, live) {
            (None, _) => Self::NoAccount,
            (Some(true), _) => Self::Disabled,
            (Some(false), Some(true)) => Self::Live,
            (Some(false), _) => Self::SessionOver,
        }
    }
}

/// A condition that holds when session `$session` is live for user `$user` and the
/// account is enabled: a read folds its access check into its own statement with
/// `AND {live_sql}` and saves a round trip per request (`GET /library`). When such a read
/// answers no rows, [`verdict`] tells a denial from an empty answer.
pub fn live_sql(user: &str, session: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM access_users u JOIN access_sessions s ON s.session_id = {session}
                 WHERE u.user_id = {user} AND NOT u.disabled AND {LIVE})"
    )
}

/// What the access state says of this user and session.
pub async fn verdict(
    pool: &PgPool,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Verdict, sqlx::Error> {
    let (disabled, live): (Option<bool>, Option<bool>) = sqlx::query_as(&format!(
        "SELECT u.disabled, {LIVE}
         FROM (SELECT 1) one
         LEFT JOIN access_users u ON u.user_id = $1
         LEFT JOIN access_sessions s ON s.session_id = $2"
    ))
    .bind(user_id)
    .bind(session_id)
    .fetch_one(pool)
    .await?;
    Ok(Verdict::of(disabled, live))
}

/// The account behind an access token (without its password hash) and whether its
/// session is over: unknown, someone else's, revoked, or started before the account was
/// last disabled (its epoch is older). One query, two primary-key lookups.
pub async fn authenticate(
    pool: &PgPool,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Option<(AccountRow, bool)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        account: AccountRow,
        live: bool,
    }
    let joined: Option<Joined> = sqlx::query_as(&format!(
        "SELECT u.user_id, u.email, NULL::text AS password_hash, u.verified, u.disabled,
                u.roles, u.created_at, {LIVE} AS live
         FROM access_users u LEFT JOIN access_sessions s ON s.session_id = $2
         WHERE u.user_id = $1"
    ))
    .bind(user_id)
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    Ok(joined.map(|j| (j.account, !j.live)))
}
