//! Command processor: a durable pull consumer on `COMMANDS`. Each command runs through
//! cqrs-es against the Postgres event store; the outcome is stored, answered on core NATS
//! after commit, and only then is the message acked.
//!
//! Exactly-once effect: a command whose outcome is stored is answered from it; a
//! redelivered one whose events were committed before a crash is recognised by the
//! command id in the events' metadata and not applied again.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use futures::StreamExt;
use jukebox_domain::{Command, CommandError, EmailClaim, EmailClaimCommand, User, UserCommand};
use jukebox_nats::names::REPLY_TO_HEADER;
use jukebox_nats::{
    CommandEnvelope, CommandOutcome, EventRef, FailPointFired, FailPoints, OutcomeStatus, Topology,
};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};

/// Attempts at one aggregate step before an optimistic-concurrency conflict is an error.
const MAX_CONFLICT_RETRIES: u32 = 20;

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
}

impl Processor {
    pub fn new(pool: PgPool, client: async_nats::Client, topology: Topology) -> Self {
        Self {
            pool,
            client,
            topology,
            concurrency: 64,
            ack_wait: Duration::from_secs(30),
            fail_points: FailPoints::default(),
        }
    }

    /// Runs until `shutdown`; messages in hand are finished first. Returns an error when
    /// the consumer cannot be reached or a fail point fired (the role "died").
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let js = jetstream::new(self.client.clone());
        let consumer = self.topology.processor_consumer(&js, self.ack_wait).await?;
        let messages = consumer.messages().await?;
        info!(concurrency = self.concurrency, "command processor started");
        let died = CancellationToken::new();
        let stop = shutdown.clone();
        let dead = died.clone();
        messages
            .take_until(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = dead.cancelled() => {}
                }
            })
            .for_each_concurrent(self.concurrency, |message| {
                let died = died.clone();
                let this = &self;
                async move {
                    let message = match message {
                        Ok(message) => message,
                        Err(error) => {
                            warn!(%error, "command consumer error");
                            return;
                        }
                    };
                    if died.is_cancelled() {
                        return; // as if killed: no ack, JetStream redelivers it
                    }
                    if let Err(fired) = this.handle_message(message).await {
                        error!(%fired, "processor stopping at fail point");
                        died.cancel();
                    }
                }
            })
            .await;
        if died.is_cancelled() {
            anyhow::bail!("processor died at a fail point");
        }
        info!("command processor stopped");
        Ok(())
    }

    async fn handle_message(&self, message: jetstream::Message) -> Result<(), FailPointFired> {
        let envelope: CommandEnvelope = match serde_json::from_slice(&message.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                // A message nobody can read never becomes readable: drop it loudly.
                error!(%error, subject = %message.subject, "unreadable command, terminating it");
                let _ = message.ack_with(AckKind::Term).await;
                return Ok(());
            }
        };
        let redelivered = message.info().map(|i| i.delivered > 1).unwrap_or(true);
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
                    let _ = self.client.publish(reply_to.to_string(), body.into()).await;
                }
                if let Err(error) = message.ack().await {
                    warn!(%error, "ack failed; the command will be redelivered and answered from its stored outcome");
                }
                Ok(())
            }
            Err(ProcessError::FailPoint(fired)) => Err(fired),
            Err(error) => {
                warn!(%error, command_id = %envelope.command_id, "command failed, retrying later");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                Ok(())
            }
        }
    }

    async fn process(
        &self,
        envelope: &CommandEnvelope,
        redelivered: bool,
    ) -> Result<CommandOutcome, ProcessError> {
        if let Some(outcome) = self.stored_outcome(envelope.command_id).await? {
            return Ok(outcome);
        }
        let outcome = self.execute(envelope, redelivered).await?;
        self.fail_points.check("processor.after_commit")?;
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
        .bind(sqlx::types::Json(&outcome))
        .execute(&self.pool)
        .await?;
        Ok(outcome)
    }

    async fn stored_outcome(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<CommandOutcome>, ProcessError> {
        let row: Option<(sqlx::types::Json<CommandOutcome>,)> =
            sqlx::query_as("SELECT outcome FROM command_outcomes WHERE command_id = $1")
                .bind(command_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(outcome,)| outcome.0))
    }

    /// Runs a command's steps, one aggregate each, in order.
    async fn execute(
        &self,
        envelope: &CommandEnvelope,
        redelivered: bool,
    ) -> Result<CommandOutcome, ProcessError> {
        let step = Step {
            processor: self,
            envelope,
            redelivered,
        };
        let results = match &envelope.command {
            Command::SignUp {
                user_id,
                email,
                password_hash,
            } => {
                let claim = step
                    .run::<EmailClaim>(
                        email.as_str(),
                        EmailClaimCommand::Claim { user_id: *user_id },
                    )
                    .await?;
                match claim {
                    Err(rejection) => Err(rejection),
                    Ok(mut events) => step
                        .run::<User>(
                            &user_id.to_string(),
                            UserCommand::SignUp {
                                user_id: *user_id,
                                email: email.clone(),
                                password_hash: password_hash.clone(),
                            },
                        )
                        .await?
                        .map(|more| {
                            events.extend(more);
                            events
                        }),
                }
            }
            Command::RecordSignIn { user_id } => {
                step.run::<User>(&user_id.to_string(), UserCommand::RecordSignIn)
                    .await?
            }
        };
        Ok(match results {
            Ok(events) => CommandOutcome {
                command_id: envelope.command_id,
                status: OutcomeStatus::Committed,
                error: None,
                events,
            },
            Err(rejection) => CommandOutcome {
                command_id: envelope.command_id,
                status: OutcomeStatus::Rejected,
                error: Some(rejection),
                events: Vec::new(),
            },
        })
    }
}

/// One command applied to one aggregate.
struct Step<'a> {
    processor: &'a Processor,
    envelope: &'a CommandEnvelope,
    redelivered: bool,
}

impl Step<'_> {
    async fn run<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
    ) -> Result<Result<Vec<EventRef>, CommandError>, ProcessError>
    where
        A: Aggregate<Services = ()>,
        A::Command: Clone,
        CommandError: From<A::Error>,
    {
        if self.redelivered {
            let committed = self.committed_events(A::TYPE, aggregate_id).await?;
            if !committed.is_empty() {
                info!(
                    aggregate = A::TYPE,
                    aggregate_id, "already committed before a restart"
                );
                return Ok(Ok(committed));
            }
        }
        let repository = PostgresEventRepository::new(self.processor.pool.clone());
        let store: PersistedEventStore<_, A> = PersistedEventStore::new_event_store(repository);
        for attempt in 1..=MAX_CONFLICT_RETRIES {
            let mut context = store
                .load_aggregate(aggregate_id)
                .await
                .map_err(store_error)?;
            let sink = Default::default();
            if let Err(rejection) = context
                .aggregate()
                .handle(command.clone(), &(), &sink)
                .await
            {
                return Ok(Err(rejection.into()));
            }
            let events = sink.collect().await;
            match store.commit(events, context, self.metadata()).await {
                Ok(committed) => {
                    return Ok(Ok(committed
                        .into_iter()
                        .map(|e| EventRef {
                            aggregate_type: A::TYPE.to_owned(),
                            aggregate_id: e.aggregate_id,
                            sequence: e.sequence as i64,
                            event_type: cqrs_es::DomainEvent::event_type(&e.payload),
                        })
                        .collect()));
                }
                Err(AggregateError::AggregateConflict) => {
                    // Another command committed first: reload and decide again.
                    let backoff =
                        Duration::from_millis(u64::from(attempt) * 2 + rand::random::<u64>() % 5);
                    tokio::time::sleep(backoff).await;
                }
                Err(error) => return Err(store_error(error)),
            }
        }
        Err(ProcessError::Store(format!(
            "{} {aggregate_id}: still conflicting after {MAX_CONFLICT_RETRIES} attempts",
            A::TYPE
        )))
    }

    fn metadata(&self) -> HashMap<String, String> {
        let envelope = self.envelope;
        let mut metadata = HashMap::from([
            ("command_id".to_owned(), envelope.command_id.to_string()),
            (
                "correlation_id".to_owned(),
                envelope.correlation_id.to_string(),
            ),
            ("causation_id".to_owned(), envelope.command_id.to_string()),
            (
                "command".to_owned(),
                envelope.command.subject_suffix().to_owned(),
            ),
        ]);
        if let Some(user_id) = envelope.issued_by {
            metadata.insert("user_id".to_owned(), user_id.to_string());
        }
        metadata
    }

    async fn committed_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<EventRef>, ProcessError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT sequence, event_type FROM events
             WHERE metadata ->> 'command_id' = $1 AND aggregate_type = $2 AND aggregate_id = $3
             ORDER BY sequence",
        )
        .bind(self.envelope.command_id.to_string())
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.processor.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(sequence, event_type)| EventRef {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                sequence,
                event_type,
            })
            .collect())
    }
}

fn store_error<E: std::error::Error>(error: AggregateError<E>) -> ProcessError {
    ProcessError::Store(error.to_string())
}
