//! The outside world the import routes reach through traits, so the composition root
//! picks the implementation: [`SongSearch`] (the YouTube Data API in `crate::clients`,
//! or yt-dlp's `ytsearch`) and [`UploadSink`] (probe the file with ffprobe, put it in the
//! object store), [`CollectionLister`] (yt-dlp `--flat-playlist`); and [`ImportSettings`], what the import routes need.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use jukebox_nats::Namespace;
use uuid::Uuid;

use crate::progress::ProgressCache;

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub video_id: String,
    pub title: String,
    pub channel: Option<String>,
    pub duration_s: Option<u64>,
    pub thumbnail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The search service answered, but not with results (bad key, malformed answer).
    #[error("{0}")]
    BadGateway(String),
    /// The search service cannot be reached or is over its quota: try again later.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait SongSearch: Send + Sync {
    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError>;
}

/// An uploaded file, accepted.
#[derive(Debug, Clone)]
pub struct AcceptedUpload {
    pub object_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The file is not audio we can use: 422 with this sentence.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait UploadSink: Send + Sync {
    /// Probes `file` and, if it is audio, keeps it where the downloader can read it.
    async fn accept(&self, file: &FsPath, job_id: Uuid) -> Result<AcceptedUpload, UploadError>;
}

/// A playlist, channel or feed as listed (issue 20).
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionListing {
    pub title: Option<String>,
    /// At most the cap, in the source's order.
    pub entries: Vec<jukebox_domain::collection::ListedEntry>,
    /// How many entries the source has (more than `entries` when capped).
    pub total: u64,
    pub capped: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The link is one track, not a list: 422 `not_a_collection` with this.
    #[error("{0}")]
    OneTrack(String),
    /// The link is the problem (not a list, gone, private address): 422 with this.
    #[error("{0}")]
    Refused(String),
    /// The site failed for now (5xx, timeouts): 503 with this.
    #[error("{0}")]
    Unavailable(String),
    /// The site asked us to slow down (HTTP 429, a bot check): 503 with this; a
    /// subscription backs off (ADR 40).
    #[error("{0}")]
    RateLimited(String),
}

#[async_trait]
pub trait CollectionLister: Send + Sync {
    /// Lists the entries at `url`, at most `cap` of them, fetching none.
    async fn list(&self, url: &str, cap: usize) -> Result<CollectionListing, ListError>;
}

/// Per-user limits on what a library holds (ADR 41); `None` is no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quota {
    pub max_tracks: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// What the import routes need.
pub struct ImportSettings {
    pub search: Arc<dyn SongSearch>,
    /// The per-user search limit and the shared result cache.
    pub search_guard: crate::search_guard::SearchGuard,
    pub collections: Arc<dyn CollectionLister>,
    /// `IMPORT_COLLECTION_MAX_ENTRIES`: entries one collection import takes.
    pub collection_cap: usize,
    /// `IMPORT_MAX_JOBS_PER_USER`: unfinished jobs one user may have.
    pub max_jobs_per_user: usize,
    /// `IMPORT_MAX_TRACKS_PER_USER` / `IMPORT_MAX_BYTES_PER_USER` (ADR 41).
    pub quota: Quota,
    /// `SUBSCRIPTION_MAX_PER_USER`: subscriptions one user may have.
    pub max_subscriptions_per_user: usize,
    /// `IMPORT_MAX_DURATION_S`: a listed entry longer than this is skipped as too long.
    pub max_duration_s: u64,
    pub uploads: Arc<dyn UploadSink>,
    pub upload_max_bytes: u64,
    /// Where uploads are spooled before they are probed (the system temp folder if None).
    pub upload_dir: Option<PathBuf>,
    pub progress: ProgressCache,
    pub namespace: Namespace,
}
