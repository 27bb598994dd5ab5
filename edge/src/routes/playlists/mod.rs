//! `/playlists` (issue 19, ADR 27): my playlists and the public ones of others. Reads come
//! from the `playlists` and `playlist_entries` read models (song details from the owner's
//! `music` entries); changes are `playlist.*` commands, answered with their position so
//! the next read shows them (`crate::fresh`). `edit.rs`: the changes; `m3u.rs`: M3U8
//! export and import. Someone else's private playlist is 404, like an unknown one.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jukebox_domain::{Command, TrackId};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::music;
use jukebox_projections::playlists::{self, Summary};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{envelope, rejection, send};
use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::fresh::{models, After};
use crate::routes::library::{invalid, limit_offset, params};
use crate::state::AppState;

mod edit;
mod m3u;
pub(crate) use m3u::m3u8_text;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/playlists", get(list).post(edit::create))
        .route("/playlists/import", m3u::import_route())
        .route(
            "/playlists/{playlist_id}",
            get(open).patch(edit::change).delete(edit::remove),
        )
        .route("/playlists/{playlist_id}/tracks", post(edit::add))
        .route(
            "/playlists/{playlist_id}/entries/{entry}",
            delete(edit::remove_entry),
        )
        .route(
            "/playlists/{playlist_id}/entries/{entry}/move",
            post(edit::move_entry),
        )
        .route("/playlists/{playlist_id}/m3u8", get(m3u::export))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    open,
    edit::create,
    edit::change,
    edit::remove,
    edit::add,
    edit::remove_entry,
    edit::move_entry,
    m3u::export,
    m3u::import
))]
pub(crate) struct Doc;

/// What every playlist read waits for.
const READS: &[jukebox_projections::ReadModel] =
    &[models::PLAYLISTS, models::PLAYLIST_ENTRIES, models::MUSIC];

const MAX_PAGE: i64 = 500;
const DEFAULT_PAGE: i64 = 100;

#[derive(Serialize, ToSchema)]
pub struct PlaylistItem {
    id: Uuid,
    name: String,
    description: String,
    public: bool,
    /// Mine (else someone's public playlist: I can play and copy it, not change it).
    owned: bool,
    track_count: i32,
    duration_ms: i64,
    created_at: String,
    updated_at: String,
}

fn time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn item(p: Summary, user_id: Uuid) -> PlaylistItem {
    PlaylistItem {
        id: p.playlist_id,
        owned: p.owner_id == user_id,
        name: p.name,
        description: p.description,
        public: p.public,
        track_count: p.entry_count,
        duration_ms: p.duration_ms,
        created_at: time(p.created_at),
        updated_at: time(p.updated_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct PlaylistList {
    /// Mine by name, then others' public ones by name.
    playlists: Vec<PlaylistItem>,
}

/// `GET /playlists`: my playlists, then the public playlists of others.
#[utoipa::path(get, path = "/playlists", tag = "playlists", security(("bearer" = [])),
    responses((status = 200, body = PlaylistList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
) -> Result<Json<PlaylistList>, ApiError> {
    after.wait(&state, READS).await?;
    let all = playlists::visible(&state.pool, user.user_id, true).await?;
    Ok(Json(PlaylistList {
        playlists: all.into_iter().map(|p| item(p, user.user_id)).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct EntryItem {
    /// The entry's own number: what a removal or a move names.
    entry: i64,
    /// Its index in the playlist, from 0.
    position: i64,
    track_id: String,
    /// False when the owner no longer has the track (it stays listed, unplayable).
    available: bool,
    title: Option<String>,
    artists: Vec<String>,
    album: Option<String>,
    album_id: Option<String>,
    duration_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cover_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PlaylistPage {
    #[serde(flatten)]
    playlist: PlaylistItem,
    /// `limit` entries from `offset`, in order.
    entries: Vec<EntryItem>,
}

pub(crate) fn playlist_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| invalid("invalid_playlist_id", "a playlist id is a UUID"))
}

/// The playlist if `user_id` may see it (theirs, or public).
pub(crate) async fn visible(
    state: &AppState,
    user_id: Uuid,
    playlist_id: Uuid,
) -> Result<Summary, ApiError> {
    match playlists::get(&state.pool, playlist_id).await? {
        Some(p) if p.owner_id == user_id || p.public => Ok(p),
        _ => Err(ApiError::not_found("no such playlist")),
    }
}

/// Entries with their songs' details, from the owner's library.
pub(crate) async fn entries(
    state: &AppState,
    owner: Uuid,
    playlist_id: Uuid,
    offset: i64,
    limit: i64,
) -> Result<Vec<(playlists::Item, Option<music::Track>)>, ApiError> {
    let items = playlists::items(&state.pool, playlist_id, offset, limit).await?;
    let mut ids: Vec<String> = items.iter().map(|i| i.track_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let tracks = music::tracks::many(&state.pool, owner, &ids).await?;
    Ok(items
        .into_iter()
        .map(|i| {
            let track = tracks.iter().find(|t| t.track_id == i.track_id).cloned();
            (i, track)
        })
        .collect())
}

/// `GET /playlists/{id}?limit=&offset=`: the playlist and a page of its entries.
#[utoipa::path(get, path = "/playlists/{playlist_id}", tag = "playlists", security(("bearer" = [])),
    params(("playlist_id" = String, Path, format = Uuid),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 100000)),
    responses((status = 200, body = PlaylistPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such playlist I may see"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn open(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<PlaylistPage>, ApiError> {
    let playlist_id = playlist_id(&raw)?;
    let mut query = params(query.as_deref())?;
    query.remove("after");
    let (limit, offset) = limit_offset(&query, DEFAULT_PAGE, MAX_PAGE)?;
    after.wait(&state, READS).await?;
    let playlist = visible(&state, user.user_id, playlist_id).await?;
    let owner = playlist.owner_id;
    let covers = state.stream.as_ref();
    let now = OffsetDateTime::now_utc();
    let entries = entries(&state, owner, playlist_id, offset, limit)
        .await?
        .into_iter()
        .zip(offset..)
        .map(|((i, track), position)| EntryItem {
            entry: i.entry_no,
            position,
            available: track.is_some(),
            cover_url: track
                .as_ref()
                // The owner's copy, as the songs of a public playlist play (ADR 32).
                .filter(|t| t.cover_stored)
                .zip(covers)
                .map(|(t, issuer)| issuer.cover_url(&t.track_id, owner, now)),
            title: track.as_ref().map(|t| t.title.clone()),
            artists: track
                .as_ref()
                .map(|t| t.artists.clone())
                .unwrap_or_default(),
            album: track.as_ref().map(|t| t.album.clone()),
            album_id: track.as_ref().map(|t| t.album_id.clone()),
            duration_ms: track.as_ref().map_or(0, |t| t.duration_ms),
            track_id: i.track_id,
        })
        .collect();
    Ok(Json(PlaylistPage {
        playlist: item(playlist, user.user_id),
        entries,
    }))
}

/// Track ids as sent, parsed; each must be in `user_id`'s library.
pub(crate) async fn held(
    state: &AppState,
    user_id: Uuid,
    raw: &[String],
) -> Result<Vec<TrackId>, ApiError> {
    let mut tracks = Vec::with_capacity(raw.len());
    for id in raw {
        tracks.push(TrackId::parse(id).map_err(|_| {
            invalid(
                "invalid_song_id",
                format!("{id:?} is not a song id (they look like yt:<video id> or url:<hash>)"),
            )
        })?);
    }
    let mut wanted: Vec<String> = raw.to_vec();
    wanted.sort();
    wanted.dedup();
    let found = playlists::held_tracks(&state.pool, user_id, &wanted).await?;
    if let Some(missing) = wanted.iter().find(|id| !found.contains(id)) {
        return Err(ApiError::not_found(format!(
            "{missing} is not in your library; add it there first"
        )));
    }
    Ok(tracks)
}

/// Sends a playlist command; a refusal is its 4xx.
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    command: Command,
) -> Result<Uuid, ApiError> {
    Ok(committed(state, headers, user_id, command)
        .await?
        .command_id)
}

/// Sends a command that makes a playlist with `playlist_id`; answers the playlist's id,
/// which is the first request's when this one replays its `Idempotency-Key` (the id a
/// retry picked afresh names nothing).
pub(crate) async fn run_create(
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    playlist_id: Uuid,
    command: Command,
) -> Result<Uuid, ApiError> {
    let outcome = committed(state, headers, user_id, command).await?;
    Ok(outcome
        .events
        .iter()
        .find(|e| e.aggregate_type == jukebox_domain::playlist::AGGREGATE_TYPE)
        .and_then(|e| e.aggregate_id.parse().ok())
        .unwrap_or(playlist_id))
}

async fn committed(
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    command: Command,
) -> Result<jukebox_nats::CommandOutcome, ApiError> {
    let envelope = envelope(headers, Some(user_id), command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(outcome),
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}
