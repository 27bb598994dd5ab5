//! `Import`: one import job, from "I want this song" to a track in the requester's
//! library (or a reason it failed). Its id is the job id, a UUIDv7 the edge picks.
//!
//! The downloader drives it: stage changes (`ImportStageChanged`) are real events so the
//! job's history tells its story; `ImportCompleted` or `ImportFailed` ends it. A finished
//! job accepts nothing more, so a redelivered request cannot reopen it.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::media::{ImportStage, SourceRef, TrackId};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Import {
    requested_by: Option<Uuid>,
    stage: Option<ImportStage>,
    finished: bool,
}

impl Import {
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn requested_by(&self) -> Option<Uuid> {
        self.requested_by
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImportCommand {
    Request {
        job_id: Uuid,
        requested_by: Uuid,
        source: SourceRef,
    },
    ChangeStage {
        stage: ImportStage,
    },
    Complete {
        track_id: TrackId,
    },
    Fail {
        code: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImportEvent {
    ImportRequested {
        job_id: Uuid,
        requested_by: Uuid,
        source: SourceRef,
    },
    ImportStageChanged {
        stage: ImportStage,
    },
    ImportCompleted {
        track_id: TrackId,
    },
    ImportFailed {
        code: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    #[error("this import job already exists")]
    AlreadyRequested,
    #[error("no such import job")]
    UnknownJob,
    #[error("this import job has already finished")]
    AlreadyFinished,
}

impl DomainEvent for ImportEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ImportRequested { .. } => "ImportRequested",
            Self::ImportStageChanged { .. } => "ImportStageChanged",
            Self::ImportCompleted { .. } => "ImportCompleted",
            Self::ImportFailed { .. } => "ImportFailed",
        }
        .into()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for Import {
    const TYPE: &'static str = "import";
    type Command = ImportCommand;
    type Event = ImportEvent;
    type Error = ImportError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let ImportCommand::Request {
            job_id,
            requested_by,
            source,
        } = command
        {
            if self.requested_by.is_some() {
                return Err(ImportError::AlreadyRequested);
            }
            let event = ImportEvent::ImportRequested {
                job_id,
                requested_by,
                source,
            };
            sink.write(event, self).await;
            return Ok(());
        }
        if self.requested_by.is_none() {
            return Err(ImportError::UnknownJob);
        }
        if self.finished {
            return Err(ImportError::AlreadyFinished);
        }
        let event = match command {
            ImportCommand::Request { .. } => unreachable!("handled above"),
            // The same stage again (a retried attempt) is not news.
            ImportCommand::ChangeStage { stage } if self.stage == Some(stage) => return Ok(()),
            ImportCommand::ChangeStage { stage } => ImportEvent::ImportStageChanged { stage },
            ImportCommand::Complete { track_id } => ImportEvent::ImportCompleted { track_id },
            ImportCommand::Fail { code, reason } => ImportEvent::ImportFailed { code, reason },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ImportEvent::ImportRequested { requested_by, .. } => {
                self.requested_by = Some(requested_by);
                self.stage = Some(ImportStage::Requested);
            }
            ImportEvent::ImportStageChanged { stage } => self.stage = Some(stage),
            ImportEvent::ImportCompleted { .. } | ImportEvent::ImportFailed { .. } => {
                self.finished = true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<Import>;

    fn requested(job_id: Uuid, user: Uuid) -> ImportEvent {
        ImportEvent::ImportRequested {
            job_id,
            requested_by: user,
            source: SourceRef::video("dQw4w9WgXcQ").unwrap(),
        }
    }

    #[test]
    fn a_job_is_requested_once() {
        let (job, user) = (Uuid::now_v7(), Uuid::now_v7());
        let request = ImportCommand::Request {
            job_id: job,
            requested_by: user,
            source: SourceRef::video("dQw4w9WgXcQ").unwrap(),
        };
        Framework::with(())
            .given_no_previous_events()
            .when(request.clone())
            .then_expect_events(vec![requested(job, user)]);
        Framework::with(())
            .given(vec![requested(job, user)])
            .when(request)
            .then_expect_error_message("this import job already exists");
    }

    #[test]
    fn stages_are_recorded_once_each() {
        let (job, user) = (Uuid::now_v7(), Uuid::now_v7());
        Framework::with(())
            .given(vec![requested(job, user)])
            .when(ImportCommand::ChangeStage {
                stage: ImportStage::Downloading,
            })
            .then_expect_events(vec![ImportEvent::ImportStageChanged {
                stage: ImportStage::Downloading,
            }]);
        Framework::with(())
            .given(vec![
                requested(job, user),
                ImportEvent::ImportStageChanged {
                    stage: ImportStage::Downloading,
                },
            ])
            .when(ImportCommand::ChangeStage {
                stage: ImportStage::Downloading,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_finished_job_stays_finished() {
        let (job, user) = (Uuid::now_v7(), Uuid::now_v7());
        let track_id = TrackId::parse("yt:dQw4w9WgXcQ").unwrap();
        Framework::with(())
            .given(vec![requested(job, user)])
            .when(ImportCommand::Complete {
                track_id: track_id.clone(),
            })
            .then_expect_events(vec![ImportEvent::ImportCompleted {
                track_id: track_id.clone(),
            }]);
        Framework::with(())
            .given(vec![
                requested(job, user),
                ImportEvent::ImportCompleted { track_id },
            ])
            .when(ImportCommand::Fail {
                code: "timeout".into(),
                reason: "too slow".into(),
            })
            .then_expect_error_message("this import job has already finished");
    }

    #[test]
    fn a_failure_carries_its_reason() {
        let (job, user) = (Uuid::now_v7(), Uuid::now_v7());
        Framework::with(())
            .given(vec![requested(job, user)])
            .when(ImportCommand::Fail {
                code: "corrupt_media".into(),
                reason: "the file is not usable audio".into(),
            })
            .then_expect_events(vec![ImportEvent::ImportFailed {
                code: "corrupt_media".into(),
                reason: "the file is not usable audio".into(),
            }]);
    }

    #[test]
    fn an_unknown_job_cannot_progress() {
        Framework::with(())
            .given_no_previous_events()
            .when(ImportCommand::ChangeStage {
                stage: ImportStage::Transcoding,
            })
            .then_expect_error_message("no such import job");
    }
}
