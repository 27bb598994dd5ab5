//! What a running job tells the world: progress acks to JetStream, stage changes as
//! commands (hence events), live percentages on core NATS.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use jukebox_domain::{Command, ImportStage};
use jukebox_nats::CommandBus;
use serde_json::json;
use tokio::sync::mpsc;

use super::job::{Job, JobError};
use super::Downloader;
use crate::media::{self, Progress};

impl Downloader {
    /// One attempt at a job, with progress acks every third of `ack_wait` and live
    /// progress on core NATS while it runs.
    pub(super) async fn attempt(
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

    pub(super) async fn record_stage(
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

    /// Live progress, best effort (core NATS, nothing stored).
    pub(super) async fn progress(&self, job: &Job, mut body: serde_json::Value) {
        body["job_id"] = json!(job.job_id);
        let subject = self
            .topology
            .namespace
            .progress_subject(&job.job_id.to_string());
        let _ = self.client.publish(subject, body.to_string().into()).await;
    }
}
