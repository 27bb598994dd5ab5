//! The import flow's outside-world clients for the edge, built from the configuration:
//! search (YouTube Data API with a key, else yt-dlp's `ytsearch`) and uploads (probed
//! with ffprobe, then kept in the object store under `uploads/<job id>` for the
//! downloader).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use jukebox_edge::clients::youtube::YoutubeApi;
use jukebox_edge::ports::{
    AcceptedUpload, CollectionLister, CollectionListing, ImportSettings, ListError, SearchError,
    SearchHit, SongSearch, UploadError, UploadSink,
};
use jukebox_edge::progress::ProgressCache;
use jukebox_edge::search_guard::SearchGuard;
use jukebox_handlers::media::{self, MediaError, PipelineConfig, Tools};
use jukebox_handlers::storage::{ObjectKey, ObjectStore};
use jukebox_nats::Namespace;

use crate::config::Config;

/// The media pipeline's settings from the configuration.
pub fn pipeline_config(config: &Config) -> anyhow::Result<PipelineConfig> {
    let tools = Tools::discover().context("the downloader needs yt-dlp, ffmpeg and ffprobe")?;
    let mut pipeline = PipelineConfig::new(tools);
    pipeline.allow_private_networks = config.import_allow_private_networks;
    pipeline.limits.max_duration = config.import_max_duration;
    pipeline.limits.max_download_bytes = config.import_max_bytes;
    pipeline.work_dir = config.import_work_dir.clone();
    // Every connection yt-dlp (and the ffmpeg it starts) makes goes through this proxy,
    // which checks the address it connects to (ADR 38).
    let policy = media::EgressPolicy::from_config(config.import_allow_private_networks);
    pipeline.limits.egress =
        Some(media::EgressProxy::start(policy).context("starting the egress proxy")?);
    Ok(pipeline)
}

/// Everything the edge's import routes need.
pub async fn import_settings(
    config: &Config,
    store: Arc<dyn ObjectStore>,
    nats: async_nats::Client,
    namespace: &Namespace,
) -> anyhow::Result<ImportSettings> {
    let pipeline = pipeline_config(config)?;
    let search: Arc<dyn SongSearch> = match &config.youtube_api_key {
        Some(key) => Arc::new(YoutubeApi {
            base_url: config.youtube_api_base_url.clone(),
            key: key.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .context("HTTP client")?,
        }),
        None => Arc::new(YtDlpSearch {
            tools: pipeline.tools.clone(),
        }),
    };
    Ok(ImportSettings {
        search,
        search_guard: SearchGuard::new(config.search_per_minute, config.search_cache_ttl),
        collections: Arc::new(YtDlpLister {
            pipeline: media::Pipeline::new(pipeline.clone()),
        }),
        collection_cap: config.import_collection_max_entries,
        max_jobs_per_user: config.import_max_jobs_per_user,
        quota: jukebox_edge::ports::Quota {
            max_tracks: config.import_max_tracks_per_user,
            max_bytes: config.import_max_bytes_per_user,
        },
        max_subscriptions_per_user: config.subscription_max_per_user,
        max_duration_s: config.import_max_duration.as_secs(),
        uploads: Arc::new(StoreUploads { pipeline, store }),
        upload_max_bytes: config.upload_max_bytes,
        upload_dir: config.import_work_dir.clone(),
        progress: ProgressCache::start(nats, namespace).await?,
        namespace: namespace.clone(),
    })
}

/// Playlists, channels and feeds: yt-dlp `--flat-playlist`, after the address check.
pub struct YtDlpLister {
    pub pipeline: media::Pipeline,
}

#[async_trait]
impl CollectionLister for YtDlpLister {
    async fn list(&self, url: &str, cap: usize) -> Result<CollectionListing, ListError> {
        match self.pipeline.list(url, cap).await {
            Ok(listing) => Ok(CollectionListing {
                title: listing.title,
                entries: listing.entries,
                total: listing.total,
                capped: listing.capped,
            }),
            Err(MediaError::UnsupportedUrl { reason }) if reason == media::listing::ONE_TRACK => {
                Err(ListError::OneTrack(reason))
            }
            Err(error) if rate_limited(&error.to_string()) => {
                Err(ListError::RateLimited(error.to_string()))
            }
            Err(error) if error.is_permanent() => Err(ListError::Refused(error.to_string())),
            Err(error) => Err(ListError::Unavailable(error.to_string())),
        }
    }
}

/// Whether yt-dlp's words say the site asked us to slow down: HTTP 429, or YouTube's
/// bot check ("Sign in to confirm you're not a bot").
pub fn rate_limited(message: &str) -> bool {
    [
        "HTTP Error 429",
        "Too Many Requests",
        "Sign in to confirm",
        "not a bot",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Search without an API key: yt-dlp `ytsearchN:`.
pub struct YtDlpSearch {
    pub tools: Tools,
}

#[async_trait]
impl SongSearch for YtDlpSearch {
    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        let entries = media::ytdlp::search(
            &self.tools.yt_dlp,
            query,
            limit,
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| match e {
            MediaError::Network { .. } | MediaError::Timeout { .. } => {
                SearchError::Unavailable(e.to_string())
            }
            other => SearchError::BadGateway(other.to_string()),
        })?;
        Ok(entries
            .into_iter()
            .map(|e| SearchHit {
                video_id: e.video_id,
                title: e.title,
                channel: e.channel,
                duration_s: e.duration.map(|d| d.as_secs()),
                thumbnail: e.thumbnail,
            })
            .collect())
    }
}

/// Uploads: ffprobe first (SECURITY.md 18), then the object store.
pub struct StoreUploads {
    pub pipeline: PipelineConfig,
    pub store: Arc<dyn ObjectStore>,
}

#[async_trait]
impl UploadSink for StoreUploads {
    async fn accept(&self, file: &Path, job_id: uuid::Uuid) -> Result<AcceptedUpload, UploadError> {
        let info = media::ffmpeg::probe(
            &self.pipeline.tools.ffprobe,
            file,
            self.pipeline.probe_timeout,
        )
        .await
        .map_err(refused)?;
        self.pipeline
            .limits
            .check_duration(info.duration)
            .map_err(refused)?;
        let key = ObjectKey::parse(&format!("uploads/{job_id}"))
            .map_err(|e| UploadError::Unavailable(e.to_string()))?;
        self.store
            .put_file(&key, file)
            .await
            .map_err(|e| UploadError::Unavailable(format!("object store: {e}")))?;
        Ok(AcceptedUpload {
            object_key: key.to_string(),
        })
    }
}

fn refused(error: MediaError) -> UploadError {
    if error.is_permanent() {
        UploadError::Refused(error.to_string())
    } else {
        UploadError::Unavailable(error.to_string())
    }
}
