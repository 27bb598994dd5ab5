//! `subscriptions`: one row per live subscription (issue 20, ADR 40), what
//! `GET /subscriptions` lists and what the scheduler reads to find due checks
//! (`next_check_at`). A failed check moves `next_check_at` to its `retry_at`; an
//! unsubscribe removes the row (the aggregate's history keeps it for audit).

use std::collections::HashMap;

use jukebox_domain::subscription::{Status, AGGREGATE_TYPE};
use jukebox_domain::SubscriptionEvent;
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runtime::Projection;

pub struct Subscriptions;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SubscriptionRow {
    /// `<user_id>/<key>`, the aggregate id.
    pub id: String,
    pub user_id: Uuid,
    pub url: String,
    pub title: Option<String>,
    /// `active` or `paused`.
    pub status: String,
    pub latest: Option<i32>,
    pub subscribed_at: OffsetDateTime,
    /// The aggregate's version: what a check is claimed at.
    pub version: i64,
    pub checks: i32,
    pub last_checked_at: Option<OffsetDateTime>,
    pub next_check_at: Option<OffsetDateTime>,
    /// Failed checks in a row (0 after a good one).
    pub failures: i32,
    pub rate_limited: bool,
    pub reason: Option<String>,
    pub retry_at: Option<OffsetDateTime>,
    pub last_found: i32,
    pub last_new: i32,
    pub last_imported: i32,
    pub last_skipped: i32,
    pub imported_total: i64,
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Paused => "paused",
        _ => "active",
    }
}

fn int(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

impl Projection for Subscriptions {
    const NAME: &'static str = "subscriptions";
    const AGGREGATES: &'static [&'static str] = &[AGGREGATE_TYPE];
    const TABLE: &'static str = "subscriptions";
    const KEY_COLUMN: &'static str = "id";
    const KEY_TYPE: &'static str = "text";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "user_id",
        "url",
        "title",
        "status",
        "latest",
        "subscribed_at",
        "version",
        "checks",
        "last_checked_at",
        "next_check_at",
        "failures",
        "rate_limited",
        "reason",
        "retry_at",
        "last_found",
        "last_new",
        "last_imported",
        "last_skipped",
        "imported_total",
    ];
    type Row = SubscriptionRow;

    fn key(row: &Self::Row) -> String {
        row.id.clone()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        if event.aggregate_type == AGGREGATE_TYPE {
            vec![event.aggregate_id.clone()]
        } else {
            Vec::new()
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let Ok(decoded) = event.decode::<SubscriptionEvent>() else {
            return;
        };
        let id = &event.aggregate_id;
        if let SubscriptionEvent::Subscribed {
            user_id,
            url,
            latest,
            at,
        } = &decoded
        {
            let (user_id, url, latest, at) = (*user_id, url.clone(), *latest, *at);
            // A new row, or one that starts over after an unsubscribe.
            rows.insert(
                id.clone(),
                SubscriptionRow {
                    id: id.clone(),
                    user_id,
                    url,
                    title: None,
                    status: "active".into(),
                    latest: latest.map(int),
                    subscribed_at: at,
                    version: 0,
                    checks: 0,
                    last_checked_at: None,
                    next_check_at: Some(at),
                    failures: 0,
                    rate_limited: false,
                    reason: None,
                    retry_at: None,
                    last_found: 0,
                    last_new: 0,
                    last_imported: 0,
                    last_skipped: 0,
                    imported_total: 0,
                },
            );
        }
        if let SubscriptionEvent::Unsubscribed { .. } = decoded {
            rows.remove(id);
            return;
        }
        let Some(row) = rows.get_mut(id) else {
            return;
        };
        row.version = event.sequence;
        match decoded {
            SubscriptionEvent::Subscribed { .. } | SubscriptionEvent::Unsubscribed { .. } => {}
            SubscriptionEvent::SubscriptionPaused { .. } => {
                row.status = status_text(Status::Paused).into();
            }
            SubscriptionEvent::SubscriptionResumed { at } => {
                row.status = status_text(Status::Active).into();
                // Resuming does not skip a backoff still running.
                row.next_check_at = Some(row.retry_at.filter(|r| *r > at).unwrap_or(at));
            }
            SubscriptionEvent::SubscriptionChecked {
                check,
                at,
                title,
                found,
                new,
                skipped,
                imported,
                next_check_at,
                ..
            } => {
                row.title = Some(title);
                row.checks = int(check);
                row.last_checked_at = Some(at);
                row.next_check_at = Some(next_check_at);
                row.failures = 0;
                row.rate_limited = false;
                row.reason = None;
                row.retry_at = None;
                row.last_found = int(found);
                row.last_new = int(new);
                row.last_imported = int(imported.len());
                row.last_skipped = int(skipped);
                row.imported_total += imported.len() as i64;
            }
            SubscriptionEvent::SubscriptionCheckFailed {
                check,
                at,
                rate_limited,
                reason,
                failures,
                retry_at,
            } => {
                row.checks = int(check);
                row.last_checked_at = Some(at);
                row.next_check_at = Some(retry_at);
                row.failures = int(failures);
                row.rate_limited = rate_limited;
                row.reason = Some(reason);
                row.retry_at = Some(retry_at);
            }
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        let time = |t: &OffsetDateTime| t.format(&Rfc3339).expect("timestamps format");
        vec![
            Some(row.id.clone()),
            Some(row.user_id.to_string()),
            Some(row.url.clone()),
            row.title.clone(),
            Some(row.status.clone()),
            row.latest.map(|n| n.to_string()),
            Some(time(&row.subscribed_at)),
            Some(row.version.to_string()),
            Some(row.checks.to_string()),
            row.last_checked_at.as_ref().map(time),
            row.next_check_at.as_ref().map(time),
            Some(row.failures.to_string()),
            Some(if row.rate_limited { "t" } else { "f" }.into()),
            row.reason.clone(),
            row.retry_at.as_ref().map(time),
            Some(row.last_found.to_string()),
            Some(row.last_new.to_string()),
            Some(row.last_imported.to_string()),
            Some(row.last_skipped.to_string()),
            Some(row.imported_total.to_string()),
        ]
    }
}

fn select() -> String {
    format!(
        "SELECT {} FROM subscriptions",
        Subscriptions::COLUMNS.join(", ")
    )
}

/// The user's subscriptions, oldest first.
pub async fn of_user(
    pool: &sqlx::PgPool,
    user_id: Uuid,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{} WHERE user_id = $1 ORDER BY subscribed_at, id",
        select()
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// How many subscriptions the user has.
pub async fn count(pool: &sqlx::PgPool, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

/// One subscription by its aggregate id.
pub async fn get(pool: &sqlx::PgPool, id: &str) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(&format!("{} WHERE id = $1", select()))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Active subscriptions whose check is due at `now` and that no scheduler holds, most
/// overdue first (the scheduler then claims each, `claim`).
pub async fn due(
    pool: &sqlx::PgPool,
    now: OffsetDateTime,
    limit: i64,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{} s WHERE status = 'active' AND next_check_at <= $1
           AND NOT EXISTS (SELECT 1 FROM subscription_claims c
                           WHERE c.subscription_id = s.id AND c.held_until > $1)
         ORDER BY next_check_at LIMIT $2",
        select()
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Claims a due check for `holder` until `until`: false when another scheduler holds it.
/// A claim is not a transaction held across the check (ADR 40): it is a row that
/// expires, so a scheduler that dies frees its checks when the claim runs out.
pub async fn claim(
    pool: &sqlx::PgPool,
    id: &str,
    holder: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO subscription_claims (subscription_id, holder, held_until)
         VALUES ($1, $2, $4)
         ON CONFLICT (subscription_id) DO UPDATE
            SET holder = excluded.holder, held_until = excluded.held_until
          WHERE subscription_claims.held_until <= $3
         RETURNING holder",
    )
    .bind(id)
    .bind(holder)
    .bind(now)
    .bind(until)
    .fetch_optional(pool)
    .await?;
    Ok(claimed.is_some())
}

/// Lets go of a claim (the check is recorded and the model has applied it).
pub async fn release(pool: &sqlx::PgPool, id: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM subscription_claims WHERE subscription_id = $1 AND holder = $2")
        .bind(id)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
#[path = "subscriptions_tests.rs"]
mod tests;
