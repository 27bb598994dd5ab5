//! Command processor: a durable pull consumer on `COMMANDS`. Each command runs its
//! domain plan (`jukebox_domain::plan`: which aggregates, in what order) with cqrs-es
//! aggregates against the Postgres `events` table; the outcome is stored, answered on core NATS after
//! commit, and only then is the message acked.
//!
//! Exactly-once effect: a command whose outcome is stored is answered from it; a
//! redelivered one whose events were committed before a crash is recognised by the
//! command id in the events' metadata and not applied again.
//!
//! Split by responsibility: `run` (a command's steps), `load` (an aggregate and, on the
//! first step, the stored outcome in one round trip, ADR 22), `commit` (a step's
//! statement).

mod commit;
mod group;
mod load;
mod run;

use std::time::Duration;

use async_nats::jetstream;
use jukebox_nats::consumer::delivery_count;
use jukebox_nats::names::REPLY_TO_HEADER;
use jukebox_nats::{
    CommandEnvelope, CommandOutcome, ConsumerRuntime, FailPointFired, FailPoints, InHand,
    MessageHandler, OutcomeStatus, Redeliveries, Settle, Topology,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, error, info, info_span, warn, Instrument};

use run::{Executed, Run};

/// The durable consumer's name (see `Topology::processor_consumer`).
const CONSUMER: &str = "processor";

#[derive(Debug, thiserror::Error)]
enum ProcessError {
    #[error("event store: {0}")]
    Store(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    FailPoint(#[from] FailPointFired),
}

#[derive(Clone)]
pub struct Processor {
    pool: PgPool,
    client: async_nats::Client,
    topology: Topology,
    /// Commands handled at once; conflicts on one aggregate are retried.
    pub concurrency: usize,
    pub ack_wait: Duration,
    pub fail_points: FailPoints,
    /// Shared with the process' other consumers (`/metrics`).
    pub redeliveries: Redeliveries,
    /// Conflict retries (`/metrics`).
    pub metrics: crate::metrics::ProcessorMetrics,
    /// Workers of the group commit (`group.rs`); 0 commits every step alone.
    pub commit_group_workers: usize,
    group: Option<group::CommitGroup>,
    /// Workers of the group load (`load.rs`); 0 loads every step alone.
    pub load_group_workers: usize,
    loads: Option<load::LoadGroup>,
    /// Wakes the relay after a commit; shared with this process' relay (`src/app.rs`).
    pub waker: crate::RelayWaker,
    /// Claim ids as keyed hashes (ADR 43).
    pub(crate) claim_ids: jukebox_nats::claim_ids::ClaimIds,
}

impl Processor {
    pub fn new(pool: PgPool, client: async_nats::Client, topology: Topology) -> Self {
        Self {
            claim_ids: jukebox_nats::claim_ids::ClaimIds::new(pool.clone()),
            pool,
            client,
            topology,
            concurrency: 64,
            ack_wait: Duration::from_secs(30),
            fail_points: FailPoints::default(),
            redeliveries: Redeliveries::default(),
            metrics: crate::metrics::ProcessorMetrics::default(),
            commit_group_workers: 4,
            group: None,
            load_group_workers: 2,
            loads: None,
            waker: crate::RelayWaker::default(),
        }
    }

    /// Runs until `shutdown`; messages in hand are finished first. Returns an error when
    /// the consumer cannot be reached or a fail point fired (the role "died").
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Claims still named by their plain id (a log from before ADR 43) move to their
        // keyed id before any step looks for them there.
        let rekeyed = crate::legacy::rekey_claims(&self.pool).await?;
        if rekeyed > 0 {
            tracing::info!(rekeyed, "claim streams moved to keyed ids (ADR 43)");
        }
        let js = jetstream::new(self.client.clone());
        let consumer = self.topology.processor_consumer(&js, self.ack_wait).await?;
        let waker_stop = shutdown.child_token();
        tokio::spawn(
            self.waker
                .clone()
                .run(self.pool.clone(), waker_stop.clone()),
        );
        let _stop_waker = waker_stop.drop_guard();
        if self.commit_group_workers > 0 {
            self.group = Some(group::CommitGroup::start(
                self.pool.clone(),
                self.commit_group_workers,
            ));
        }
        if self.load_group_workers > 0 {
            self.loads = Some(load::LoadGroup::start(
                self.pool.clone(),
                self.load_group_workers,
            ));
        }
        info!(
            concurrency = self.concurrency,
            commit_group_workers = self.commit_group_workers,
            load_group_workers = self.load_group_workers,
            "command processor started"
        );
        ConsumerRuntime::new("processor", CONSUMER)
            .with(&self.fail_points, &self.redeliveries)
            .each(
                &consumer,
                self.concurrency,
                InHand::Finish,
                &shutdown,
                &self,
            )
            .await?;
        info!("command processor stopped");
        Ok(())
    }
}

impl MessageHandler for Processor {
    async fn handle(&self, message: &jetstream::Message) -> Result<Settle, FailPointFired> {
        let envelope: CommandEnvelope = match serde_json::from_slice(&message.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                // A message nobody can read never becomes readable: drop it loudly.
                error!(%error, subject = %message.subject, "unreadable command, terminating it");
                return Ok(Settle::Term);
            }
        };
        let redelivered = delivery_count(message).is_none_or(|delivered| delivered > 1);
        let span = info_span!(
            "command",
            command_id = %envelope.command_id,
            correlation_id = %envelope.correlation_id,
            kind = envelope.command.subject_suffix()
        );
        let result = self.process(&envelope, redelivered).instrument(span).await;
        match result {
            Ok(outcome) => {
                if let Some(reply_to) = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(REPLY_TO_HEADER))
                {
                    let body = serde_json::to_vec(&outcome).expect("outcomes serialize");
                    // Best effort: the outcome is stored, the edge can read it later.
                    let _ = self
                        .client
                        .publish(reply_to.to_string(), body.into())
                        .instrument(debug_span!("processor.reply"))
                        .await;
                }
                // A lost ack redelivers the command, answered from its stored outcome.
                Ok(Settle::Ack)
            }
            Err(ProcessError::FailPoint(fired)) => Err(fired),
            Err(error) => {
                warn!(%error, command_id = %envelope.command_id, "command failed, retrying later");
                Ok(Settle::Retry(Duration::from_secs(1)))
            }
        }
    }
}

impl Processor {
    async fn process(
        &self,
        envelope: &CommandEnvelope,
        redelivered: bool,
    ) -> Result<CommandOutcome, ProcessError> {
        let run = Run::new(self, envelope, redelivered);
        let outcome = match run.execute().await? {
            Executed::Answered(outcome) => outcome,
            Executed::Finished(Ok(())) => {
                let stored = *run.outcome_stored.lock().expect("run lock");
                let outcome = run.outcome();
                if !stored {
                    // A plan that ended without a `last` step (none does today).
                    store_outcome(&self.pool, envelope, &outcome).await?;
                }
                outcome
            }
            Executed::Finished(Err(rejection)) => {
                let outcome = CommandOutcome {
                    command_id: envelope.command_id,
                    status: OutcomeStatus::Rejected,
                    error: Some(rejection),
                    position: run.position_token(),
                    events: run.committed.into_inner().expect("run lock"),
                };
                store_outcome(&self.pool, envelope, &outcome).await?;
                outcome
            }
        };
        Ok(outcome)
    }
}

async fn store_outcome<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    envelope: &CommandEnvelope,
    outcome: &CommandOutcome,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO command_outcomes (command_id, issued_by, status, outcome)
         VALUES ($1, $2, $3, $4) ON CONFLICT (command_id) DO NOTHING",
    )
    .bind(envelope.command_id)
    .bind(envelope.issued_by)
    .bind(match outcome.status {
        OutcomeStatus::Committed => "committed",
        OutcomeStatus::Rejected => "rejected",
    })
    .bind(sqlx::types::Json(outcome))
    .execute(executor)
    .instrument(debug_span!("processor.store_outcome"))
    .await?;
    Ok(())
}

/// The events primary key `(aggregate_type, aggregate_id, sequence)` was taken first.
fn is_conflict(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}
