//! The downloader role: a durable pull consumer on `evt.import.*.ImportRequested`.
//!
//! Per job: a source already stored completes the job at once, without yt-dlp (a URL is
//! recognised by `SourceRef::stored_candidate`), holding the source's lock shared until
//! it did; a completion refused because the track was discarded meanwhile (ADR 42)
//! stores the source again. Otherwise the job takes the source's lock (one download per
//! source, across every downloader process), runs the media pipeline (yt-dlp + ffmpeg),
//! puts the `.m4a` under the track's key, and then issues `StoreTrack` and
//! `CompleteImport` (which adds the track to the requester's library) before releasing
//! the lock. Jobs that asked for the same source while it was downloading wait for the
//! lock and then find the track stored.
//!
//! While a job runs the message gets progress acks, and live progress goes out on core
//! NATS `progress.import.<job_id>`; stage changes are commands, hence events. Permanent
//! failures end the job at once with `ImportFailed`; transient ones are retried with
//! backoff (nak with a delay) until `max_deliver`, then end as `ImportFailed`.
//!
//! No database transaction is open while yt-dlp or ffmpeg run: the source lock is a
//! session-level advisory lock on a connection of its own, outside any transaction,
//! and a killed downloader's connection closes, which releases it.

mod commands;
mod fair;
mod job;
mod keys;
mod progress;
pub mod source_lock;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use jukebox_domain::{Command, ErrorCode, ImportStage, SourceRef, StoredCover, TrackId};
use jukebox_nats::{
    CommandBus, ConsumerRuntime, FailPointFired, FailPoints, InHand, MessageHandler, Settle,
    Topology,
};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};
use uuid::Uuid;

use self::job::{read_job, stored_track, Job, JobError};
use self::source_lock::SourceLock;
use crate::media::{self, MediaError, Pipeline, PreparedTrack, Progress, SourceInfo};
use crate::metrics::{DownloaderMetrics, JobOutcome};
use crate::storage::{ObjectKey, ObjectStore, StoreError};

/// Whether `CompleteImport` completed the job (or found it completed).
enum Completed {
    Yes,
    /// Refused: the track is no longer stored.
    No,
}

/// The durable consumer's name (see `Topology::downloader_consumer`).
const CONSUMER: &str = "downloader";

#[derive(Clone)]
pub struct Downloader {
    pool: PgPool,
    client: async_nats::Client,
    topology: Topology,
    pipeline: Pipeline,
    store: Arc<dyn ObjectStore>,
    /// Jobs running at once (`DOWNLOAD_CONCURRENCY`).
    pub slots: usize,
    /// Jobs held at once, running or waiting their user's turn (ADR 36): fairness between
    /// users reaches this far into the queue.
    pub lookahead: usize,
    /// Deliveries of one job before a transient failure is final.
    pub max_deliver: i64,
    /// First retry delay; doubled on each further attempt, at most 5 minutes.
    pub retry_base: Duration,
    pub ack_wait: Duration,
    /// How long to wait for a command's outcome.
    pub command_wait: Duration,
    pub fail_points: FailPoints,
    pub metrics: DownloaderMetrics,
    /// Shared with the process' other consumers (`/metrics`).
    pub redeliveries: jukebox_nats::Redeliveries,
}

/// The consumer's handler: the downloader and its command bus.
struct Jobs<'a> {
    downloader: &'a Downloader,
    bus: CommandBus,
    /// Which held job runs next: round-robin between users.
    slots: fair::FairSlots,
}

impl MessageHandler for Jobs<'_> {
    async fn handle(&self, message: &jetstream::Message) -> Result<Settle, FailPointFired> {
        let Some(job) = read_job(message) else {
            error!(subject = %message.subject, "unreadable ImportRequested, terminating it");
            return Ok(Settle::Term);
        };
        let span = info_span!("import", job_id = %job.job_id, attempt = job.attempt);
        let _slot = self
            .downloader
            .wait_turn(&self.slots, message, job.user_id)
            .await;
        self.downloader
            .settle(&self.bus, message, &job)
            .instrument(span)
            .await
    }
}

impl Downloader {
    pub fn new(
        pool: PgPool,
        client: async_nats::Client,
        topology: Topology,
        pipeline: Pipeline,
        store: Arc<dyn ObjectStore>,
    ) -> Self {
        Self {
            pool,
            client,
            topology,
            pipeline,
            store,
            slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
            lookahead: 256,
            max_deliver: 5,
            retry_base: Duration::from_secs(5),
            ack_wait: Duration::from_secs(30),
            command_wait: Duration::from_secs(10),
            fail_points: FailPoints::default(),
            metrics: DownloaderMetrics::default(),
            redeliveries: jukebox_nats::Redeliveries::default(),
        }
    }

    /// Jobs held at once: at least the slots.
    fn held(&self) -> usize {
        self.lookahead.max(self.slots)
    }

    /// Waits for this user's turn at a slot, keeping the message (progress acks) meanwhile.
    async fn wait_turn<'s>(
        &self,
        slots: &'s fair::FairSlots,
        message: &jetstream::Message,
        user_id: Uuid,
    ) -> fair::Slot<'s> {
        let take = slots.take(user_id);
        tokio::pin!(take);
        let mut ticker = tokio::time::interval((self.ack_wait / 3).max(Duration::from_millis(100)));
        ticker.tick().await;
        loop {
            tokio::select! {
                slot = &mut take => return slot,
                _ = ticker.tick() => {
                    let _ = message.ack_with(jetstream::AckKind::Progress).await;
                }
            }
        }
    }

    /// Runs until `shutdown` (jobs in hand are dropped unacked and come back later) or a
    /// fail point fires (the role "dies").
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if let Some(work) = &self.pipeline.config().work_dir {
            // Folders of a previous process that was killed.
            let _ = media::JobDir::sweep(work, Duration::from_secs(3600));
        }
        let js = jetstream::new(self.client.clone());
        let consumer = self
            .topology
            // Two deliveries beyond the last attempt, so that attempt's ImportFailed can
            // still get through a passing bus or database outage.
            .downloader_consumer(&js, self.held(), self.ack_wait, self.max_deliver + 2)
            .await?;
        let bus = CommandBus::start(self.client.clone(), self.topology.namespace.clone()).await?;
        info!(slots = self.slots, "downloader started");
        let jobs = Jobs {
            downloader: &self,
            bus,
            slots: fair::FairSlots::new(self.slots),
        };
        ConsumerRuntime::new("downloader", CONSUMER)
            .with(&self.fail_points, &self.redeliveries)
            .each(&consumer, self.held(), InHand::Abandon, &shutdown, &jobs)
            .await?;
        info!("downloader stopped");
        Ok(())
    }

    /// Runs a job's attempt and says how its message ends: acked when the job ended
    /// (completed, or failed for good), else retried with backoff.
    async fn settle(
        &self,
        bus: &CommandBus,
        message: &jetstream::Message,
        job: &Job,
    ) -> Result<Settle, FailPointFired> {
        // Redelivered after it ended (the ack was lost): nothing to do again.
        if let Ok(true) = self.finished(job.job_id).await {
            return Ok(Settle::Ack);
        }
        let in_flight = self.metrics.in_flight();
        let result = self.attempt(bus, message, job).await;
        drop(in_flight);
        let settled = match result {
            Ok(()) => {
                self.metrics.job(JobOutcome::Succeeded);
                Ok(())
            }
            Err(JobError::FailPoint(fired)) => return Err(fired),
            Err(error) if error.is_permanent() || job.attempt >= self.max_deliver => {
                self.fail(bus, job, &error).await
            }
            Err(error) => Err(error),
        };
        let Err(error) = settled else {
            return Ok(Settle::Ack);
        };
        self.metrics.job(JobOutcome::Retried);
        let delay = self.retry_delay(job.attempt);
        warn!(%error, retry_in = ?delay, "import attempt failed, retrying");
        // The web app shows "retrying (attempt 2 of 5, next in 10 s)".
        self.progress(
            job,
            json!({
                "status": "retrying",
                "attempt": job.attempt + 1,
                "max_attempts": self.max_deliver,
                "next_in_s": delay.as_secs(),
                "code": error.code(),
            }),
        )
        .await;
        Ok(Settle::Retry(delay))
    }

    /// Ends the job as `ImportFailed` (a permanent error, or out of attempts).
    async fn fail(&self, bus: &CommandBus, job: &Job, error: &JobError) -> Result<(), JobError> {
        warn!(%error, "import failed");
        let reason = if error.is_permanent() {
            error.reason()
        } else {
            format!(
                "{} (gave up after {} attempts)",
                error.reason(),
                job.attempt
            )
        };
        let fail = Command::FailImport {
            job_id: job.job_id,
            code: error.code().to_owned(),
            reason: reason.clone(),
        };
        // A rejection means the job has ended already: nothing left to do either.
        let _ = self.command(bus, job, "fail", fail).await?;
        self.metrics.job(JobOutcome::Failed);
        self.progress(job, json!({"status": "failed", "error": reason}))
            .await;
        if let SourceRef::Upload { object_key, .. } = &job.source {
            self.remove_upload(object_key).await;
        }
        Ok(())
    }

    fn retry_delay(&self, attempt: i64) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 10)).unwrap_or(10);
        (self.retry_base * 2u32.pow(exponent)).min(Duration::from_secs(300))
    }

    /// The job itself: stored already? else lock the source, download, transcode, store.
    /// A completion refused because the track was discarded meanwhile (ADR 42: its
    /// objects are gone) runs once more, storing the source again under new command ids.
    async fn work(
        &self,
        bus: &CommandBus,
        job: &Job,
        progress: mpsc::UnboundedSender<Progress>,
        stage: mpsc::UnboundedSender<ImportStage>,
    ) -> Result<(), JobError> {
        for round in ["", ":again"] {
            if let Completed::Yes = self.round(bus, job, &progress, &stage, round).await? {
                return Ok(());
            }
            warn!("the track was discarded before the job completed; storing it again");
        }
        Err(JobError::Transient(
            "the track was discarded twice while importing it".into(),
        ))
    }

    /// One round of `work`; `round` suffixes its command ids.
    async fn round(
        &self,
        bus: &CommandBus,
        job: &Job,
        progress: &mpsc::UnboundedSender<Progress>,
        stage: &mpsc::UnboundedSender<ImportStage>,
        round: &str,
    ) -> Result<Completed, JobError> {
        // A source stored before completes without running any media tool: a video or an
        // upload by its id, a URL by the id it would resolve to (YouTube and direct links).
        // A shared hold on the source's lock keeps a discard (ADR 42) from landing
        // between finding it stored and completing; such completions do not wait on each
        // other.
        if let Some(candidate) = job.source.stored_candidate() {
            if self.stored(&candidate).await?.is_some() {
                let lock = SourceLock::acquire_shared(&self.pool, &candidate).await?;
                let completed = self.complete(bus, job, &candidate, round).await;
                lock.release().await;
                return completed;
            }
        }
        let already = job.source.known_track_id();
        // Resolving (yt-dlp -J) happens while the job shows `requested`: `downloading`
        // is reserved for the one job that fetches the source.
        let resolved: Option<SourceInfo> = match job.source.fetch_url() {
            Some(url) if already.is_none() => Some(self.pipeline.resolve(&url).await?),
            _ => None,
        };
        let track_id = match (&already, &resolved) {
            (Some(track_id), _) => track_id.clone(),
            (None, Some(info)) => {
                TrackId::parse(&info.source_id()).map_err(|e| MediaError::UnsupportedUrl {
                    reason: e.to_string(),
                })?
            }
            (None, None) => unreachable!("a source without a known id has a URL"),
        };
        let lock = SourceLock::acquire(&self.pool, &track_id, || {
            let _ = stage.send(ImportStage::Waiting);
        })
        .await?;
        // Held until the job completed, so no discard comes between.
        let result = self
            .store_and_complete(bus, job, &track_id, progress, stage, round, resolved)
            .await;
        lock.release().await;
        result
    }

    /// Under the source's lock: download, transcode, store unless stored, and complete.
    // The job's channels and round, passed through from `work`.
    #[allow(clippy::too_many_arguments)]
    async fn store_and_complete(
        &self,
        bus: &CommandBus,
        job: &Job,
        track_id: &TrackId,
        progress: &mpsc::UnboundedSender<Progress>,
        stage: &mpsc::UnboundedSender<ImportStage>,
        round: &str,
        resolved: Option<SourceInfo>,
    ) -> Result<Completed, JobError> {
        if self.stored(track_id).await?.is_some() {
            return self.complete(bus, job, track_id, round).await;
        }
        let _ = stage.send(ImportStage::Downloading);
        let mut report = |p: Progress| {
            let _ = progress.send(p);
        };
        let prepared = match (&job.source, resolved) {
            (SourceRef::Upload { object_key, .. }, _) => {
                self.import_upload(object_key, &mut report).await?
            }
            (_, Some(info)) => self.pipeline.import_resolved(info, &mut report).await?,
            (source, None) => {
                let url = source.fetch_url().expect("not an upload");
                self.pipeline.import_url(&url, &mut report).await?
            }
        };
        let _ = stage.send(ImportStage::Storing);
        // Let the stage command go out before the (possibly long) upload.
        tokio::task::yield_now().await;
        let key = Self::object_key(track_id);
        // The cover first: once `TrackStored` names it, it is there to serve.
        let cover = match &prepared.cover {
            Some(image) => {
                let cover_key = Self::cover_key(track_id);
                let stored = self.store.put_file(&cover_key, image).await?;
                Some(StoredCover {
                    content_type: cover_key.content_type().to_owned(),
                    object_key: cover_key.to_string(),
                    size: stored.size,
                })
            }
            None => None,
        };
        let stored = self.store.put_file(&key, &prepared.path).await?;
        let track = stored_track(track_id, &key, stored.size, &prepared, &job.source, cover);
        drop(prepared);
        match self
            .command(
                bus,
                job,
                &format!("store{round}"),
                Command::StoreTrack { track },
            )
            .await?
        {
            Ok(()) => {}
            Err(Some(ErrorCode::TrackStored)) => {}
            Err(code) => {
                return Err(JobError::Transient(format!(
                    "StoreTrack rejected: {code:?}"
                )))
            }
        }
        self.complete(bus, job, track_id, round).await
    }

    /// Adds the track to the requester's library and completes the job; `No` when the
    /// track is no longer stored (discarded since it was found stored).
    async fn complete(
        &self,
        bus: &CommandBus,
        job: &Job,
        track_id: &TrackId,
        round: &str,
    ) -> Result<Completed, JobError> {
        let complete = Command::CompleteImport {
            job_id: job.job_id,
            user_id: job.user_id,
            track_id: track_id.clone(),
        };
        match self
            .command(bus, job, &format!("complete{round}"), complete)
            .await?
        {
            Ok(()) => {}
            Err(Some(ErrorCode::JobFinished)) => {}
            Err(Some(ErrorCode::TrackNotStored)) => return Ok(Completed::No),
            Err(code) => {
                return Err(JobError::Transient(format!(
                    "CompleteImport rejected: {code:?}"
                )))
            }
        }
        self.progress(
            job,
            json!({"status": "completed", "percent": 100, "track_id": track_id}),
        )
        .await;
        if let SourceRef::Upload { object_key, .. } = &job.source {
            self.remove_upload(object_key).await;
        }
        info!(%track_id, "import completed");
        Ok(Completed::Yes)
    }

    async fn remove_upload(&self, key: &str) {
        if let Ok(key) = ObjectKey::parse(key) {
            if let Err(error) = self.store.delete(&key).await {
                warn!(%error, "could not remove an upload; it stays until removed by hand");
            }
        }
    }

    /// The uploaded file, fetched from the store into a job folder, through the pipeline.
    async fn import_upload(
        &self,
        object_key: &str,
        report: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PreparedTrack, JobError> {
        let key = ObjectKey::parse(object_key)?;
        let dir = media::JobDir::new(self.pipeline.config().work_dir.as_deref())?;
        let path = dir.path().join("upload");
        let body = match self.store.get(&key, None).await {
            Ok(body) => body,
            Err(StoreError::NotFound(_)) => {
                return Err(MediaError::Unavailable {
                    reason: "the uploaded file is gone".into(),
                }
                .into())
            }
            Err(error) => return Err(error.into()),
        };
        self.pipeline.config().limits.check_size(body.total_size)?;
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| JobError::Transient(format!("writing the upload: {e}")))?;
        let mut reader = tokio_util::io::StreamReader::new(body.stream);
        tokio::io::copy(&mut reader, &mut file)
            .await
            .map_err(|e| JobError::Transient(format!("reading the upload: {e}")))?;
        drop(file);
        Ok(self.pipeline.import_file(&path, report).await?)
    }
}
