//! The write side's workers: the command processor (cqrs-es + postgres-es), the outbox
//! relay (Postgres log -> JetStream `EVENTS`), the mail reactor (side effects of events),
//! plus the import pipeline's building blocks: the object store (`storage`) and
//! yt-dlp/ffprobe/ffmpeg (`media`).

pub mod access;
pub mod downloader;
pub mod legacy;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod processor;
pub mod reactor;
pub mod relay;
pub mod wake;

/// The object store lives in its own crate: the stream role (edge) reads from it too.
pub use jukebox_storage as storage;

pub use downloader::Downloader;
pub use metrics::{DownloaderMetrics, JobOutcome, ProcessorMetrics};
pub use processor::Processor;
pub use reactor::{MailReactor, MailSettings};
pub use relay::Relay;
pub use wake::RelayWaker;
