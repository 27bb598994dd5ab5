//! Command processor: a durable pull consumer on `COMMANDS`. Each command runs its
//! domain plan (`jukebox_domain::plan`: which aggregates, in what order) through cqrs-es
//! against the Postgres event store; the outcome is stored, answered on core NATS after
//! commit, and only then is the message acked.
//!
//! Exactly-once effect: a command whose outcome is stored is answered from it; a
//! redelivered one whose events were committed before a crash is recognised by the
//! command id in the events' metadata and not applied again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, AggregateError, DomainEvent, EventStore};
use jukebox_domain::plan::{self, AggregateCommand, Issued, Next, Report, State, Step};
use jukebox_domain::{
    CommandError, EmailClaim, ExternalIdentity, Import, LibraryCommand, LibraryEntry, LibraryEvent,
    Session, Track, TrackId, User,
};
use jukebox_nats::consumer::delivery_count;
use jukebox_nats::log;
use jukebox_nats::names::REPLY_TO_HEADER;
use jukebox_nats::{
    CommandEnvelope, CommandOutcome, ConsumerRuntime, EventRef, FailPointFired, FailPoints, InHand,
    MessageHandler, OutcomeStatus, Redeliveries, Settle, Topology,
};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};

use crate::access::{AccessState, ACCESS_CTES};

/// The durable consumer's name (see `Topology::processor_consumer`).
const CONSUMER: &str = "processor";

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
    /// Shared with the process' other consumers (`/metrics`).
    pub redeliveries: Redeliveries,
    waker: crate::RelayWaker,
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
            redeliveries: Redeliveries::default(),
            waker: crate::RelayWaker::default(),
        }
    }

    /// Runs until `shutdown`; messages in hand are finished first. Returns an error when
    /// the consumer cannot be reached or a fail point fired (the role "died").
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let js = jetstream::new(self.client.clone());
        let consumer = self.topology.processor_consumer(&js, self.ack_wait).await?;
        let waker_stop = shutdown.child_token();
        tokio::spawn(
            self.waker
                .clone()
                .run(self.pool.clone(), waker_stop.clone()),
        );
        let _stop_waker = waker_stop.drop_guard();
        info!(concurrency = self.concurrency, "command processor started");
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
                    let _ = self.client.publish(reply_to.to_string(), body.into()).await;
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
        if let Some(outcome) = self.stored_outcome(envelope.command_id).await? {
            return Ok(outcome);
        }
        let run = Run {
            processor: self,
            envelope,
            redelivered,
            committed: Mutex::new(Vec::new()),
            position: Mutex::new(None),
            outcome_stored: Mutex::new(false),
        };
        let outcome = match run.execute().await? {
            Ok(()) => {
                let stored = *run.outcome_stored.lock().expect("run lock");
                let outcome = run.outcome();
                if !stored {
                    // A plan that ended without a `last` step (none does today).
                    store_outcome(&self.pool, envelope, &outcome).await?;
                }
                outcome
            }
            Err(rejection) => {
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
    .await?;
    Ok(())
}

/// One command being executed: its plan's steps (`jukebox_domain::plan`), one aggregate
/// each, in order.
struct Run<'a> {
    processor: &'a Processor,
    envelope: &'a CommandEnvelope,
    redelivered: bool,
    /// Events committed by this command so far, in step order.
    committed: Mutex<Vec<EventRef>>,
    /// The relay-order key `(transaction_id, global_position)` of the last of them.
    position: Mutex<Option<(u64, i64)>>,
    /// Whether a `last` step stored the outcome with its events.
    outcome_stored: Mutex<bool>,
}

impl Run<'_> {
    /// Runs the plan's steps until it finishes. Every step but the last commits its
    /// events alone; the last one commits them together with the outcome, so one
    /// transaction per command in the common case.
    async fn execute(&self) -> Result<Result<(), CommandError>, ProcessError> {
        let envelope = self.envelope;
        let issued = Issued {
            by: envelope.issued_by,
            at: envelope.issued_at,
        };
        let mut done = Vec::new();
        loop {
            let report = match plan::next(&envelope.command, issued, &done) {
                Next::Finish(result) => return Ok(result),
                Next::Step(Step::ReadUser { user_id }) => self.read_user(user_id).await?,
                Next::Step(Step::Apply {
                    aggregate_id,
                    command,
                    last,
                }) => self.apply_step(&aggregate_id, command, last).await?,
            };
            done.push(report);
        }
    }

    /// Dispatches a step to its aggregate type.
    async fn apply_step(
        &self,
        aggregate_id: &str,
        command: AggregateCommand,
        last: bool,
    ) -> Result<Report, ProcessError> {
        match command {
            AggregateCommand::User(c) => self.apply::<User>(aggregate_id, c, last, &[]).await,
            AggregateCommand::Session(c) => self.apply::<Session>(aggregate_id, c, last, &[]).await,
            AggregateCommand::EmailClaim(c) => {
                self.apply::<EmailClaim>(aggregate_id, c, last, &[]).await
            }
            AggregateCommand::ExternalIdentity(c) => {
                self.apply::<ExternalIdentity>(aggregate_id, c, last, &[])
                    .await
            }
            AggregateCommand::Import(c) => self.apply::<Import>(aggregate_id, c, last, &[]).await,
            AggregateCommand::Track(c) => self.apply::<Track>(aggregate_id, c, last, &[]).await,
            AggregateCommand::LibraryEntry(c) => {
                // An entry with no events of its own starts from its track's events in
                // the per-user `Library` of logs written before it.
                let (user_id, track_id) = match &c {
                    LibraryCommand::AddTrack {
                        user_id, track_id, ..
                    }
                    | LibraryCommand::RemoveTrack { user_id, track_id } => (*user_id, track_id),
                };
                let seed = self.legacy_library_events(user_id, track_id).await?;
                self.apply::<LibraryEntry>(aggregate_id, c, last, &seed)
                    .await
            }
        }
    }

    /// The last event about `track_id` in `user_id`'s per-user `Library` (indexed; none
    /// in a log started after issue 16).
    async fn legacy_library_events(
        &self,
        user_id: uuid::Uuid,
        track_id: &TrackId,
    ) -> Result<Vec<LibraryEvent>, ProcessError> {
        let user_id = user_id.to_string();
        let pool = &self.processor.pool;
        let event =
            log::last_with_field(pool, "library", &user_id, "track_id", track_id.as_str()).await?;
        event
            .map(|event| event.decode::<LibraryEvent>())
            .transpose()
            .map(|event| event.into_iter().collect())
            .map_err(|e| ProcessError::Store(format!("legacy library event: {e}")))
    }

    /// A user's current state, for a plan that decides on it (admin commands).
    async fn read_user(&self, user_id: uuid::Uuid) -> Result<Report, ProcessError> {
        let repository = PostgresEventRepository::new(self.processor.pool.clone());
        let store: PersistedEventStore<_, User> = PersistedEventStore::new_event_store(repository);
        let context = store
            .load_aggregate(&user_id.to_string())
            .await
            .map_err(store_error)?;
        Ok(Report::Applied {
            events: Vec::new(),
            state: context.aggregate.into(),
        })
    }

    /// The outcome of a command whose steps all committed.
    fn outcome(self) -> CommandOutcome {
        CommandOutcome {
            command_id: self.envelope.command_id,
            status: OutcomeStatus::Committed,
            error: None,
            position: self.position_token(),
            events: self.committed.into_inner().expect("run lock"),
        }
    }

    /// Loads the aggregate (plus `seed` when it has no events yet), handles the command
    /// and commits; reports the events and the state after the step.
    async fn apply<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        last: bool,
        seed: &[A::Event],
    ) -> Result<Report, ProcessError>
    where
        A: AccessState<Services = ()>,
        A::Command: Clone,
        CommandError: From<A::Error>,
        State: From<A>,
    {
        let repository = PostgresEventRepository::new(self.processor.pool.clone());
        let store: PersistedEventStore<_, A> = PersistedEventStore::new_event_store(repository);
        if self.redelivered {
            // A crash between two steps: this one may have committed already.
            if let Some(report) = self.adopt_committed::<A>(aggregate_id, last).await? {
                info!(
                    aggregate = A::TYPE,
                    aggregate_id, "already committed before a restart"
                );
                return Ok(report);
            }
        }
        for attempt in 1..=MAX_CONFLICT_RETRIES {
            let mut context = store
                .load_aggregate(aggregate_id)
                .await
                .map_err(store_error)?;
            if context.current_sequence == 0 {
                for event in seed {
                    context.aggregate.apply(event.clone());
                }
            }
            let sink = Default::default();
            if let Err(rejection) = context
                .aggregate()
                .handle(command.clone(), &(), &sink)
                .await
            {
                return Ok(Report::Rejected(rejection.into()));
            }
            // `handle` applied its events as it wrote them: this is the state after.
            let events: Vec<A::Event> = sink.collect().await;
            let after = context.aggregate;
            match self
                .commit::<A>(
                    aggregate_id,
                    context.current_sequence,
                    &events,
                    &after,
                    last,
                )
                .await
            {
                Ok(true) => {
                    if !events.is_empty() {
                        self.processor.waker.wake();
                    }
                    if last {
                        *self.outcome_stored.lock().expect("run lock") = true;
                    }
                    self.processor.fail_points.check("processor.after_commit")?;
                    return Ok(Report::Applied {
                        events: events.iter().map(DomainEvent::event_type).collect(),
                        state: after.into(),
                    });
                }
                Ok(false) => {
                    // Another copy of this command (a redelivery past `ack_wait` while
                    // this one still ran) committed this step: take its events, once.
                    info!(
                        aggregate = A::TYPE,
                        aggregate_id, "already committed by another delivery"
                    );
                    if let Some(report) = self.adopt_committed::<A>(aggregate_id, last).await? {
                        return Ok(report);
                    }
                    return Err(ProcessError::Store(format!(
                        "{} {aggregate_id}: committed by another delivery, but no events found",
                        A::TYPE
                    )));
                }
                Err(error) if is_conflict(&error) => {
                    // Another command committed first: reload and decide again.
                    let backoff =
                        Duration::from_millis(u64::from(attempt) * 2 + rand::random::<u64>() % 5);
                    tokio::time::sleep(backoff).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ProcessError::Store(format!(
            "{} {aggregate_id}: still conflicting after {MAX_CONFLICT_RETRIES} attempts",
            A::TYPE
        )))
    }

    /// The read-your-writes token of the last event committed so far (see
    /// `CommandOutcome::position`). Steps commit one after another, so a later step's
    /// transaction id is the larger: the last step's position is the command's.
    fn position_token(&self) -> Option<String> {
        let position = *self.position.lock().expect("run lock");
        position.map(|(xid, global_position)| format!("{xid}.{global_position}"))
    }

    fn advance(&self, to: (u64, i64)) {
        let mut position = self.position.lock().expect("run lock");
        *position = Some(position.map_or(to, |p| p.max(to)));
    }

    fn outcome_so_far(&self) -> CommandOutcome {
        CommandOutcome {
            command_id: self.envelope.command_id,
            status: OutcomeStatus::Committed,
            error: None,
            position: self.position_token(),
            events: self.committed.lock().expect("run lock").clone(),
        }
    }

    /// Appends the events to postgres-es' `events` table (its columns, its primary key
    /// as the optimistic-concurrency check), writes the access state they change
    /// (`access.rs`) and, for the last step, stores the outcome, in one statement: one
    /// round trip and one commit. A conflict leaves nothing behind.
    async fn commit<A: AccessState>(
        &self,
        aggregate_id: &str,
        current_sequence: usize,
        events: &[A::Event],
        after: &A,
        last: bool,
    ) -> Result<bool, sqlx::Error> {
        if events.is_empty() && !last {
            return Ok(true); // nothing to append, nothing changed
        }
        let changed = !events.is_empty();
        let user_access = after.user_access().filter(|_| changed).map(to_json);
        let session_access = after
            .session_access(aggregate_id)
            .filter(|_| changed)
            .map(to_json);
        let mut refs = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        for (offset, event) in events.iter().enumerate() {
            payloads.push(serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(e.into()))?);
            versions.push(event.event_version());
            refs.push(EventRef {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                sequence: (current_sequence + offset + 1) as i64,
                event_type: event.event_type(),
            });
        }
        let mut committed = self.committed.lock().expect("run lock").clone();
        committed.extend(refs.iter().cloned());
        let outcome = CommandOutcome {
            command_id: self.envelope.command_id,
            status: OutcomeStatus::Committed,
            error: None,
            position: self.position_token(),
            events: committed,
        };
        // The position is only known inside the statement: the stored outcome gets this
        // step's (or, when it appended nothing, the earlier steps') from `RETURNING`.
        let (xid, global_position, fresh): (Option<String>, Option<i64>, bool) =
            sqlx::query_as(COMMIT_SQL.as_str())
                .bind(A::TYPE)
                .bind(aggregate_id)
                .bind(refs.iter().map(|r| r.sequence).collect::<Vec<_>>())
                .bind(
                    refs.iter()
                        .map(|r| r.event_type.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(versions)
                .bind(sqlx::types::Json(self.metadata()))
                .bind(payloads)
                .bind(self.envelope.command_id)
                .bind(self.envelope.issued_by)
                .bind(sqlx::types::Json(&outcome))
                .bind(last)
                .bind(user_access.transpose()?)
                .bind(session_access.transpose()?)
                .fetch_one(&self.processor.pool)
                .await?;
        if !fresh {
            return Ok(false);
        }
        if let (Some(xid), Some(global_position)) = (xid, global_position) {
            self.advance((xid.parse().unwrap_or(0), global_position));
        }
        self.committed.lock().expect("run lock").extend(refs);
        Ok(true)
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

    /// When this command already committed events on this aggregate (a crash between
    /// steps, or another delivery of it still running), takes them as this step's and
    /// reports them with the aggregate's state; `None` when it has not.
    async fn adopt_committed<A>(
        &self,
        aggregate_id: &str,
        last: bool,
    ) -> Result<Option<Report>, ProcessError>
    where
        A: AccessState<Services = ()>,
        State: From<A>,
    {
        let committed = self.committed_events(A::TYPE, aggregate_id).await?;
        if committed.is_empty() {
            return Ok(None);
        }
        let events = committed.iter().map(|e| e.event_type.clone()).collect();
        self.committed.lock().expect("run lock").extend(committed);
        if last {
            let outcome = self.outcome_so_far();
            store_outcome(&self.processor.pool, self.envelope, &outcome).await?;
            *self.outcome_stored.lock().expect("run lock") = true;
        }
        let repository = PostgresEventRepository::new(self.processor.pool.clone());
        let store: PersistedEventStore<_, A> = PersistedEventStore::new_event_store(repository);
        let context = store
            .load_aggregate(aggregate_id)
            .await
            .map_err(store_error)?;
        Ok(Some(Report::Applied {
            events,
            state: context.aggregate.into(),
        }))
    }

    async fn committed_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<EventRef>, ProcessError> {
        let command_id = self.envelope.command_id.to_string();
        let written = log::written_by(
            &self.processor.pool,
            &command_id,
            aggregate_type,
            aggregate_id,
        )
        .await?;
        for event in &written {
            self.advance((
                event.position.transaction_id,
                event.position.global_position,
            ));
        }
        Ok(written
            .into_iter()
            .map(|event| EventRef {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                sequence: event.sequence,
                event_type: event.event_type,
            })
            .collect())
    }
}

/// `Run::commit`'s statement: the events, the outcome (last step only, with the position
/// of the last event appended) and the access state, as data-modifying CTEs of one
/// statement; it answers that position. `fresh` writes nothing when this command already
/// has events on this aggregate: two deliveries of one command running at once (the first
/// past its `ack_wait`) either see each other's commit here or collide on the events
/// primary key, so a step is applied once. (A command never runs two steps that both
/// write to one aggregate.)
static COMMIT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH fresh AS (
                 SELECT {fresh} AS ok
             ), appended AS (
                 INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata)
                 SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, $6
                 FROM UNNEST($3::bigint[], $4::text[], $5::text[], $7::jsonb[])
                      AS e(sequence, event_type, event_version, payload)
                 WHERE (SELECT ok FROM fresh)
                 RETURNING transaction_id, global_position
             ), last AS (
                 SELECT max(transaction_id::text) AS xid, max(global_position) AS global_position
                 FROM appended
             ), outcome AS (
                 INSERT INTO command_outcomes (command_id, issued_by, status, outcome)
                 SELECT $8, $9, 'committed',
                        CASE WHEN last.global_position IS NULL THEN $10::jsonb
                             ELSE $10::jsonb || jsonb_build_object('position',
                                     last.xid || '.' || last.global_position) END
                 FROM last WHERE $11 AND (SELECT ok FROM fresh)
                 ON CONFLICT (command_id) DO NOTHING
                 RETURNING 1
             ), {ACCESS_CTES}
             SELECT xid, global_position, (SELECT ok FROM fresh) FROM last",
        fresh = log::no_event_written_by("$8::text", "$1", "$2"),
    )
});

fn to_json<T: serde::Serialize>(value: T) -> Result<serde_json::Value, sqlx::Error> {
    serde_json::to_value(value).map_err(|e| sqlx::Error::Encode(e.into()))
}

fn store_error<E: std::error::Error>(error: AggregateError<E>) -> ProcessError {
    ProcessError::Store(error.to_string())
}

/// The events primary key `(aggregate_type, aggregate_id, sequence)` was taken first.
fn is_conflict(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}
