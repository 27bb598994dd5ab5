//! The live projector (ADR 39): one durable consumer on `EVENTS` feeds a group of read
//! models. Each batch is read off the bus and decoded once, then handed to every model of
//! the group at once; each model keeps its own checkpoint, transaction, gap check and
//! skip rule, so a model is exactly as it was with a consumer of its own, but an event
//! is delivered and acknowledged once per group instead of once per model.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::future::join_all;
use jukebox_nats::{
    BatchError, BatchHandler, ConsumerRuntime, EventRecord, FailPointFired, FailPoints, Topology,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::freshness::AppliedNotifier;
use crate::runtime::{apply_batch, refeed_from_log, takes, Projection};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The group of every read model (`crate::every_model`).
pub const EVERY_MODEL: &str = "all";

/// The models that had a consumer each before ADR 39 (`proj-<model>`); models added
/// since never had one.
const RETIRED_CONSUMERS: &[&str] = &[
    "admin_users",
    "accounts",
    "auth_sessions",
    "jobs",
    "tracks",
    "library",
    "music",
    "favourites",
    "plays",
    "playlists",
    "playlist_entries",
    "play_queues",
    "subscriptions",
];

/// Read models fed by one consumer, named `proj-<name>` on `EVENTS`.
pub struct ProjectorGroup {
    name: String,
    members: Vec<(&'static str, NewMember)>,
}

type NewMember = fn(PgPool, FailPoints, AppliedNotifier) -> Box<dyn Member>;

impl ProjectorGroup {
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            members: Vec::new(),
        }
    }

    /// A group of one model, on the consumer `proj-<model>`.
    pub fn of<P: Projection>() -> Self {
        Self::named(P::NAME).with::<P>()
    }

    pub fn with<P: Projection>(mut self) -> Self {
        self.members.push((P::NAME, |pool, fail_points, applied| {
            Box::new(Batches::<P> {
                pool,
                fail_points,
                applied,
                checkpoint_stored: Mutex::new(Instant::now()),
                last_sequence: Mutex::new(None),
                projection: PhantomData,
            })
        }));
        self
    }

    /// The models' names, in the order they were added.
    pub fn models(&self) -> Vec<&'static str> {
        self.members.iter().map(|(name, _)| *name).collect()
    }
}

#[derive(Clone)]
pub struct ProjectionRunner {
    pool: PgPool,
    client: async_nats::Client,
    topology: Topology,
    pub batch_size: usize,
    pub ack_wait: Duration,
    pub fail_points: FailPoints,
    /// Shared with the process' other consumers (`/metrics`).
    pub redeliveries: jukebox_nats::Redeliveries,
}

impl ProjectionRunner {
    pub fn new(pool: PgPool, client: async_nats::Client, topology: Topology) -> Self {
        Self {
            pool,
            client,
            topology,
            batch_size: 1_000,
            ack_wait: Duration::from_secs(30),
            fail_points: FailPoints::default(),
            redeliveries: jukebox_nats::Redeliveries::default(),
        }
    }

    /// Consumes `EVENTS` into projection `P` alone until `shutdown`.
    pub async fn run<P: Projection>(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.run_group(ProjectorGroup::of::<P>(), shutdown).await
    }

    /// Consumes `EVENTS` into every model of `group` until `shutdown`.
    pub async fn run_group(
        self,
        group: ProjectorGroup,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let js = jetstream::new(self.client.clone());
        if group.name == EVERY_MODEL {
            self.topology
                .retire_projection_consumers(&js, RETIRED_CONSUMERS)
                .await;
        }
        let consumer = self
            .topology
            .projection_consumer(&js, &group.name, self.ack_wait)
            .await?;
        // Readers waiting for a position are woken after each commit.
        let applied = AppliedNotifier::default();
        let notifier_stop = shutdown.child_token();
        tokio::spawn(
            applied
                .clone()
                .run(self.pool.clone(), notifier_stop.clone()),
        );
        let _stop_notifier = notifier_stop.drop_guard();
        let members: Vec<Box<dyn Member>> = group
            .members
            .iter()
            .map(|(_, new)| new(self.pool.clone(), self.fail_points.clone(), applied.clone()))
            .collect();
        // A bus that holds nothing (everything older than EVENTS' max_age) delivers no
        // batch to find a gap with: what the relay published and a model has not
        // applied is then only in the log.
        let events = js
            .get_stream(self.topology.namespace.events_stream())
            .await?
            .get_info()
            .await?;
        if events.state.messages == 0 {
            let relayed = crate::status::relayed(&self.pool).await?;
            for member in &members {
                member.refeed(Bound::Included(relayed)).await?;
            }
        }
        info!(group = %group.name, models = ?group.models(), "projector started");
        let handler = Group {
            members,
            pool: self.pool.clone(),
            fail_points: self.fail_points.clone(),
            applied,
        };
        ConsumerRuntime::new("projector", &format!("proj-{}", group.name))
            .with(&self.fail_points, &self.redeliveries)
            .batches(&consumer, self.batch_size, &shutdown, &handler)
            .await?;
        info!(group = %group.name, "projector stopped");
        Ok(())
    }
}

/// One model's side of the group, its type erased so that a group holds several.
trait Member: Send + Sync {
    fn name(&self) -> &'static str;
    fn refeed(&self, until: Bound<crate::Position>) -> Boxed<'_, anyhow::Result<()>>;
    fn apply<'a>(
        &'a self,
        messages: &'a [jetstream::Message],
        events: &'a [EventRecord],
    ) -> Boxed<'a, Result<Handled, BatchError>>;
    /// The batch ending with `messages` is applied (its checkpoint was moved for it).
    fn applied_through(&self, messages: &[jetstream::Message]);
}

/// What a model did with a batch.
enum Handled {
    /// Applied with its checkpoint in its own transaction, or left for later.
    Done,
    /// Nothing in it is this model's: its checkpoint is to move to the batch's end, in
    /// one statement with the other such models' (ADR 51).
    MoveCheckpoint,
}

/// The group's handler: decodes a batch once and hands it to every model at once. The
/// batch is acked when all succeeded; otherwise it comes again, and the models that
/// applied it skip it by their checkpoints.
struct Group {
    members: Vec<Box<dyn Member>>,
    pool: PgPool,
    fail_points: FailPoints,
    applied: AppliedNotifier,
}

impl BatchHandler for Group {
    async fn apply(&self, messages: &[jetstream::Message]) -> Result<(), BatchError> {
        let events: Vec<EventRecord> = messages
            .iter()
            .filter_map(|m| match serde_json::from_slice(&m.payload) {
                Ok(event) => Some(event),
                Err(error) => {
                    warn!(%error, subject = %m.subject, "unreadable event skipped");
                    None
                }
            })
            .collect();
        let outcomes = join_all(self.members.iter().map(|m| m.apply(messages, &events))).await;
        // A fail point that fired is a crash: it wins over a retry.
        let mut retry = None;
        let mut moving = Vec::new();
        for (member, outcome) in self.members.iter().zip(outcomes) {
            match outcome {
                Ok(Handled::Done) => {}
                Ok(Handled::MoveCheckpoint) => moving.push(member.as_ref()),
                Err(BatchError::FailPoint(fired)) => return Err(BatchError::FailPoint(fired)),
                Err(BatchError::Retry(error)) => retry = retry.or(Some(error)),
            }
        }
        if let Some(error) = retry {
            return Err(BatchError::Retry(error));
        }
        self.move_checkpoints(messages, &events, &moving).await
    }
}

impl Group {
    /// Moves the checkpoints of the models that had nothing in the batch to its last
    /// event, all in one statement: a model's checkpoint-only transaction cost four round
    /// trips, and under load most models have nothing in most batches.
    async fn move_checkpoints(
        &self,
        messages: &[jetstream::Message],
        events: &[EventRecord],
        moving: &[&dyn Member],
    ) -> Result<(), BatchError> {
        if moving.is_empty() {
            return Ok(());
        }
        // A batch of unreadable messages only has nothing to move to.
        if let Some(last) = events.iter().map(crate::Position::of).max() {
            self.fail_points
                .check("projector.mid_batch")
                .map_err(BatchError::FailPoint)?;
            let names: Vec<&str> = moving.iter().map(|m| m.name()).collect();
            let moved = crate::position::advance_checkpoints(&self.pool, &names, last)
                .await
                .map_err(|error| {
                    BatchError::Retry(
                        anyhow::Error::new(error)
                            .context(format!("moving the checkpoints of {}", names.join(", "))),
                    )
                })?;
            if moved > 0 {
                self.applied.wake();
            }
        }
        moving.iter().for_each(|m| m.applied_through(messages));
        Ok(())
    }
}

/// How long a projector may leave its checkpoint behind events that are not its model's.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A model's handling of the group's batches: applies a batch to projection `P` with its
/// checkpoint.
struct Batches<P> {
    pool: PgPool,
    fail_points: FailPoints,
    applied: AppliedNotifier,
    /// When the checkpoint was last written.
    checkpoint_stored: Mutex<Instant>,
    /// The stream sequence of the last message applied in this run: a batch that does
    /// not follow it (the first one, or one after messages `EVENTS` dropped) is checked
    /// against the log first.
    last_sequence: Mutex<Option<u64>>,
    projection: PhantomData<fn() -> P>,
}

impl<P: Projection> Batches<P> {
    /// Re-feeds from the log what the bus skipped before `messages`, if anything.
    async fn fill_gap(
        &self,
        messages: &[jetstream::Message],
        events: &[EventRecord],
    ) -> anyhow::Result<()> {
        let first = messages
            .first()
            .and_then(|m| m.info().ok())
            .map(|i| i.stream_sequence);
        let follows = {
            let last = self.last_sequence.lock().expect("sequence lock");
            matches!((*last, first), (Some(last), Some(first)) if first == last + 1)
        };
        if !follows {
            if let Some(next) = events.iter().map(crate::Position::of).min() {
                self.refeed_until(Bound::Excluded(next)).await?;
            }
        }
        Ok(())
    }

    async fn refeed_until(&self, until: Bound<crate::Position>) -> anyhow::Result<()> {
        let refed = refeed_from_log::<P>(&self.pool, until).await?;
        if refed > 0 {
            info!(projection = P::NAME, events = refed, "re-fed from the log");
            self.applied.wake();
        }
        Ok(())
    }

    fn applied_through(&self, messages: &[jetstream::Message]) {
        if let Some(info) = messages.last().and_then(|m| m.info().ok()) {
            *self.last_sequence.lock().expect("sequence lock") = Some(info.stream_sequence);
        }
    }

    async fn apply_batch(
        &self,
        messages: &[jetstream::Message],
        events: &[EventRecord],
    ) -> Result<Handled, BatchError> {
        // A batch with nothing for this model only moves its checkpoint, and that can
        // wait: skipping it saves most of a model's work under load, when most events
        // are other models'. The checkpoint still follows within `CHECKPOINT_EVERY`, and
        // at once when the batch reaches the stream's end, so lag figures stay true and
        // an idle model is never left behind; it moves with the other such models' in
        // one statement (`Group::move_checkpoints`).
        let at_end = messages
            .last()
            .and_then(|m| m.info().ok())
            .is_none_or(|info| info.pending == 0);
        let consumed = events.iter().any(takes::<P>);
        if let Err(error) = self.fill_gap(messages, events).await {
            return Err(BatchError::Retry(error.context(format!(
                "re-feeding projection {} from the log",
                P::NAME
            ))));
        }
        {
            let mut stored = self.checkpoint_stored.lock().expect("checkpoint lock");
            if !at_end && !consumed && stored.elapsed() < CHECKPOINT_EVERY {
                drop(stored);
                self.applied_through(messages);
                return Ok(Handled::Done);
            }
            *stored = Instant::now();
        }
        if !consumed {
            return Ok(Handled::MoveCheckpoint);
        }
        match apply_batch::<P>(&self.pool, events, &self.fail_points).await {
            Ok(applied_now) => {
                if applied_now > 0 {
                    self.applied.wake();
                }
                self.applied_through(messages);
                Ok(Handled::Done)
            }
            Err(error) => match error.downcast::<FailPointFired>() {
                Ok(fired) => Err(BatchError::FailPoint(fired)),
                Err(error) => Err(BatchError::Retry(
                    error.context(format!("projection {}", P::NAME)),
                )),
            },
        }
    }
}

impl<P: Projection> Member for Batches<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn refeed(&self, until: Bound<crate::Position>) -> Boxed<'_, anyhow::Result<()>> {
        Box::pin(self.refeed_until(until))
    }

    fn apply<'a>(
        &'a self,
        messages: &'a [jetstream::Message],
        events: &'a [EventRecord],
    ) -> Boxed<'a, Result<Handled, BatchError>> {
        Box::pin(self.apply_batch(messages, events))
    }

    fn applied_through(&self, messages: &[jetstream::Message]) {
        Batches::applied_through(self, messages);
    }
}
