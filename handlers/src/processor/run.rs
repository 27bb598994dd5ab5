//! One command being executed: its plan's steps (`jukebox_domain::plan`), one aggregate
//! each, in order; a redelivered command's steps that already committed are adopted, not
//! applied again.

use std::sync::Mutex;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate as _, DomainEvent};
use jukebox_domain::plan::{self, AggregateCommand, Issued, Next, Report, State, Step};
use jukebox_domain::{
    AppCredentials, CommandError, EmailClaim, ExternalIdentity, Favourite, Import, LibraryEntry,
    Play, PlayQueueSave, Playlist, Session, Track, User,
};
use jukebox_nats::{log, CommandEnvelope, CommandOutcome, EventRef, OutcomeStatus};
use tracing::{debug_span, info, Instrument};

use super::load::{Load, Loaded, With};
use super::{is_conflict, store_outcome, ProcessError, Processor};
use crate::access::AccessState;

/// Attempts at one aggregate step before an optimistic-concurrency conflict is an error.
const MAX_CONFLICT_RETRIES: u32 = 20;

/// How a run ended.
pub(super) enum Executed {
    /// Every step ran: the plan's result.
    Finished(Result<(), CommandError>),
    /// The command had been answered before (a redelivery): its stored outcome.
    Answered(CommandOutcome),
}

/// What a step did.
// One per step, moved once (as `Report`, which it carries): boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Stepped {
    Done(Report),
    Answered(CommandOutcome),
}

pub(super) struct Run<'a> {
    pub processor: &'a Processor,
    pub envelope: &'a CommandEnvelope,
    pub redelivered: bool,
    /// Events committed by this command so far, in step order.
    pub committed: Mutex<Vec<EventRef>>,
    /// The relay-order key `(transaction_id, global_position)` of the last of them.
    pub position: Mutex<Option<(u64, i64)>>,
    /// Whether a `last` step stored the outcome with its events.
    pub outcome_stored: Mutex<bool>,
}

impl<'a> Run<'a> {
    pub fn new(processor: &'a Processor, envelope: &'a CommandEnvelope, redelivered: bool) -> Self {
        Self {
            processor,
            envelope,
            redelivered,
            committed: Mutex::new(Vec::new()),
            position: Mutex::new(None),
            outcome_stored: Mutex::new(false),
        }
    }

    /// Runs the plan's steps until it finishes. Every step but the last commits its
    /// events alone; the last one commits them together with the outcome, so one
    /// transaction per command in the common case. The first step's load also looks up
    /// the command's stored outcome (one round trip, ADR 22): a plan with no step decides
    /// from the command alone, so answering it again gives the same outcome.
    pub async fn execute(&self) -> Result<Executed, ProcessError> {
        let envelope = self.envelope;
        let issued = Issued {
            by: envelope.issued_by,
            at: envelope.issued_at,
        };
        let mut done = Vec::new();
        loop {
            let first = done.is_empty();
            let stepped = match plan::next(&envelope.command, issued, &done) {
                Next::Finish(result) => return Ok(Executed::Finished(result)),
                Next::Step(Step::ReadUser { user_id }) => {
                    self.read::<User>(&user_id.to_string(), first).await?
                }
                Next::Step(Step::ReadTrack { track_id }) => {
                    self.read::<Track>(track_id.as_str(), first).await?
                }
                Next::Step(Step::Apply {
                    aggregate_id,
                    command,
                    last,
                }) => self.apply_step(&aggregate_id, command, last, first).await?,
            };
            match stepped {
                Stepped::Done(report) => done.push(report),
                Stepped::Answered(outcome) => return Ok(Executed::Answered(outcome)),
            }
        }
    }

    /// Dispatches a step to its aggregate type.
    async fn apply_step(
        &self,
        aggregate_id: &str,
        command: AggregateCommand,
        last: bool,
        first: bool,
    ) -> Result<Stepped, ProcessError> {
        let with = With {
            answered: first.then_some(self.envelope.command_id),
            legacy_library: None,
        };
        match command {
            AggregateCommand::User(c) => self.apply::<User>(aggregate_id, c, last, with).await,
            AggregateCommand::Session(c) => {
                self.apply::<Session>(aggregate_id, c, last, with).await
            }
            // The plan names a claim by its address or identity; it is stored under a
            // keyed hash of it (ADR 43).
            AggregateCommand::EmailClaim(c) => {
                let id = self
                    .processor
                    .claim_ids
                    .id(EmailClaim::TYPE, aggregate_id)
                    .await?;
                self.apply::<EmailClaim>(&id, c, last, with).await
            }
            AggregateCommand::ExternalIdentity(c) => {
                let id = (self.processor.claim_ids)
                    .id(ExternalIdentity::TYPE, aggregate_id)
                    .await?;
                self.apply::<ExternalIdentity>(&id, c, last, with).await
            }
            AggregateCommand::Import(c) => self.apply::<Import>(aggregate_id, c, last, with).await,
            AggregateCommand::Track(c) => self.apply::<Track>(aggregate_id, c, last, with).await,
            AggregateCommand::AppCredentials(c) => {
                self.apply::<AppCredentials>(aggregate_id, c, last, with)
                    .await
            }
            AggregateCommand::Favourite(c) => {
                self.apply::<Favourite>(aggregate_id, c, last, with).await
            }
            AggregateCommand::Play(c) => self.apply::<Play>(aggregate_id, c, last, with).await,
            AggregateCommand::Playlist(c) => {
                self.apply::<Playlist>(aggregate_id, c, last, with).await
            }
            AggregateCommand::PlayQueueSave(c) => {
                self.apply::<PlayQueueSave>(aggregate_id, c, last, with)
                    .await
            }
            AggregateCommand::CollectionImport(c) => {
                self.apply::<jukebox_domain::CollectionImport>(aggregate_id, c, last, with)
                    .await
            }
            AggregateCommand::Subscription(c) => {
                self.apply::<jukebox_domain::Subscription>(aggregate_id, c, last, with)
                    .await
            }
            AggregateCommand::LibraryEntry(c) => {
                // An entry with no events of its own starts from its track's last event
                // in the per-user `Library` of logs written before issue 16 (indexed;
                // none in a log started after it), read with the entry.
                let (user_id, track_id) = c.entry();
                let (user_id, track_id) = (user_id.to_string(), track_id.as_str().to_owned());
                let with = With {
                    legacy_library: Some((&user_id, &track_id)),
                    ..with
                };
                self.apply::<LibraryEntry>(aggregate_id, c, last, with)
                    .await
            }
        }
    }

    /// An aggregate's current state, for a plan that decides on it (admin commands on
    /// the issuer, a completion on its track).
    async fn read<A>(&self, aggregate_id: &str, first: bool) -> Result<Stepped, ProcessError>
    where
        A: AccessState<Services = ()>,
        State: From<A>,
    {
        let with = With {
            answered: first.then_some(self.envelope.command_id),
            legacy_library: None,
        };
        match self.processor.load::<A>(aggregate_id, with).await? {
            Load::Answered(outcome) => Ok(Stepped::Answered(outcome)),
            Load::Loaded(loaded) => Ok(Stepped::Done(Report::Applied {
                events: Vec::new(),
                state: loaded.aggregate.into(),
            })),
        }
    }

    /// The outcome of a command whose steps all committed.
    pub fn outcome(self) -> CommandOutcome {
        CommandOutcome {
            command_id: self.envelope.command_id,
            status: OutcomeStatus::Committed,
            error: None,
            position: self.position_token(),
            events: self.committed.into_inner().expect("run lock"),
        }
    }

    /// Loads the aggregate (with what `with` asks for), handles the command and commits;
    /// reports the events and the state after the step.
    async fn apply<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        last: bool,
        with: With<'_>,
    ) -> Result<Stepped, ProcessError>
    where
        A: AccessState<Services = ()>,
        A::Command: Clone,
        CommandError: From<A::Error>,
        State: From<A>,
    {
        let mut loaded = match self.processor.load::<A>(aggregate_id, with).await? {
            Load::Answered(outcome) => return Ok(Stepped::Answered(outcome)),
            Load::Loaded(loaded) => Some(loaded),
        };
        if self.redelivered {
            // A crash between two steps: this one may have committed already.
            if let Some(report) = self.adopt_committed::<A>(aggregate_id, last).await? {
                info!(
                    aggregate = A::TYPE,
                    aggregate_id, "already committed before a restart"
                );
                return Ok(Stepped::Done(report));
            }
        }
        let reload = With {
            answered: None,
            ..with
        };
        for attempt in 1..=MAX_CONFLICT_RETRIES {
            let Loaded {
                aggregate,
                sequence,
            } = match loaded.take() {
                Some(loaded) => loaded,
                None => match self.processor.load::<A>(aggregate_id, reload).await? {
                    Load::Loaded(loaded) => loaded,
                    Load::Answered(outcome) => return Ok(Stepped::Answered(outcome)),
                },
            };
            let mut after = aggregate;
            let sink = EventSink::default();
            let refused = after.handle(command.clone(), &(), &sink).await.err();
            // `handle` applied its events as it wrote them: `after` is the state after.
            let events: Vec<A::Event> = sink.collect().await;
            if refused.is_some() || events.is_empty() {
                // A step that decides nothing may be one another delivery of this very
                // command took (a redelivery past `ack_wait` running beside this one,
                // ahead of it): take its events, so the outcome lists every step's.
                // Deciding alone would answer "already there" and leave them out.
                if let Some(report) = self.adopt_committed::<A>(aggregate_id, last).await? {
                    return Ok(Stepped::Done(report));
                }
            }
            if let Some(rejection) = refused {
                return Ok(Stepped::Done(Report::Rejected(rejection.into())));
            }
            match self
                .commit::<A>(aggregate_id, sequence, &events, &after, last)
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
                    return Ok(Stepped::Done(Report::Applied {
                        events: events.iter().map(DomainEvent::event_type).collect(),
                        state: after.into(),
                    }));
                }
                Ok(false) => {
                    // Another copy of this command (a redelivery past `ack_wait` while
                    // this one still ran) committed this step: take its events, once.
                    info!(
                        aggregate = A::TYPE,
                        aggregate_id, "already committed by another delivery"
                    );
                    if let Some(report) = self.adopt_committed::<A>(aggregate_id, last).await? {
                        return Ok(Stepped::Done(report));
                    }
                    return Err(ProcessError::Store(format!(
                        "{} {aggregate_id}: committed by another delivery, but no events found",
                        A::TYPE
                    )));
                }
                Err(error) if is_conflict(&error) => {
                    // Another command committed first: reload and decide again.
                    self.processor.metrics.conflict_retried();
                    let backoff =
                        Duration::from_millis(u64::from(attempt) * 2 + rand::random::<u64>() % 5);
                    tokio::time::sleep(backoff).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.processor.metrics.conflicts_exhausted();
        Err(ProcessError::Store(format!(
            "{} {aggregate_id}: still conflicting after {MAX_CONFLICT_RETRIES} attempts",
            A::TYPE
        )))
    }

    /// The read-your-writes token of the last event committed so far (see
    /// `CommandOutcome::position`). Steps commit one after another, so a later step's
    /// transaction id is the larger: the last step's position is the command's.
    pub fn position_token(&self) -> Option<String> {
        let position = *self.position.lock().expect("run lock");
        position.map(|(xid, global_position)| format!("{xid}.{global_position}"))
    }

    pub(super) fn advance(&self, to: (u64, i64)) {
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
        let mut committed = self
            .committed_events(A::TYPE, aggregate_id)
            .instrument(debug_span!("processor.adopt", aggregate = A::TYPE))
            .await?;
        // Events this run already counts (an earlier step of its plan on the same
        // aggregate) are not taken twice.
        {
            let counted = self.committed.lock().expect("run lock");
            committed.retain(|event| !counted.contains(event));
        }
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
        let loaded = self.processor.load_state::<A>(aggregate_id).await?;
        Ok(Some(Report::Applied {
            events,
            state: loaded.aggregate.into(),
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
