//! The commands a job issues, each with an id derived from the job, so a retried attempt
//! sends the same command again and the processor applies it once; and the state they
//! are decided on.

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, EventStore};
use jukebox_domain::{Command, ErrorCode, Import, StoredTrack, Track, TrackId};
use jukebox_nats::{CommandBus, CommandEnvelope, OutcomeStatus};
use postgres_es::PostgresEventRepository;
use uuid::Uuid;

use super::job::{Job, JobError};
use super::Downloader;

impl Downloader {
    /// Sends a command for the job with a command id derived from the job and `what`, so a
    /// retried attempt is the same command. `Ok(Err(code))` is a rejection.
    pub(super) async fn command(
        &self,
        bus: &CommandBus,
        job: &Job,
        what: &str,
        command: Command,
    ) -> Result<Result<(), Option<ErrorCode>>, JobError> {
        let envelope = CommandEnvelope {
            command_id: Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("jukebox:import:{}:{what}", job.job_id).as_bytes(),
            ),
            correlation_id: job.correlation_id,
            issued_by: None,
            issued_at: time::OffsetDateTime::now_utc(),
            command,
        };
        let outcome = bus
            .send(&envelope, self.command_wait)
            .await
            .map_err(|e| JobError::Transient(e.to_string()))?;
        let outcome = match outcome {
            Some(outcome) => outcome,
            None => self
                .stored_outcome(envelope.command_id)
                .await?
                .ok_or_else(|| {
                    JobError::Transient(format!("no answer to the {what} command in time"))
                })?,
        };
        Ok(match outcome.status {
            OutcomeStatus::Committed => Ok(()),
            OutcomeStatus::Rejected => Err(outcome.error.map(|e| e.code)),
        })
    }

    pub(super) async fn stored_outcome(
        &self,
        command_id: Uuid,
    ) -> Result<Option<jukebox_nats::CommandOutcome>, JobError> {
        let row: Option<(sqlx::types::Json<jukebox_nats::CommandOutcome>,)> =
            sqlx::query_as("SELECT outcome FROM command_outcomes WHERE command_id = $1")
                .bind(command_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(outcome,)| outcome.0))
    }

    /// Whether the job has ended (`ImportCompleted` or `ImportFailed`).
    pub(super) async fn finished(&self, job_id: Uuid) -> Result<bool, JobError> {
        let repository = PostgresEventRepository::new(self.pool.clone());
        let store: PersistedEventStore<_, Import> =
            PersistedEventStore::new_event_store(repository);
        let mut context = store
            .load_aggregate(&job_id.to_string())
            .await
            .map_err(|e| JobError::Transient(format!("loading job {job_id}: {e}")))?;
        Ok(context.aggregate().is_finished())
    }

    /// The Track aggregate's stored state.
    pub(super) async fn stored(&self, track_id: &TrackId) -> Result<Option<StoredTrack>, JobError> {
        let repository = PostgresEventRepository::new(self.pool.clone());
        let store: PersistedEventStore<_, Track> = PersistedEventStore::new_event_store(repository);
        let mut context = store
            .load_aggregate(track_id.as_str())
            .await
            .map_err(|e| JobError::Transient(format!("loading track {track_id}: {e}")))?;
        Ok(context.aggregate().stored().cloned())
    }
}
