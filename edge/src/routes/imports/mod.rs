//! Search and import (issue 4): `GET /songs/search`, `POST /songs/import`,
//! `POST /songs/upload`, `GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/events`, and
//! the playlist/channel imports under `/imports/collections` (`collections.rs`).
//!
//! The outside world comes in through `crate::ports`; live progress through
//! `crate::progress`.

mod collections;
mod events;
mod job_row;
mod jobs;
mod quota;
mod upload;

pub use jobs::{Job, JobError, JobRetry, JobSource};

use std::collections::{HashMap, HashSet};

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::{Command, SourceRef};
use jukebox_nats::OutcomeStatus;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::fresh::{models, After};
use crate::ports::{ImportSettings, SearchError};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/songs/search", get(search))
        .route("/songs/import", post(import))
        .route("/imports/collections/preview", post(collections::preview))
        .route("/imports/collections/confirm", post(collections::confirm))
        .route(
            "/imports/collections/{collection_id}",
            get(collections::progress),
        )
        // The upload's size is enforced while it streams (UPLOAD_MAX_BYTES).
        .route(
            "/songs/upload",
            post(upload::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/jobs", get(jobs::list_jobs))
        .route("/jobs/{job_id}", get(jobs::get_job))
        .route("/jobs/{job_id}/events", get(events::job_events))
}

#[derive(OpenApi)]
#[openapi(paths(
    search,
    import,
    collections::preview,
    collections::confirm,
    collections::progress,
    upload::upload,
    jobs::list_jobs,
    jobs::get_job,
    events::job_events
))]
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
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody, description = "more searches this minute than SEARCH_PER_MINUTE"),
        (status = 502, body = ErrorBody, description = "YouTube answered with an error"),
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
    let settings = settings(&state)?;
    let hits = match settings.search_guard.cached(q, limit) {
        Some(hits) => hits,
        None => {
            let guard = &settings.search_guard;
            guard
                .admit(user.user_id)
                .map_err(|wait| ApiError::Throttled {
                    wait,
                    code: "search_rate_limited",
                    message: format!(
                    "you can search YouTube {} times a minute; try again in {{seconds}} seconds",
                    guard.per_minute()
                ),
                })?;
            let hits = youtube_search(settings, q, limit).await?;
            guard.store(q, limit, hits)
        }
    };
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

/// YouTube's list for a query, its errors as answers.
async fn youtube_search(
    settings: &ImportSettings,
    q: &str,
    limit: usize,
) -> Result<Vec<crate::ports::SearchHit>, ApiError> {
    settings.search.search(q, limit).await.map_err(|e| match e {
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
    })
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
        (status = 403, body = ErrorBody, description = "`quota_exceeded`: my library is at IMPORT_MAX_TRACKS_PER_USER or IMPORT_MAX_BYTES_PER_USER"),
        (status = 422, body = ErrorBody, description = "not a usable source"),
        (status = 429, body = ErrorBody, description = "too many of my imports in progress"),
        (status = 503, body = ErrorBody)))]
async fn import(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ImportRequest>,
) -> Result<Response, ApiError> {
    let invalid = |e: jukebox_domain::SourceError| ApiError::unprocessable("invalid_source", e.0);
    let source = match (body.video_id, body.url) {
        (Some(video_id), None) => SourceRef::video(video_id.trim()).map_err(invalid)?,
        (None, Some(url)) if is_collection_link(&url) => {
            return Err(ApiError::unprocessable(
                "is_a_collection",
                "this link is a playlist or channel: preview it with POST /imports/collections/preview, then import it whole with POST /imports/collections/confirm",
            ))
        }
        (None, Some(url)) => SourceRef::url(&url).map_err(invalid)?,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_source",
                "send either video_id or url",
            ))
        }
    };
    within_job_cap(&state, &after, user.user_id, 1).await?;
    within_quota(&state, &after, user.user_id, 1, 0).await?;
    request_import(&state, &headers, user.user_id, Uuid::now_v7(), source).await
}

/// Refuses `adding` more jobs when the user's unfinished ones would pass
/// `IMPORT_MAX_JOBS_PER_USER` (counted on `jobs`, after the caller's own writes).
pub(super) async fn within_job_cap(
    state: &AppState,
    after: &After,
    user_id: Uuid,
    adding: usize,
) -> Result<(), ApiError> {
    let cap = settings(state)?.max_jobs_per_user;
    after.wait(state, &[models::JOBS]).await?;
    let unfinished = jukebox_projections::imports::jobs::unfinished(&state.pool, user_id).await?;
    let unfinished = usize::try_from(unfinished).unwrap_or(usize::MAX);
    if unfinished.saturating_add(adding) > cap {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_imports",
            format!(
                "you have {unfinished} imports in progress and the limit is {cap} per user \
                 (IMPORT_MAX_JOBS_PER_USER); {adding} more would pass it: wait for some to finish"
            ),
        ));
    }
    Ok(())
}

/// Refuses `adding` new tracks (of `adding_bytes` known bytes) that would pass the
/// user's quota (ADR 41); nothing is read when no quota is set.
pub(super) async fn within_quota(
    state: &AppState,
    after: &After,
    user_id: Uuid,
    adding: u64,
    adding_bytes: u64,
) -> Result<(), ApiError> {
    let quota = settings(state)?.quota;
    match quota::current(state, after, quota, user_id).await? {
        Some(usage) => usage.admit(adding, adding_bytes),
        None => Ok(()),
    }
}

/// A YouTube playlist or channel link (`/playlist?list=`, `/@name`, `/channel/`, `/c/`,
/// `/user/`): one video with `list=` beside it is still that video. Other sites' lists
/// are recognised by yt-dlp, and the job fails naming the collection routes.
fn is_collection_link(url: &str) -> bool {
    let url = url.trim();
    if jukebox_domain::youtube_video_id(url).is_some() {
        return false;
    }
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let youtube = matches!(
        host.to_ascii_lowercase().as_str(),
        "youtube.com" | "www.youtube.com" | "m.youtube.com" | "music.youtube.com"
    );
    youtube
        && (path.starts_with("playlist")
            || path.starts_with('@')
            || path.starts_with("channel/")
            || path.starts_with("c/")
            || path.starts_with("user/"))
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
