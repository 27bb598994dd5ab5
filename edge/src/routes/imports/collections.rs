//! Whole playlists, channels and feeds (issue 20, ADR 35):
//! `POST /imports/collections/preview` lists the URL (yt-dlp `--flat-playlist`, capped)
//! and says what an import would do; `POST /imports/collections/confirm` lists it again
//! and sends one `ImportCollection` (the entries not taken before, one job each, and the
//! playlist); `GET /imports/collections/{collection_id}` is its progress.
//!
//! Confirm lists again rather than trusting a list from the client: what is imported is
//! what the source lists now, and a source gone since the preview is refused whole.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jukebox_domain::collection::{self, CollectionEntry, SkippedEntry};
use jukebox_domain::{CollectionImportEvent, Command, SourceRef};
use jukebox_nats::OutcomeStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::quota::{self, QuotaUse};
use super::settings;
use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::fresh::{models, After};
use crate::ports::{ImportSettings, ListError};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CollectionRequest {
    /// A playlist, channel or feed link (anything yt-dlp lists as a playlist).
    url: String,
}

#[derive(Serialize, ToSchema)]
struct PreviewEntry {
    /// Its place in the listing, from 1.
    position: u32,
    title: Option<String>,
    /// The song id it will have.
    track_id: String,
    /// Someone imported it already: it is added without a download.
    stored: bool,
    in_library: bool,
}

#[derive(Serialize, ToSchema)]
struct Skipped {
    position: u32,
    title: Option<String>,
    url: Option<String>,
    /// `private`, `deleted`, `too_long` or `not_audio`.
    #[schema(example = "private")]
    reason: &'static str,
}

impl From<&SkippedEntry> for Skipped {
    fn from(s: &SkippedEntry) -> Self {
        Self {
            position: s.position,
            title: s.title.clone(),
            url: s.url.clone(),
            reason: s.reason.as_str(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct Preview {
    url: String,
    /// Names it in `GET /imports/collections/{collection_id}` once confirmed.
    collection_id: String,
    title: Option<String>,
    /// How many entries the source has (beyond the cap when `capped`).
    entry_count: u64,
    /// The most entries one import takes (`IMPORT_COLLECTION_MAX_ENTRIES`).
    cap: usize,
    /// More entries than `cap`: only the first `cap` are listed and imported.
    capped: bool,
    /// Entries that would be imported.
    importable: usize,
    /// Of those, already in my library.
    in_library: usize,
    /// Of those, already stored on this server (added without a download).
    stored: usize,
    entries: Vec<PreviewEntry>,
    skipped: Vec<Skipped>,
    /// A sentence for people when the list was cut at the cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// My use against the per-user quota, when one is set (ADR 41).
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<PreviewQuota>,
}

#[derive(Serialize, ToSchema)]
struct PreviewQuota {
    #[serde(flatten)]
    usage: QuotaUse,
    /// Entries not in my library yet: the tracks this import would add.
    new_tracks: usize,
    /// How many of them fit; confirming is refused unless all of them do.
    fits: usize,
    /// A sentence for people when not all of them fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl PreviewQuota {
    fn new(usage: QuotaUse, new_tracks: usize) -> Self {
        let fits = usage.room().map_or(new_tracks, |room| {
            new_tracks.min(usize::try_from(room).unwrap_or(usize::MAX))
        });
        let note = (fits < new_tracks).then(|| {
            format!(
                "your quota leaves room for {fits} of the {new_tracks} new tracks in this list; \
                 it cannot be imported until they all fit"
            )
        });
        Self {
            usage,
            new_tracks,
            fits,
            note,
        }
    }
}

/// A listing, classified.
struct Listed {
    title: Option<String>,
    total: u64,
    capped: bool,
    /// With their positions.
    entries: Vec<(u32, CollectionEntry)>,
    skipped: Vec<SkippedEntry>,
}

async fn list(settings: &ImportSettings, url: &str) -> Result<Listed, ApiError> {
    let cap = settings.collection_cap;
    let listing = settings
        .collections
        .list(url, cap)
        .await
        .map_err(|e| match e {
            ListError::OneTrack(message) => ApiError::unprocessable("not_a_collection", message),
            ListError::Refused(message) => ApiError::unprocessable("invalid_collection", message),
            ListError::Unavailable(message) | ListError::RateLimited(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "collection_unavailable",
                format!("the list could not be read right now; try again later ({message})"),
            ),
        })?;
    let take = listing.entries.len().min(cap);
    let (entries, skipped) =
        collection::classify_all(&listing.entries[..take], settings.max_duration_s);
    Ok(Listed {
        title: listing.title,
        total: listing.total,
        capped: listing.capped,
        entries,
        skipped,
    })
}

fn source_url(url: &str) -> Result<String, ApiError> {
    match SourceRef::url(url) {
        Ok(SourceRef::Url { url }) => Ok(url),
        Ok(_) => unreachable!("SourceRef::url makes a Url"),
        Err(e) => Err(ApiError::unprocessable("invalid_source", e.0)),
    }
}

fn cap_note(listed: &Listed, cap: usize) -> Option<String> {
    listed.capped.then(|| {
        format!(
            "this list has {} entries; one import takes the first {cap}",
            listed.total
        )
    })
}

/// `POST /imports/collections/preview {url}`: what importing the list would do.
#[utoipa::path(post, path = "/imports/collections/preview", tag = "imports", security(("bearer" = [])),
    request_body = CollectionRequest,
    responses((status = 200, body = Preview),
        (status = 400, body = ErrorBody, description = "malformed JSON"), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not a list (`not_a_collection`: one track), gone, or not allowed"),
        (status = 503, body = ErrorBody, description = "the site refused or failed for now (429, 5xx)")))]
pub(super) async fn preview(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CollectionRequest>,
) -> Result<Json<Preview>, ApiError> {
    let settings = settings(&state)?;
    let url = source_url(&body.url)?;
    let listed = list(settings, &url).await?;
    let ids: Vec<String> = listed
        .entries
        .iter()
        .map(|(_, e)| e.track_id.to_string())
        .collect();
    after.wait(&state, &[models::LIBRARY]).await?;
    let (stored, mine) =
        jukebox_projections::library::marks(&state.pool, user.user_id, &ids).await?;
    let stored: HashSet<String> = stored.into_iter().collect();
    let mine: HashSet<String> = mine.into_iter().collect();
    let entries: Vec<PreviewEntry> = listed
        .entries
        .iter()
        .map(|(position, e)| PreviewEntry {
            position: *position,
            title: e.title.clone(),
            track_id: e.track_id.to_string(),
            stored: stored.contains(e.track_id.as_str()),
            in_library: mine.contains(e.track_id.as_str()),
        })
        .collect();
    let new_tracks = entries.iter().filter(|e| !e.in_library).count();
    let quota = quota::current(&state, &after, settings.quota, user.user_id)
        .await?
        .map(|usage| PreviewQuota::new(usage, new_tracks));
    Ok(Json(Preview {
        collection_id: collection::key(&url),
        title: listed.title.clone(),
        entry_count: listed.total,
        cap: settings.collection_cap,
        capped: listed.capped,
        importable: entries.len(),
        in_library: entries.iter().filter(|e| e.in_library).count(),
        stored: entries.iter().filter(|e| e.stored).count(),
        note: cap_note(&listed, settings.collection_cap),
        quota,
        skipped: listed.skipped.iter().map(Skipped::from).collect(),
        entries,
        url,
    }))
}

/// Refuses the whole list when its tracks not in the library yet would pass the quota.
async fn within_quota(
    state: &AppState,
    after: &After,
    user_id: Uuid,
    listed: &Listed,
) -> Result<(), ApiError> {
    let Some(usage) = quota::current(state, after, settings(state)?.quota, user_id).await? else {
        return Ok(());
    };
    let ids: Vec<String> = listed
        .entries
        .iter()
        .map(|(_, e)| e.track_id.to_string())
        .collect();
    let (_, mine) = jukebox_projections::library::marks(&state.pool, user_id, &ids).await?;
    let new_tracks = ids.len().saturating_sub(mine.len());
    usage.admit(new_tracks as u64, 0)
}

#[derive(Serialize, ToSchema)]
struct Confirmed {
    collection_id: String,
    playlist_id: Uuid,
    /// Entries this import added (one job each); 0 when every entry was taken before.
    added: usize,
    /// Entries a previous import of this URL took already.
    already_imported: usize,
    skipped: Vec<Skipped>,
    /// `GET` it to follow the import.
    location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// `POST /imports/collections/confirm {url}`: lists the URL again and imports every entry
/// not imported before, into a playlist in the list's order.
#[utoipa::path(post, path = "/imports/collections/confirm", tag = "imports", security(("bearer" = [])),
    params(CommandHeaders), request_body = CollectionRequest,
    responses((status = 202, body = Confirmed),
        (status = 400, body = ErrorBody, description = "malformed JSON or headers"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`quota_exceeded`: the list's new tracks do not all fit my quota; nothing is imported"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not a list (`not_a_collection`), gone, nothing importable"),
        (status = 429, body = ErrorBody, description = "too many of my imports in progress"),
        (status = 503, body = ErrorBody)))]
pub(super) async fn confirm(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CollectionRequest>,
) -> Result<Response, ApiError> {
    let settings = settings(&state)?;
    let url = source_url(&body.url)?;
    let listed = list(settings, &url).await?;
    if listed.entries.is_empty() {
        return Err(ApiError::unprocessable(
            "nothing_to_import",
            format!(
                "none of the {} entries of this list can be imported (private, deleted, too long or not audio)",
                listed.skipped.len()
            ),
        ));
    }
    super::within_job_cap(&state, &after, user.user_id, listed.entries.len()).await?;
    within_quota(&state, &after, user.user_id, &listed).await?;
    let collection_id = collection::id(user.user_id, &url);
    let playlist_id = collection::playlist_id(&collection_id);
    let listed_count = listed.entries.len();
    let note = cap_note(&listed, settings.collection_cap);
    let command = Command::ImportCollection {
        collection_id: collection_id.clone(),
        batch_id: Uuid::now_v7(),
        user_id: user.user_id,
        url: url.clone(),
        title: listed.title.clone().unwrap_or_else(|| url.clone()),
        playlist_id,
        entries: listed.entries.into_iter().map(|(_, e)| e).collect(),
        skipped: listed.skipped.clone(),
        listed: listed.total,
        capped: listed.capped,
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    let outcome = send(&state, &envelope).await?;
    let added = match &outcome {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => outcome
            .events
            .iter()
            .filter(|e| e.event_type == "ImportRequested")
            .count(),
        Some(outcome) => return Err(rejection(outcome.clone())),
        // Not answered in time: the jobs are on their way; the progress route says.
        None => listed_count,
    };
    let key = collection::key(&url);
    let location = format!("{}/imports/collections/{key}", state.mount);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(Confirmed {
            collection_id: key,
            playlist_id,
            added,
            already_imported: listed_count.saturating_sub(added),
            skipped: listed.skipped.iter().map(Skipped::from).collect(),
            location,
            note,
        }),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
struct ProgressEntry {
    job_id: Uuid,
    title: Option<String>,
    track_id: String,
    /// The job's status (`requested` ... `completed`, `failed`).
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Progress {
    collection_id: String,
    url: String,
    title: String,
    playlist_id: Uuid,
    /// Jobs requested by every import of this URL.
    total: usize,
    done: usize,
    failed: usize,
    remaining: usize,
    entries: Vec<ProgressEntry>,
    /// Skipped by the latest import, with the reason.
    skipped: Vec<Skipped>,
    /// The latest position among the jobs' rows: a read passing it (`?after=`) shows
    /// every finished entry in the library.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<String>,
}

/// `GET /imports/collections/{collection_id}`: done / failed / remaining of my import of
/// that list, each job's status, and what was skipped.
#[utoipa::path(get, path = "/imports/collections/{collection_id}", tag = "imports", security(("bearer" = [])),
    params(("collection_id" = String, Path, description = "from the preview or confirm answer")),
    responses((status = 200, body = Progress), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn progress(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Progress>, ApiError> {
    let not_found = || ApiError::not_found("no import of this list here");
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let aggregate_id = format!("{}/{key}", user.user_id);
    let events = jukebox_nats::log::aggregate(
        &state.pool,
        collection::AGGREGATE_TYPE,
        &aggregate_id,
        None,
        None,
    )
    .await?;
    let mut entries: Vec<(Uuid, CollectionEntry)> = Vec::new();
    let mut summary = None;
    for record in events {
        let Ok(CollectionImportEvent::CollectionImported {
            batch_id,
            url,
            title,
            playlist_id,
            added,
            skipped,
            ..
        }) = serde_json::from_value(record.payload)
        else {
            continue;
        };
        entries.extend(
            added
                .into_iter()
                .enumerate()
                .map(|(index, e)| (collection::job_id(batch_id, index), e)),
        );
        summary = Some((url, title, playlist_id, skipped));
    }
    let Some((url, title, playlist_id, skipped)) = summary else {
        return Err(not_found());
    };
    after.wait(&state, &[models::JOBS]).await?;
    let ids: Vec<Uuid> = entries.iter().map(|(job_id, _)| *job_id).collect();
    let rows: HashMap<Uuid, jukebox_projections::imports::JobRow> =
        jukebox_projections::imports::jobs::many(&state.pool, &ids)
            .await?
            .into_iter()
            .map(|row| (row.job_id, row))
            .collect();
    let position = rows
        .values()
        .filter_map(|r| {
            r.position
                .as_deref()?
                .parse::<jukebox_nats::Position>()
                .ok()
        })
        .max()
        .map(|p| p.to_string());
    let entries: Vec<ProgressEntry> = entries
        .into_iter()
        .map(|(job_id, entry)| {
            let row = rows.get(&job_id);
            ProgressEntry {
                job_id,
                title: entry.title,
                track_id: row
                    .and_then(|r| r.track_id.clone())
                    .unwrap_or_else(|| entry.track_id.to_string()),
                // Requested a moment ago, not projected yet.
                status: row.map_or_else(|| "requested".to_owned(), |r| r.status.clone()),
                error: row.and_then(|r| r.error_message.clone()),
            }
        })
        .collect();
    let done = entries.iter().filter(|e| e.status == "completed").count();
    let failed = entries.iter().filter(|e| e.status == "failed").count();
    Ok(Json(Progress {
        collection_id: key,
        url,
        title,
        playlist_id,
        total: entries.len(),
        done,
        failed,
        remaining: entries.len() - done - failed,
        entries,
        skipped: skipped.iter().map(Skipped::from).collect(),
        position,
    }))
}
