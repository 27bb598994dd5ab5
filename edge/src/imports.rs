//! Search and import (issue 4): `GET /songs/search`, `POST /songs/import`,
//! `POST /songs/upload`, `GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/events`.
//!
//! The outside world comes in through two traits so the composition root picks the
//! implementation: [`SongSearch`] (the YouTube Data API here, or yt-dlp's `ytsearch`)
//! and [`UploadSink`] (probe the file with ffprobe, put it in the object store).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use jukebox_domain::{Command, SourceRef};
use jukebox_nats::{Namespace, OutcomeStatus};
use jukebox_projections::imports::JobRow;
use jukebox_projections::WaitError;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::api::{envelope, rejection, send, CommandHeaders};
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::fresh::{models, After};
use crate::state::AppState;

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

/// What the import routes need.
pub struct ImportSettings {
    pub search: Arc<dyn SongSearch>,
    pub uploads: Arc<dyn UploadSink>,
    pub upload_max_bytes: u64,
    /// Where uploads are spooled before they are probed (the system temp folder if None).
    pub upload_dir: Option<PathBuf>,
    pub progress: ProgressCache,
    pub namespace: Namespace,
}

/// The latest live progress per job, from core NATS `progress.import.*`.
#[derive(Clone, Default)]
pub struct ProgressCache(Arc<Mutex<HashMap<Uuid, (Value, Instant)>>>);

impl ProgressCache {
    /// Subscribes to every job's progress (one subscription per edge process).
    pub async fn start(
        client: async_nats::Client,
        namespace: &Namespace,
    ) -> Result<Self, async_nats::SubscribeError> {
        let cache = Self::default();
        let mut subscription = client
            .subscribe(namespace.subject("progress.import.*"))
            .await?;
        let entries = cache.0.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let Ok(body) = serde_json::from_slice::<Value>(&message.payload) else {
                    continue;
                };
                let Some(job_id) = body["job_id"].as_str().and_then(|j| j.parse().ok()) else {
                    continue;
                };
                let now = Instant::now();
                let mut body = body;
                if body["status"] == "retrying" {
                    // Relative to when it was said; `GET /jobs` answers with a moment.
                    let next_in = body["next_in_s"].as_u64().unwrap_or(0);
                    let at = time::OffsetDateTime::now_utc() + Duration::from_secs(next_in);
                    if let Ok(at) = at.format(&time::format_description::well_known::Rfc3339) {
                        body["next_at"] = Value::String(at);
                    }
                }
                let mut entries = entries.lock().expect("progress cache");
                if entries.len() > 10_000 {
                    entries.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(600));
                }
                entries.insert(job_id, (body, now));
            }
        });
        Ok(cache)
    }

    fn get(&self, job_id: Uuid) -> Option<Value> {
        self.0
            .lock()
            .expect("progress cache")
            .get(&job_id)
            .map(|(v, _)| v.clone())
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/songs/search", get(search))
        .route("/songs/import", post(import))
        // The upload's size is enforced while it streams (UPLOAD_MAX_BYTES).
        .route(
            "/songs/upload",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/jobs", get(list_jobs))
        .route("/jobs/{job_id}", get(get_job))
        .route("/jobs/{job_id}/events", get(job_events))
}

#[derive(OpenApi)]
#[openapi(paths(search, import, upload, list_jobs, get_job, job_events))]
pub(crate) struct Doc;

fn settings(state: &AppState) -> Result<&ImportSettings, ApiError> {
    state
        .imports
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("imports are not configured".into()))
}

/// Query strings are read as a plain map, so that no shape of them can make the
/// extractor answer with anything but our JSON errors.
type Params = Query<HashMap<String, String>>;

/// `limit` as a number in `1..=max` (`default` when absent); anything else is 422.
fn limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable("invalid_limit", format!("limit must be 1 to {max}"))
            }),
    }
}

pub const MAX_QUERY_CHARS: usize = 200;

#[derive(Serialize, ToSchema)]
struct SearchResults {
    query: String,
    results: Vec<SearchResult>,
}

#[derive(Serialize, ToSchema)]
struct SearchResult {
    video_id: String,
    title: String,
    channel: Option<String>,
    duration_s: Option<u64>,
    thumbnail: Option<String>,
    /// `yt:<video_id>`: the song id once imported.
    track_id: String,
    /// Someone imported it already: importing it is instant.
    stored: bool,
    in_library: bool,
}

/// `GET /songs/search?q=`: YouTube results, each flagged `stored` (someone imported it)
/// and `in_library` (I have it).
#[utoipa::path(get, path = "/songs/search", tag = "imports", security(("bearer" = [])),
    params(("q" = String, Query, min_length = 1, max_length = 200, description = "1 to 200 characters after trimming"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 25)),
    responses((status = 200, body = SearchResults), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody, description = "YouTube answered with an error"),
        (status = 503, body = ErrorBody, description = "YouTube unreachable or over quota")))]
async fn search(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<SearchResults>, ApiError> {
    let q = params.get("q").map_or("", |q| q.trim());
    if q.is_empty() || q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_query",
            format!("q must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let limit = limit(params.get("limit").map(String::as_str), 10, 25)? as usize;
    let hits = settings(&state)?
        .search
        .search(q, limit)
        .await
        .map_err(|e| match e {
            SearchError::BadGateway(m) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "search_failed",
                format!("YouTube search failed: {m}"),
            ),
            SearchError::Unavailable(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "search_unavailable",
                format!("YouTube search is unavailable right now: {m}"),
            ),
        })?;
    let ids: Vec<String> = hits.iter().map(|h| format!("yt:{}", h.video_id)).collect();
    after.wait(&state, &[models::LIBRARY]).await?;
    let (stored, mine) =
        jukebox_projections::library::marks(&state.pool, user.user_id, &ids).await?;
    let stored: HashSet<String> = stored.into_iter().collect();
    let mine: HashSet<String> = mine.into_iter().collect();
    let results = hits
        .iter()
        .zip(&ids)
        .map(|(hit, track_id)| SearchResult {
            video_id: hit.video_id.clone(),
            title: hit.title.clone(),
            channel: hit.channel.clone(),
            duration_s: hit.duration_s,
            thumbnail: hit.thumbnail.clone(),
            track_id: track_id.clone(),
            stored: stored.contains(track_id),
            in_library: mine.contains(track_id),
        })
        .collect();
    Ok(Json(SearchResults {
        query: q.to_owned(),
        results,
    }))
}

/// One of the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    /// A YouTube video id (11 characters).
    video_id: Option<String>,
    /// Any http(s) link yt-dlp understands; private addresses are refused.
    url: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ImportAccepted {
    job_id: Uuid,
    #[schema(example = "requested")]
    status: &'static str,
    /// `GET` it to follow the job.
    location: String,
}

/// `POST /songs/import` `{video_id}` or `{url}` -> 202 `{job_id}`.
#[utoipa::path(post, path = "/songs/import", tag = "imports", security(("bearer" = [])),
    params(CommandHeaders), request_body = ImportRequest,
    responses((status = 202, body = ImportAccepted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not a usable source"),
        (status = 503, body = ErrorBody)))]
async fn import(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ImportRequest>,
) -> Result<Response, ApiError> {
    let invalid = |e: jukebox_domain::SourceError| ApiError::unprocessable("invalid_source", e.0);
    let source = match (body.video_id, body.url) {
        (Some(video_id), None) => SourceRef::video(video_id.trim()).map_err(invalid)?,
        (None, Some(url)) => SourceRef::url(&url).map_err(invalid)?,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_source",
                "send either video_id or url",
            ))
        }
    };
    request_import(&state, &headers, user.user_id, Uuid::now_v7(), source).await
}

async fn request_import(
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    job_id: Uuid,
    source: SourceRef,
) -> Result<Response, ApiError> {
    let envelope = envelope(
        headers,
        Some(user_id),
        Command::RequestImport {
            job_id,
            user_id,
            source,
        },
    )?;
    let job_id = match send(state, &envelope).await? {
        // A retried request (same Idempotency-Key) gets the first request's job.
        Some(outcome) if outcome.status == OutcomeStatus::Committed => outcome
            .events
            .iter()
            .find(|e| e.aggregate_type == "import")
            .and_then(|e| e.aggregate_id.parse().ok())
            .unwrap_or(job_id),
        Some(outcome) => return Err(rejection(outcome)),
        None => job_id,
    };
    let location = format!("{}/jobs/{job_id}", state.mount);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(ImportAccepted {
            job_id,
            status: "requested",
            location,
        }),
    )
        .into_response())
}

#[derive(ToSchema)]
#[allow(dead_code)] // the multipart form, for the document
struct UploadForm {
    /// The audio file (`UPLOAD_MAX_BYTES` at most).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// `POST /songs/upload` (multipart, one `file` field) -> 202 `{job_id}`. The file is
/// spooled to disk with a size cap, probed, and kept for the downloader.
#[utoipa::path(post, path = "/songs/upload", tag = "imports", security(("bearer" = [])),
    params(CommandHeaders), request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 202, body = ImportAccepted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "no file, or not audio"),
        (status = 503, body = ErrorBody)))]
async fn upload(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let settings = settings(&state)?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the file as multipart/form-data with a `file` field ({})",
                e.body_text()
            ),
        )
    })?;
    let bad = |m: String| ApiError::bad_request("invalid_upload", m);
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_big",
            format!(
                "the file is larger than the upload limit of {} MiB",
                settings.upload_max_bytes / (1 << 20)
            ),
        )
    };
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if length > settings.upload_max_bytes + 64 * 1024 {
            return Err(too_big());
        }
    }
    let spool = match &settings.upload_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("jukebox-upload-")
            .tempfile_in(dir),
        None => tempfile::Builder::new()
            .prefix("jukebox-upload-")
            .tempfile(),
    }
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling an upload")))?;
    let mut file = tokio::fs::File::from_std(
        spool
            .reopen()
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spool file")))?,
    );
    let mut filename = None;
    let mut size = 0u64;
    let mut hasher = Sha256::new();
    let mut found = false;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(e.body_text()))?
    {
        if field.name() != Some("file") {
            continue;
        }
        if found {
            return Err(bad("send one file per upload".into()));
        }
        found = true;
        filename = field.file_name().map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        });
        while let Some(chunk) = field.chunk().await.map_err(|e| bad(e.body_text()))? {
            size += chunk.len() as u64;
            if size > settings.upload_max_bytes {
                return Err(too_big());
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling")))?;
        }
    }
    if !found || size == 0 {
        return Err(ApiError::unprocessable(
            "invalid_upload",
            "send the audio file as the multipart field `file`",
        ));
    }
    file.flush()
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling")))?;
    drop(file);
    let job_id = Uuid::now_v7();
    let accepted = settings
        .uploads
        .accept(spool.path(), job_id)
        .await
        .map_err(|e| match e {
            UploadError::Refused(m) => ApiError::unprocessable("not_audio", m),
            UploadError::Unavailable(m) => ApiError::Unavailable(m),
        })?;
    let source = SourceRef::Upload {
        object_key: accepted.object_key,
        sha256: hex::encode(hasher.finalize()),
        size,
        filename,
    };
    request_import(&state, &headers, user.user_id, job_id, source).await
}

/// An import job as its owner (or an admin) sees it.
#[derive(Serialize, ToSchema)]
pub struct Job {
    job_id: Uuid,
    /// `requested`, `waiting`, `downloading`, `transcoding`, `storing`, `completed` or `failed`.
    status: String,
    /// 0 to 100 while running; 100 once completed; null after a failure.
    percent: Option<u64>,
    source: JobSource,
    /// The song id, once stored.
    track_id: Option<String>,
    error: Option<JobError>,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// The position of the job's last event: pass it as `?after=` to `GET /library` or
    /// `GET /stream/{id}` (a `completed` job's track is already there).
    position: Option<String>,
    /// The stored song's tags, once known (`GET /jobs` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artist: Option<String>,
    /// Whether the song is still in the caller's library (`GET /jobs` only, once stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    in_library: Option<bool>,
    /// An attempt failed and the next one is waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<JobRetry>,
}

#[derive(Serialize, ToSchema)]
pub struct JobRetry {
    /// The attempt that comes next (2 for the first retry).
    attempt: u64,
    max_attempts: u64,
    /// When it starts (RFC 3339).
    next_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobSource {
    /// `video`, `url` or `upload`.
    kind: String,
    value: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobError {
    code: String,
    message: Option<String>,
}

fn job_json(row: &JobRow, live: Option<Value>) -> Job {
    let finished = row.is_finished();
    // Live progress counts while it is about the stage the read model shows (or later).
    let percent = if row.status == "completed" {
        Some(100)
    } else if finished {
        None
    } else {
        live.as_ref()
            .filter(|l| l["status"] == row.status.as_str() || row.status == "requested")
            .and_then(|l| l["percent"].as_u64())
            .or(Some(0))
    };
    // Live progress may run ahead of the read model for in-flight stages; whether a
    // job finished, and how, is the read model's word alone.
    let status = match live.as_ref().and_then(|l| l["status"].as_str()) {
        Some(stage @ ("waiting" | "downloading" | "transcoding" | "storing"))
            if row.status == "requested" =>
        {
            stage.to_owned()
        }
        _ => row.status.clone(),
    };
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    let retry = live
        .as_ref()
        .filter(|l| l["status"] == "retrying" && !finished)
        .and_then(|l| {
            Some(JobRetry {
                attempt: l["attempt"].as_u64()?,
                max_attempts: l["max_attempts"].as_u64()?,
                next_at: l["next_at"].as_str()?.to_owned(),
            })
        });
    Job {
        job_id: row.job_id,
        status,
        percent,
        source: JobSource {
            kind: row.source_kind.clone(),
            value: row.source.clone(),
        },
        track_id: row.track_id.clone(),
        error: row.error_code.as_ref().map(|code| JobError {
            code: code.clone(),
            message: row.error_message.clone(),
        }),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        position: row.position.clone(),
        title: None,
        artist: None,
        in_library: None,
        retry,
    }
}

/// A job is reported `completed` only once the library lists its track and may stream
/// it to its owner (the library read model has applied the completion); until then it
/// shows as `storing`. `wait`: wait (bounded) for it rather than look once.
async fn as_reported(state: &AppState, mut row: JobRow, wait: bool) -> Result<JobRow, ApiError> {
    let position = match row.position.as_deref().map(str::parse) {
        Some(Ok(position)) if row.status == "completed" => position,
        _ => return Ok(row),
    };
    let listed = if wait {
        match state.freshness.wait_for(position, &[models::LIBRARY]).await {
            Ok(()) => true,
            Err(WaitError::Behind(_)) => false,
            Err(WaitError::Database(error)) => return Err(error.into()),
        }
    } else {
        state
            .freshness
            .reached(position, &[models::LIBRARY])
            .await?
    };
    if !listed {
        row.status = "storing".into();
        row.track_id = None;
    }
    Ok(row)
}

const JOB_COLUMNS: &str = "job_id, user_id, source_kind, source, status, track_id, error_code, \
    error_message, created_at, updated_at, position";

/// The job, if it exists and the user may see it (its owner, or an admin). Someone
/// else's job is 404, like one that does not exist.
async fn visible_job(state: &AppState, user: &AuthUser, job_id: &str) -> Result<JobRow, ApiError> {
    let job_id = Uuid::parse_str(job_id)
        .map_err(|_| ApiError::unprocessable("invalid_job_id", "a job id is a UUID"))?;
    let row = job_row(&state.pool, job_id).await?;
    row.filter(|r| r.user_id == user.user_id || user.is_admin())
        .ok_or_else(|| {
            ApiError::not_found("no such job; a job just requested appears within a moment")
        })
}

/// The job's read-model row; for a job requested a moment ago that the projector has
/// not reached yet, the same fold (`Jobs::apply`) over the job's own events in the log.
async fn job_row(pool: &sqlx::PgPool, job_id: Uuid) -> Result<Option<JobRow>, ApiError> {
    let row: Option<JobRow> =
        sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1"))
            .bind(job_id)
            .fetch_optional(pool)
            .await?;
    if row.is_some() {
        return Ok(row);
    }
    type LogRow = (
        i64,
        String,
        i64,
        String,
        String,
        Value,
        Value,
        time::OffsetDateTime,
    );
    let id = job_id.to_string();
    let events: Vec<LogRow> = sqlx::query_as(
        "SELECT global_position, transaction_id::text, sequence, event_type, event_version,
                payload::jsonb, metadata::jsonb, recorded_at
         FROM events WHERE aggregate_type = 'import' AND aggregate_id = $1
         ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(pool)
    .await?;
    let mut rows = HashMap::new();
    for (
        global_position,
        transaction_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
        recorded_at,
    ) in events
    {
        let record = jukebox_nats::EventRecord {
            global_position,
            transaction_id,
            aggregate_type: "import".into(),
            aggregate_id: id.clone(),
            sequence,
            event_type,
            event_version,
            payload,
            metadata,
            recorded_at,
        };
        <jukebox_projections::Jobs as jukebox_projections::Projection>::apply(&mut rows, &record);
    }
    Ok(rows.remove(&id))
}

/// `GET /jobs/{id}`.
#[utoipa::path(get, path = "/jobs/{job_id}", tag = "imports", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses((status = 200, body = Job), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such job, or someone else's"),
        (status = 422, body = ErrorBody, description = "not a UUID"), (status = 503, body = ErrorBody)))]
async fn get_job(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    after.wait(&state, &[models::JOBS]).await?;
    let row = visible_job(&state, &user, &job_id).await?;
    let row = as_reported(&state, row, true).await?;
    let live = state
        .imports
        .as_ref()
        .and_then(|s| s.progress.get(row.job_id));
    Ok(Json(job_json(&row, live)))
}

#[derive(Serialize, ToSchema)]
struct Jobs {
    jobs: Vec<Job>,
}

/// `GET /jobs`: mine, newest first.
#[utoipa::path(get, path = "/jobs", tag = "imports", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = Jobs), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_jobs(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<Jobs>, ApiError> {
    let limit = limit(params.get("limit").map(String::as_str), 50, 200)?;
    let read = [models::JOBS, models::TRACKS, models::LIBRARY];
    after.wait(&state, &read).await?;
    let rows: Vec<JobRow> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE user_id = $1
         ORDER BY created_at DESC, job_id DESC LIMIT $2"
    ))
    .bind(user.user_id)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    let mut reported = Vec::with_capacity(rows.len());
    for row in rows {
        reported.push(as_reported(&state, row, false).await?);
    }
    let rows = reported;
    let progress = state.imports.as_ref().map(|s| s.progress.clone());
    // Labels for the jobs whose song is stored, and whether it is still mine.
    let ids: Vec<&str> = rows.iter().filter_map(|r| r.track_id.as_deref()).collect();
    let tags: HashMap<String, (Option<String>, Option<String>)> =
        sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT track_id, title, artist FROM tracks WHERE track_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&state.pool)
        .await?
        .into_iter()
        .map(|(id, title, artist)| (id, (title, artist)))
        .collect();
    let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
    let (_, mine) = jukebox_projections::library::marks(&state.pool, user.user_id, &ids).await?;
    let mine: HashSet<String> = mine.into_iter().collect();
    let jobs = rows
        .iter()
        .map(|r| {
            let mut job = job_json(r, progress.as_ref().and_then(|p| p.get(r.job_id)));
            if let Some(track) = &r.track_id {
                if let Some((title, artist)) = tags.get(track) {
                    job.title.clone_from(title);
                    job.artist.clone_from(artist);
                }
                job.in_library = Some(mine.contains(track));
            }
            job
        })
        .collect();
    Ok(Json(Jobs { jobs }))
}

/// One server-sent event of `GET /jobs/{id}/events`.
#[derive(ToSchema)]
#[allow(dead_code)] // written by axum's `Event`; here for the document
struct JobEvent {
    /// `job`: `data` is a `Job`; `progress`: live progress `{job_id, status, percent}`.
    #[schema(pattern = "^(job|progress)$")]
    event: String,
    /// JSON.
    data: String,
}

/// `GET /jobs/{id}/events`: server-sent events. `progress` events carry live progress,
/// `job` events the job as `GET /jobs/{id}` shows it; the stream ends after the `job`
/// event of a finished job.
#[utoipa::path(get, path = "/jobs/{job_id}/events", tag = "imports", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses((status = 200, content_type = "text/event-stream", body = JobEvent,
            description = "`job` events (a `Job`) and `progress` events, until the job ends"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn job_events(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    after.wait(&state, &[models::JOBS]).await?;
    let row = visible_job(&state, &user, &job_id).await?;
    let row = as_reported(&state, row, true).await?;
    let job_id = row.job_id;
    let subject = settings(&state)?
        .namespace
        .progress_subject(&job_id.to_string());
    let mut live = state
        .nats
        .subscribe(subject)
        .await
        .map_err(|e| ApiError::Unavailable(format!("nats: {e}")))?;
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Event, Infallible>>(16);
    let pool = state.pool.clone();
    let state = state.clone();
    tokio::spawn(async move {
        let mut tx = tx;
        let mut last = row;
        let first = Event::default()
            .event("job")
            .json_data(job_json(&last, None));
        if futures::SinkExt::send(&mut tx, Ok(first.expect("json")))
            .await
            .is_err()
        {
            return;
        }
        let mut poll = tokio::time::interval(Duration::from_millis(500));
        while !last.is_finished() {
            tokio::select! {
                Some(message) = live.next() => {
                    let Ok(body) = serde_json::from_slice::<Value>(&message.payload) else { continue };
                    let event = Event::default().event("progress").json_data(body).expect("json");
                    if futures::SinkExt::send(&mut tx, Ok(event)).await.is_err() {
                        return;
                    }
                }
                _ = poll.tick() => {
                    if tx.is_closed() {
                        return; // the client went away
                    }
                    let row = job_row(&pool, job_id).await;
                    let Ok(Some(row)) = row else { continue };
                    let Ok(row) = as_reported(&state, row, true).await else { continue };
                    if row != last {
                        last = row;
                        let event = Event::default().event("job").json_data(job_json(&last, None)).expect("json");
                        if futures::SinkExt::send(&mut tx, Ok(event)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(Sse::new(rx)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The YouTube Data API v3: `search.list` for the ids, then `videos.list` for the
/// durations.
pub struct YoutubeApi {
    pub base_url: String,
    pub key: SecretString,
    pub http: reqwest::Client,
}

impl YoutubeApi {
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, SearchError> {
        let response = self
            .http
            .get(format!("{}/{path}", self.base_url))
            .query(query)
            .query(&[("key", self.key.expose_secret())])
            .send()
            .await
            .map_err(|e| {
                // reqwest puts the URL (with the key) in its message: leave it out.
                let what = if e.is_timeout() {
                    "it did not answer in time"
                } else {
                    "it could not be reached"
                };
                SearchError::Unavailable(what.into())
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let reason = body["error"]["errors"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let message = body["error"]["message"]
            .as_str()
            .map(|m| m.chars().take(200).collect::<String>())
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status.as_u16() == 429
            || status.is_server_error()
            || matches!(
                reason.as_str(),
                "quotaExceeded" | "rateLimitExceeded" | "dailyLimitExceeded"
            )
        {
            Err(SearchError::Unavailable(message))
        } else {
            Err(SearchError::BadGateway(message))
        }
    }
}

#[async_trait]
impl SongSearch for YoutubeApi {
    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        let limit = limit.to_string();
        let found = self
            .get(
                "search",
                &[
                    ("part", "snippet"),
                    ("type", "video"),
                    ("maxResults", &limit),
                    ("q", query),
                ],
            )
            .await?;
        let items = found["items"]
            .as_array()
            .ok_or_else(|| SearchError::BadGateway("the answer has no results list".into()))?;
        let mut hits: Vec<SearchHit> = items
            .iter()
            .filter_map(|item| {
                let video_id = item["id"]["videoId"].as_str()?;
                SourceRef::video(video_id).ok()?;
                let snippet = &item["snippet"];
                Some(SearchHit {
                    video_id: video_id.to_owned(),
                    title: snippet["title"].as_str().unwrap_or_default().to_owned(),
                    channel: snippet["channelTitle"].as_str().map(str::to_owned),
                    duration_s: None,
                    thumbnail: ["high", "medium", "default"]
                        .iter()
                        .find_map(|size| snippet["thumbnails"][size]["url"].as_str())
                        .map(str::to_owned),
                })
            })
            .collect();
        if hits.is_empty() {
            return Ok(hits);
        }
        let ids: Vec<&str> = hits.iter().map(|h| h.video_id.as_str()).collect();
        let details = self
            .get(
                "videos",
                &[("part", "contentDetails"), ("id", &ids.join(","))],
            )
            .await?;
        let durations: HashMap<String, u64> = details["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let id = item["id"].as_str()?;
                let duration =
                    parse_iso8601_duration(item["contentDetails"]["duration"].as_str()?)?;
                Some((id.to_owned(), duration))
            })
            .collect();
        for hit in &mut hits {
            hit.duration_s = durations.get(&hit.video_id).copied();
        }
        Ok(hits)
    }
}

/// `PT1H2M3S` -> 3723 (YouTube's durations; days appear as `P1DT...`).
pub fn parse_iso8601_duration(s: &str) -> Option<u64> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = 0u64;
    if !days.is_empty() {
        total += days.strip_suffix('D')?.parse::<u64>().ok()? * 86_400;
    }
    let mut number = String::new();
    for c in time.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        total += n * match c {
            'H' => 3600,
            'M' => 60,
            'S' => 1,
            _ => return None,
        };
    }
    number.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youtube_durations_parse() {
        assert_eq!(parse_iso8601_duration("PT3M33S"), Some(213));
        assert_eq!(parse_iso8601_duration("PT1H"), Some(3600));
        assert_eq!(parse_iso8601_duration("P1DT1S"), Some(86_401));
        assert_eq!(parse_iso8601_duration("PT0S"), Some(0));
        assert_eq!(parse_iso8601_duration("3M"), None);
        assert_eq!(parse_iso8601_duration("PT3X"), None);
    }
}
