//! The subscription scheduler (issue 20, ADR 40), run by the downloader role beside its
//! jobs (it has the media tools and the egress proxy). Every `poll` it reads the due
//! subscriptions from the `subscriptions` read model, claims each (a row in
//! `subscription_claims` that expires, never a transaction held across the listing),
//! lists the URL and sends one `CheckSubscription`, at most `max_concurrent` at once.
//!
//! Nothing is lost or doubled: the check's command id derives from the subscription and
//! the version it was claimed at, so a check re-run after a crash is the same command;
//! and the aggregate refuses a check claimed at an older version, so two schedulers that
//! both claimed one (a claim ran out) count it once.

use std::sync::Arc;
use std::time::Duration;

use jukebox_domain::collection;
use jukebox_domain::subscription::{self, CheckResult};
use jukebox_domain::Command;
use jukebox_edge::ports::{CollectionLister, ListError};
use jukebox_nats::{CommandBus, CommandEnvelope, OutcomeStatus};
use jukebox_projections::subscriptions::{self as model, SubscriptionRow};
use jukebox_projections::{Freshness, ReadModel, Subscriptions};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// What the scheduler is told by the configuration.
#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// Between two checks of a subscription, ± 10%.
    pub interval: Duration,
    pub max_concurrent: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Entries one check lists (`IMPORT_COLLECTION_MAX_ENTRIES`).
    pub cap: usize,
    pub max_duration_s: u64,
    /// How long to wait for a check's outcome.
    pub command_wait: Duration,
}

impl ScheduleSettings {
    pub fn from_config(config: &crate::config::Config, command_wait: Duration) -> Self {
        Self {
            interval: config.subscription_check_interval,
            max_concurrent: config.subscription_max_concurrent_checks,
            backoff_base: config.subscription_backoff_base,
            backoff_max: config.subscription_backoff_max,
            cap: config.import_collection_max_entries,
            max_duration_s: config.import_max_duration.as_secs(),
            command_wait,
        }
    }

    /// How often due checks are looked for (one indexed query): a tenth of the
    /// interval, 100 ms to 5 s, so a new subscription's first check comes soon.
    fn poll(&self) -> Duration {
        (self.interval / 10).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The interval with ± 10% jitter, so subscriptions made together spread out.
    fn jittered(&self) -> Duration {
        let bytes = Uuid::new_v4().into_bytes();
        let unit = f64::from(u16::from_le_bytes([bytes[0], bytes[1]])) / f64::from(u16::MAX);
        self.interval.mul_f64(0.9 + 0.2 * unit)
    }
}

/// A claim outlives the slowest check: listing (yt-dlp's timeout) plus the command.
const CLAIM: Duration = Duration::from_secs(15 * 60);

pub struct Scheduler {
    pub pool: PgPool,
    pub bus: CommandBus,
    pub freshness: Freshness,
    pub lister: Arc<dyn CollectionLister>,
    pub settings: ScheduleSettings,
    /// Names this scheduler's claims.
    pub holder: String,
}

impl Scheduler {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let this = Arc::new(self);
        let mut running: JoinSet<()> = JoinSet::new();
        info!(holder = %this.holder, interval_s = this.settings.interval.as_secs(), "subscription scheduler started");
        loop {
            while running.try_join_next().is_some() {}
            let free = this.settings.max_concurrent.saturating_sub(running.len());
            if free > 0 {
                match this.claim_due(free).await {
                    Ok(rows) => {
                        for row in rows {
                            let this = this.clone();
                            running.spawn(async move { this.check(row).await });
                        }
                    }
                    Err(error) => warn!(
                        error = format!("{error:#}"),
                        "looking for due subscriptions"
                    ),
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(this.settings.poll()) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        // A check in hand is dropped: its claim runs out and another scheduler takes it;
        // if its command was sent, the same command id makes the retry the same command.
        running.shutdown().await;
        Ok(())
    }

    async fn claim_due(&self, free: usize) -> anyhow::Result<Vec<SubscriptionRow>> {
        let now = OffsetDateTime::now_utc();
        let until = now + CLAIM;
        let mut claimed = Vec::new();
        for row in model::due(&self.pool, now, free as i64).await? {
            if model::claim(&self.pool, &row.id, &self.holder, now, until).await? {
                claimed.push(row);
            }
        }
        Ok(claimed)
    }

    async fn check(&self, row: SubscriptionRow) {
        let id = row.id.clone();
        match self.check_once(row).await {
            Ok(()) => {}
            Err(error) => {
                warn!(subscription = %id, error = format!("{error:#}"), "subscription check")
            }
        }
        // Let go once the model shows the check (or it failed to record): the next poll
        // then sees the new `next_check_at`, not the one this check started from.
        if let Err(error) = model::release(&self.pool, &id, &self.holder).await {
            warn!(subscription = %id, error = %error, "releasing a subscription claim");
        }
    }

    async fn check_once(&self, row: SubscriptionRow) -> anyhow::Result<()> {
        let cap = self.settings.cap;
        let result = match self.lister.list(&row.url, cap).await {
            Ok(listing) => {
                let take = listing.entries.len().min(cap);
                let (entries, skipped) = collection::classify_all(
                    &listing.entries[..take],
                    self.settings.max_duration_s,
                );
                CheckResult::Listed {
                    batch_id: Uuid::now_v7(),
                    title: listing.title.unwrap_or_else(|| row.url.clone()),
                    entries: entries.into_iter().map(|(_, e)| e).collect(),
                    skipped,
                    listed: listing.total,
                    capped: listing.capped,
                    next_check_at: OffsetDateTime::now_utc() + self.settings.jittered(),
                }
            }
            Err(error) => CheckResult::Failed {
                rate_limited: matches!(error, ListError::RateLimited(_)),
                reason: error.to_string().chars().take(500).collect(),
                backoff_base_s: self.settings.backoff_base.as_secs(),
                backoff_max_s: self.settings.backoff_max.as_secs(),
            },
        };
        let version = u64::try_from(row.version).unwrap_or_default();
        let envelope = CommandEnvelope {
            command_id: subscription::check_command_id(&row.id, version),
            correlation_id: Uuid::now_v7(),
            issued_by: Some(row.user_id),
            issued_at: OffsetDateTime::now_utc(),
            command: Command::CheckSubscription {
                subscription_id: row.id.clone(),
                user_id: row.user_id,
                expected_version: version,
                result,
            },
        };
        let outcome = self.bus.send(&envelope, self.settings.command_wait).await?;
        let outcome = match outcome {
            Some(outcome) => outcome,
            None => jukebox_nats::outcomes::get(&self.pool, envelope.command_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the check was not answered in time"))?,
        };
        if outcome.status == OutcomeStatus::Rejected {
            // Paused, unsubscribed or checked by another scheduler since the claim.
            info!(subscription = %row.id, error = ?outcome.error, "check refused");
            return Ok(());
        }
        if let Some(position) = outcome.position.as_deref().and_then(|p| p.parse().ok()) {
            self.freshness
                .wait_for(position, &[ReadModel::of::<Subscriptions>()])
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }
}
