//! `Subscription`: one user's subscription to a playlist, channel or feed (issue 20,
//! ADR 40), id `<user_id>/<key of the normalized URL>` (the same key as the collection
//! import of that URL, whose playlist it fills). Its history is the audit trail: every
//! check is an event, `SubscriptionChecked` (what was found, what was new, what is
//! imported) or `SubscriptionCheckFailed` (why, and when it tries again).
//!
//! A check names the version it was claimed at (`expected_version`): a check claimed
//! before a pause, an unsubscribe or another replica's check is refused, so two checks
//! never both count. The entries it imports go on to the user's `CollectionImport` of
//! the same URL (`plan/subscriptions.rs`), which adds each track once.

use std::collections::HashSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::collection::{CollectionEntry, SkippedEntry};
use crate::media::TrackId;

/// The aggregate type, for readers of the log without `cqrs_es`.
pub const AGGREGATE_TYPE: &str = "subscription";
/// The most a first check may be capped to ("only the latest N").
pub const MAX_LATEST: u32 = 5_000;

/// The subscription's id for this user and URL: the collection import's.
pub fn id(user_id: Uuid, url: &str) -> String {
    crate::collection::id(user_id, url)
}

/// The command id of the check claimed at `version`: a check re-run after a crash is the
/// same command, which the processor applies once (ADR 02).
pub fn check_command_id(subscription_id: &str, version: u64) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("jukebox:subscription:{subscription_id}:{version}").as_bytes(),
    )
}

/// How long to wait after the `failures`-th failure in a row: `base` doubled for each
/// failure before it, at most `max`.
pub fn backoff(failures: u32, base_s: u64, max_s: u64) -> Duration {
    let factor = 1u64 << failures.saturating_sub(1).min(30);
    Duration::seconds(
        base_s
            .saturating_mul(factor)
            .min(max_s)
            .min(i64::MAX as u64) as i64,
    )
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    None,
    Active,
    Paused,
    Ended,
}

/// What a check found: the listing, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    Listed {
        /// The collection import's batch (its jobs' ids derive from it).
        batch_id: Uuid,
        title: String,
        /// Importable entries in the listing's order.
        entries: Vec<CollectionEntry>,
        skipped: Vec<SkippedEntry>,
        listed: u64,
        capped: bool,
        /// When the next check is due (the scheduler's jittered interval).
        next_check_at: OffsetDateTime,
    },
    Failed {
        /// HTTP 429 or a bot check: the site asked us to slow down.
        rate_limited: bool,
        reason: String,
        backoff_base_s: u64,
        backoff_max_s: u64,
    },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Subscription {
    user_id: Option<Uuid>,
    url: String,
    title: Option<String>,
    status: Status,
    /// The first check after subscribing imports at most this many entries.
    latest: Option<u32>,
    checked_since_subscribed: bool,
    failures: u32,
    /// Every event applied: what a check is claimed at.
    version: u64,
    checks: u32,
    /// Every track a check has found (imported or passed over by the first-check cap).
    seen: HashSet<TrackId>,
    /// The last check's entries to import and their batch (the plan imports these).
    last_batch: Option<Uuid>,
    last_imported: Vec<CollectionEntry>,
}

impl Subscription {
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    pub fn url(&self) -> &str {
        &self.url
    }
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    pub fn status(&self) -> Status {
        self.status
    }
    pub fn version(&self) -> u64 {
        self.version
    }
    pub fn last_batch(&self) -> Option<Uuid> {
        self.last_batch
    }
    pub fn last_imported(&self) -> &[CollectionEntry] {
        &self.last_imported
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionCommand {
    Subscribe {
        user_id: Uuid,
        url: String,
        latest: Option<u32>,
        at: OffsetDateTime,
    },
    Pause {
        by: Uuid,
        at: OffsetDateTime,
    },
    Resume {
        by: Uuid,
        at: OffsetDateTime,
    },
    Unsubscribe {
        by: Uuid,
        at: OffsetDateTime,
    },
    Check {
        user_id: Uuid,
        expected_version: u64,
        at: OffsetDateTime,
        result: CheckResult,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionEvent {
    Subscribed {
        user_id: Uuid,
        url: String,
        latest: Option<u32>,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    SubscriptionPaused {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    SubscriptionResumed {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Unsubscribed {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    SubscriptionChecked {
        check: u32,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        title: String,
        /// Importable entries listed.
        found: u32,
        /// Of those, not found by an earlier check.
        new: u32,
        /// Listed but not importable (private, deleted, too long, not audio).
        skipped: u32,
        batch_id: Uuid,
        /// The new entries imported, in the listing's order.
        imported: Vec<CollectionEntry>,
        /// New entries the first check's cap passed over: seen, never imported.
        passed_over: Vec<TrackId>,
        #[serde(with = "time::serde::rfc3339")]
        next_check_at: OffsetDateTime,
    },
    SubscriptionCheckFailed {
        check: u32,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        rate_limited: bool,
        reason: String,
        /// Failures in a row, this one included.
        failures: u32,
        #[serde(with = "time::serde::rfc3339")]
        retry_at: OffsetDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("you are subscribed to this list already")]
    AlreadySubscribed,
    #[error("no subscription to this list here")]
    Unknown,
    #[error("the subscription is paused")]
    Paused,
    #[error("the subscription is not paused")]
    NotPaused,
    #[error("the subscription changed since this check was claimed")]
    StaleCheck,
    #[error("\"latest\" must be between 1 and 5000")]
    InvalidLatest,
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Subscribed { .. } => "Subscribed",
            Self::SubscriptionPaused { .. } => "SubscriptionPaused",
            Self::SubscriptionResumed { .. } => "SubscriptionResumed",
            Self::Unsubscribed { .. } => "Unsubscribed",
            Self::SubscriptionChecked { .. } => "SubscriptionChecked",
            Self::SubscriptionCheckFailed { .. } => "SubscriptionCheckFailed",
        }
        .into()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Subscription {
    /// A live subscription of `by` (the id holds the user, so another user's is unknown).
    fn owned_by(&self, by: Uuid) -> Result<(), SubscriptionError> {
        match self.status {
            Status::Active | Status::Paused if self.user_id == Some(by) => Ok(()),
            _ => Err(SubscriptionError::Unknown),
        }
    }

    fn check(
        &self,
        user_id: Uuid,
        expected_version: u64,
        at: OffsetDateTime,
        result: CheckResult,
    ) -> Result<SubscriptionEvent, SubscriptionError> {
        self.owned_by(user_id)?;
        if self.status == Status::Paused {
            return Err(SubscriptionError::Paused);
        }
        if expected_version != self.version {
            return Err(SubscriptionError::StaleCheck);
        }
        let check = self.checks + 1;
        Ok(match result {
            CheckResult::Listed {
                batch_id,
                title,
                entries,
                skipped,
                next_check_at,
                ..
            } => {
                let found = entries.len() as u32;
                let mut taken = HashSet::new();
                let new: Vec<CollectionEntry> = entries
                    .into_iter()
                    .filter(|e| {
                        !self.seen.contains(&e.track_id) && taken.insert(e.track_id.clone())
                    })
                    .collect();
                let cap = match (self.checked_since_subscribed, self.latest) {
                    (false, Some(latest)) => latest as usize,
                    _ => usize::MAX,
                };
                let new_count = new.len() as u32;
                let mut imported = new;
                let passed_over = imported
                    .split_off(cap.min(imported.len()))
                    .into_iter()
                    .map(|e| e.track_id)
                    .collect();
                SubscriptionEvent::SubscriptionChecked {
                    check,
                    at,
                    title,
                    found,
                    new: new_count,
                    skipped: skipped.len() as u32,
                    batch_id,
                    imported,
                    passed_over,
                    next_check_at,
                }
            }
            CheckResult::Failed {
                rate_limited,
                reason,
                backoff_base_s,
                backoff_max_s,
            } => {
                let failures = self.failures + 1;
                SubscriptionEvent::SubscriptionCheckFailed {
                    check,
                    at,
                    rate_limited,
                    reason,
                    failures,
                    retry_at: at + backoff(failures, backoff_base_s, backoff_max_s),
                }
            }
        })
    }
}

impl Aggregate for Subscription {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = SubscriptionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            SubscriptionCommand::Subscribe {
                user_id,
                url,
                latest,
                at,
            } => {
                if matches!(self.status, Status::Active | Status::Paused) {
                    return Err(SubscriptionError::AlreadySubscribed);
                }
                if latest.is_some_and(|n| n == 0 || n > MAX_LATEST) {
                    return Err(SubscriptionError::InvalidLatest);
                }
                SubscriptionEvent::Subscribed {
                    user_id,
                    url,
                    latest,
                    at,
                }
            }
            SubscriptionCommand::Pause { by, at } => {
                self.owned_by(by)?;
                if self.status == Status::Paused {
                    return Ok(());
                }
                SubscriptionEvent::SubscriptionPaused { at }
            }
            SubscriptionCommand::Resume { by, at } => {
                self.owned_by(by)?;
                if self.status != Status::Paused {
                    return Err(SubscriptionError::NotPaused);
                }
                SubscriptionEvent::SubscriptionResumed { at }
            }
            SubscriptionCommand::Unsubscribe { by, at } => {
                self.owned_by(by)?;
                SubscriptionEvent::Unsubscribed { at }
            }
            SubscriptionCommand::Check {
                user_id,
                expected_version,
                at,
                result,
            } => self.check(user_id, expected_version, at, result)?,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        self.last_batch = None;
        self.last_imported = Vec::new();
        match event {
            SubscriptionEvent::Subscribed {
                user_id,
                url,
                latest,
                ..
            } => {
                self.user_id = Some(user_id);
                self.url = url;
                self.latest = latest;
                self.status = Status::Active;
                self.checked_since_subscribed = false;
                self.failures = 0;
            }
            SubscriptionEvent::SubscriptionPaused { .. } => self.status = Status::Paused,
            SubscriptionEvent::SubscriptionResumed { .. } => self.status = Status::Active,
            SubscriptionEvent::Unsubscribed { .. } => self.status = Status::Ended,
            SubscriptionEvent::SubscriptionChecked {
                check,
                title,
                batch_id,
                imported,
                passed_over,
                ..
            } => {
                self.checks = check;
                self.title = Some(title);
                self.checked_since_subscribed = true;
                self.failures = 0;
                self.seen
                    .extend(imported.iter().map(|e| e.track_id.clone()));
                self.seen.extend(passed_over);
                self.last_batch = Some(batch_id);
                self.last_imported = imported;
            }
            SubscriptionEvent::SubscriptionCheckFailed {
                check, failures, ..
            } => {
                self.checks = check;
                self.failures = failures;
            }
        }
    }
}

#[cfg(test)]
#[path = "subscription_tests.rs"]
mod tests;
