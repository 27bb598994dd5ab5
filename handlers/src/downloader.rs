//! The downloader role: a durable pull consumer on `evt.import.*.ImportRequested`.
//!
//! Per job: a source already stored completes the job at once; otherwise the job takes
//! the source's lock (one download per source, across every downloader process), runs
//! the media pipeline (yt-dlp + ffmpeg), puts the `.m4a` under the track's key, and then
//! issues `StoreTrack` and `CompleteImport` (which adds the track to the requester's
//! library). Jobs that asked for the same source while it was downloading wait for the
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

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, EventStore};
use futures::StreamExt;
use jukebox_domain::{
    Command, ErrorCode, Import, ImportEvent, ImportStage, SourceRef, StoredCover, StoredTrack,
    Track, TrackId,
};
use jukebox_nats::{
    CommandBus, CommandEnvelope, EventRecord, FailPointFired, FailPoints, OutcomeStatus, Topology,
};
use postgres_es::PostgresEventRepository;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};
use uuid::Uuid;

use crate::media::{self, MediaError, Pipeline, PreparedTrack, Progress, SourceInfo};
use crate::metrics::{DownloaderMetrics, JobOutcome};
use crate::storage::{ObjectKey, ObjectStore, StoreError};

/// Why a job attempt did not finish.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("object store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Transient(String),
    #[error(transparent)]
    FailPoint(#[from] FailPointFired),
}

impl JobError {
    fn is_permanent(&self) -> bool {
        match self {
            Self::Media(e) => e.is_permanent(),
            Self::Store(StoreError::InvalidKey { .. }) => true,
            _ => false,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Media(e) => e.code(),
            Self::Store(_) => "storage",
            Self::Transient(_) | Self::FailPoint(_) => "internal",
        }
    }

    /// The sentence a user reads.
    fn reason(&self) -> String {
        match self {
            Self::Media(e) => e.to_string(),
            Self::Store(_) => "the track could not be stored; please try again later".into(),
            Self::Transient(_) | Self::FailPoint(_) => {
                "the import could not be finished; please try again later".into()
            }
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(format!("database: {error}"))
    }
}

#[derive(Clone)]
pub struct Downloader {
    pool: PgPool,
    client: async_nats::Client,
    topology: Topology,
    pipeline: Pipeline,
    store: Arc<dyn ObjectStore>,
    /// Jobs in hand at once (`DOWNLOAD_CONCURRENCY`).
    pub slots: usize,
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

/// The job a message carries.
struct Job {
    job_id: Uuid,
    user_id: Uuid,
    source: SourceRef,
    correlation_id: Uuid,
    attempt: i64,
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
            max_deliver: 5,
            retry_base: Duration::from_secs(5),
            ack_wait: Duration::from_secs(30),
            command_wait: Duration::from_secs(10),
            fail_points: FailPoints::default(),
            metrics: DownloaderMetrics::default(),
            redeliveries: jukebox_nats::Redeliveries::default(),
        }
    }

    /// The object key of a track: `tracks/<track id>.m4a`, or a hash of the id when the
    /// id cannot be a key segment.
    pub fn object_key(track_id: &TrackId) -> ObjectKey {
        track_object_key(track_id, "m4a")
    }

    /// The key of a track's cover image, next to its audio: `tracks/<track id>.jpg`
    /// (hashed like the audio's key when the id cannot be a key segment).
    pub fn cover_key(track_id: &TrackId) -> ObjectKey {
        track_object_key(track_id, "jpg")
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
            .downloader_consumer(&js, self.slots, self.ack_wait, self.max_deliver + 2)
            .await?;
        let bus = CommandBus::start(self.client.clone(), self.topology.namespace.clone()).await?;
        let messages = consumer.messages().await?;
        self.redeliveries.watch("downloader");
        info!(slots = self.slots, "downloader started");
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
            .for_each_concurrent(self.slots, |message| {
                let (died, shutdown, bus, this) = (died.clone(), shutdown.clone(), &bus, &self);
                async move {
                    let message = match message {
                        Ok(message) => message,
                        Err(error) => {
                            warn!(%error, "downloader consumer error");
                            return;
                        }
                    };
                    tokio::select! {
                        // Stopping: the job is dropped (tools killed, temp files removed)
                        // and redelivered to whoever runs next.
                        _ = shutdown.cancelled() => {}
                        _ = died.cancelled() => {}
                        result = this.handle_message(bus, &message) => {
                            if let Err(fired) = result {
                                error!(%fired, "downloader stopping at fail point");
                                died.cancel();
                            }
                        }
                    }
                }
            })
            .await;
        if died.is_cancelled() {
            anyhow::bail!("downloader died at a fail point");
        }
        info!("downloader stopped");
        Ok(())
    }

    async fn handle_message(
        &self,
        bus: &CommandBus,
        message: &jetstream::Message,
    ) -> Result<(), FailPointFired> {
        let job = match read_job(message) {
            Some(job) => job,
            None => {
                error!(subject = %message.subject, "unreadable ImportRequested, terminating it");
                let _ = message.ack_with(AckKind::Term).await;
                return Ok(());
            }
        };
        self.redeliveries.observe("downloader", message);
        let span = info_span!("import", job_id = %job.job_id, attempt = job.attempt);
        async {
            // Redelivered after it ended (the ack was lost): nothing to do again.
            if let Ok(true) = self.finished(job.job_id).await {
                let _ = message.ack().await;
                return Ok(());
            }
            let in_flight = self.metrics.in_flight();
            let result = self.attempt(bus, message, &job).await;
            drop(in_flight);
            let settle = match result {
                Ok(()) => {
                    self.metrics.job(JobOutcome::Succeeded);
                    Ok(())
                }
                Err(JobError::FailPoint(fired)) => return Err(fired),
                Err(error) if error.is_permanent() || job.attempt >= self.max_deliver => {
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
                    match self.command(bus, &job, "fail", fail).await {
                        Ok(_) => {
                            self.metrics.job(JobOutcome::Failed);
                            self.progress(&job, json!({"status": "failed", "error": reason}))
                                .await;
                            if let SourceRef::Upload { object_key, .. } = &job.source {
                                self.remove_upload(object_key).await;
                            }
                            Ok(())
                        }
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error),
            };
            match settle {
                Ok(()) => {
                    if let Err(error) = message.ack().await {
                        warn!(%error, "ack failed; the job will come back and finish at once");
                    }
                }
                Err(error) => {
                    self.metrics.job(JobOutcome::Retried);
                    let delay = self.retry_delay(job.attempt);
                    warn!(%error, retry_in = ?delay, "import attempt failed, retrying");
                    // The web app shows "retrying (attempt 2 of 5, next in 10 s)".
                    self.progress(
                        &job,
                        json!({
                            "status": "retrying",
                            "attempt": job.attempt + 1,
                            "max_attempts": self.max_deliver,
                            "next_in_s": delay.as_secs(),
                            "code": error.code(),
                        }),
                    )
                    .await;
                    let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    fn retry_delay(&self, attempt: i64) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 10)).unwrap_or(10);
        (self.retry_base * 2u32.pow(exponent)).min(Duration::from_secs(300))
    }

    /// One attempt at a job, with progress acks every third of `ack_wait` and live
    /// progress on core NATS while it runs.
    async fn attempt(
        &self,
        bus: &CommandBus,
        message: &jetstream::Message,
        job: &Job,
    ) -> Result<(), JobError> {
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<Progress>();
        let (stage_tx, mut stage_rx) = mpsc::unbounded_channel::<ImportStage>();
        let work = self.work(bus, job, progress_tx, stage_tx);
        tokio::pin!(work);
        let mut ticker = tokio::time::interval((self.ack_wait / 3).max(Duration::from_millis(100)));
        ticker.tick().await;
        let mut last: Option<(ImportStage, u8)> = None;
        let mut recorded = ImportStage::Requested;
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = ticker.tick() => {
                    let _ = message.ack_with(AckKind::Progress).await;
                }
                Some(stage) = stage_rx.recv() => {
                    self.record_stage(bus, job, &mut recorded, stage).await?;
                    self.progress(job, json!({"status": stage.as_str(), "percent": 0})).await;
                }
                Some(progress) = progress_rx.recv() => {
                    let stage = match progress.stage {
                        media::Stage::Resolving | media::Stage::Downloading => ImportStage::Downloading,
                        media::Stage::Transcoding => ImportStage::Transcoding,
                    };
                    self.record_stage(bus, job, &mut recorded, stage).await?;
                    if stage == ImportStage::Transcoding {
                        self.fail_points.check("downloader.transcoding")?;
                    }
                    if last != Some((stage, progress.percent)) {
                        last = Some((stage, progress.percent));
                        self.progress(
                            job,
                            json!({"status": stage.as_str(), "percent": progress.percent}),
                        )
                        .await;
                    }
                }
            }
        }
    }

    async fn record_stage(
        &self,
        bus: &CommandBus,
        job: &Job,
        recorded: &mut ImportStage,
        stage: ImportStage,
    ) -> Result<(), JobError> {
        if *recorded == stage {
            return Ok(());
        }
        *recorded = stage;
        let change = Command::ChangeImportStage {
            job_id: job.job_id,
            stage,
        };
        let what = format!("stage:{}:{}", stage.as_str(), job.attempt);
        self.command(bus, job, &what, change).await.map(drop)
    }

    /// The job itself: stored already? else lock the source, download, transcode, store.
    async fn work(
        &self,
        bus: &CommandBus,
        job: &Job,
        progress: mpsc::UnboundedSender<Progress>,
        stage: mpsc::UnboundedSender<ImportStage>,
    ) -> Result<(), JobError> {
        let already = match job.source.known_track_id() {
            Some(track_id) => {
                let stored = self.stored(&track_id).await?;
                Some((track_id, stored))
            }
            None => None,
        };
        if let Some((track_id, Some(_))) = &already {
            return self.complete(bus, job, track_id).await;
        }
        // Resolving (yt-dlp -J) happens while the job shows `requested`: `downloading`
        // is reserved for the one job that fetches the source.
        let resolved: Option<SourceInfo> = match job.source.fetch_url() {
            Some(url) if already.is_none() => Some(self.pipeline.resolve(&url).await?),
            _ => None,
        };
        let track_id = match (&already, &resolved) {
            (Some((track_id, _)), _) => track_id.clone(),
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
        if self.stored(&track_id).await?.is_some() {
            lock.release().await;
            return self.complete(bus, job, &track_id).await;
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
        let key = Self::object_key(&track_id);
        // The cover first: once `TrackStored` names it, it is there to serve.
        let cover = match &prepared.cover {
            Some(image) => {
                let cover_key = Self::cover_key(&track_id);
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
        let track = stored_track(&track_id, &key, stored.size, &prepared, &job.source, cover);
        drop(prepared);
        match self
            .command(bus, job, "store", Command::StoreTrack { track })
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
        lock.release().await;
        self.complete(bus, job, &track_id).await
    }

    /// Adds the track to the requester's library and completes the job.
    async fn complete(
        &self,
        bus: &CommandBus,
        job: &Job,
        track_id: &TrackId,
    ) -> Result<(), JobError> {
        let complete = Command::CompleteImport {
            job_id: job.job_id,
            user_id: job.user_id,
            track_id: track_id.clone(),
        };
        match self.command(bus, job, "complete", complete).await? {
            Ok(()) => {}
            Err(Some(ErrorCode::JobFinished)) => {}
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
        Ok(())
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

    /// Whether the job has ended (`ImportCompleted` or `ImportFailed`).
    async fn finished(&self, job_id: Uuid) -> Result<bool, JobError> {
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
    async fn stored(&self, track_id: &TrackId) -> Result<Option<StoredTrack>, JobError> {
        let repository = PostgresEventRepository::new(self.pool.clone());
        let store: PersistedEventStore<_, Track> = PersistedEventStore::new_event_store(repository);
        let mut context = store
            .load_aggregate(track_id.as_str())
            .await
            .map_err(|e| JobError::Transient(format!("loading track {track_id}: {e}")))?;
        Ok(context.aggregate().stored().cloned())
    }

    /// Sends a command for the job with a command id derived from the job and `what`, so a
    /// retried attempt is the same command. `Ok(Err(code))` is a rejection.
    async fn command(
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

    async fn stored_outcome(
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

    /// Live progress, best effort (core NATS, nothing stored).
    async fn progress(&self, job: &Job, mut body: serde_json::Value) {
        body["job_id"] = json!(job.job_id);
        let subject = self
            .topology
            .namespace
            .progress_subject(&job.job_id.to_string());
        let _ = self.client.publish(subject, body.to_string().into()).await;
    }
}

fn read_job(message: &jetstream::Message) -> Option<Job> {
    let record: EventRecord = serde_json::from_slice(&message.payload).ok()?;
    let ImportEvent::ImportRequested {
        job_id,
        requested_by,
        source,
    } = record.decode().ok()?
    else {
        return None;
    };
    let correlation_id = record
        .metadata_str("correlation_id")
        .and_then(|c| Uuid::parse_str(c).ok())
        .unwrap_or(job_id);
    let attempt = message.info().map(|i| i.delivered).unwrap_or(1);
    Some(Job {
        job_id,
        user_id: requested_by,
        source,
        correlation_id,
        attempt,
    })
}

fn stored_track(
    track_id: &TrackId,
    key: &ObjectKey,
    size: u64,
    prepared: &PreparedTrack,
    source: &SourceRef,
    cover: Option<StoredCover>,
) -> StoredTrack {
    let output = &prepared.output;
    StoredTrack {
        track_id: track_id.clone(),
        object_key: key.to_string(),
        size,
        duration_ms: output.duration.as_millis() as u64,
        codec: output.audio.codec.clone(),
        bitrate: output.audio.bit_rate.or(output.bit_rate).unwrap_or(0),
        title: prepared.tags.title.clone(),
        artist: prepared.tags.artist.clone(),
        album: prepared.tags.album.clone(),
        has_cover: output.cover_stream.is_some(),
        origin: match (source, &prepared.source) {
            (_, Some(info)) => info.webpage_url.clone(),
            (SourceRef::Upload { .. }, None) => "upload".into(),
            (other, None) => other.fetch_url().unwrap_or_default(),
        },
        cover,
    }
}

/// `tracks/<track id>.<extension>`, or `tracks/h-<hash of the id>.<extension>` when the
/// id cannot be a key segment.
fn track_object_key(track_id: &TrackId, extension: &str) -> ObjectKey {
    ObjectKey::parse(&format!("tracks/{track_id}.{extension}"))
        .ok()
        .filter(|_| !track_id.as_str().contains('/'))
        .unwrap_or_else(|| {
            let digest = Sha256::digest(track_id.as_str().as_bytes());
            let name = format!("tracks/h-{}.{extension}", hex::encode(&digest[..16]));
            ObjectKey::parse(&name).expect("a hex key is valid")
        })
}

/// One download per source: a session-level advisory lock keyed by the track id, held
/// on a connection of its own (never inside a transaction). If the process dies, the
/// connection closes and Postgres releases the lock.
struct SourceLock {
    conn: PgConnection,
    key: i64,
}

impl SourceLock {
    async fn acquire(
        pool: &PgPool,
        track_id: &TrackId,
        on_wait: impl FnOnce(),
    ) -> Result<Self, JobError> {
        let digest = Sha256::digest(format!("jukebox:track:{track_id}").as_bytes());
        let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut conn = pool.acquire().await?.detach();
        let mut on_wait = Some(on_wait);
        loop {
            let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            if got {
                return Ok(Self { conn, key });
            }
            if let Some(on_wait) = on_wait.take() {
                info!(%track_id, "another job is downloading this source; waiting for it");
                on_wait();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}
