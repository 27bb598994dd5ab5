//! M3U8 (issue 19): `GET /playlists/{id}/m3u8` writes a playlist out (each entry's
//! location is where its track came from: the YouTube link, the imported URL, else the
//! song id); `POST /playlists/import` makes a playlist of a file's entries, matched to my
//! library by location first, then by artist and title, and lists what it could not match.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;
use jukebox_domain::m3u8::{self, Line, M3uEntry, M3uError, MAX_BYTES};
use jukebox_domain::playlist::MAX_ENTRIES;
use jukebox_domain::{Command, TrackId};
use jukebox_projections::playlists;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{entries, playlist_id, run_create, visible, READS};
use crate::commands::CommandHeaders;
use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::fresh::{models, After};
use crate::routes::library::{invalid, params};
use crate::state::AppState;

pub(super) fn import_route() -> MethodRouter<AppState> {
    // The file's own cap (1 MiB) is checked in the handler, with an answer that says so.
    post(import).layer(DefaultBodyLimit::max(MAX_BYTES + 1))
}

/// `GET /playlists/{id}/m3u8`: the playlist as an extended M3U8 file.
#[utoipa::path(get, path = "/playlists/{playlist_id}/m3u8", tag = "playlists", security(("bearer" = [])),
    params(("playlist_id" = String, Path, format = Uuid)),
    responses((status = 200, content_type = "audio/x-mpegurl", body = String),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such playlist I may see"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn export(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let playlist_id = playlist_id(&raw)?;
    after.wait(&state, READS).await?;
    let playlist = visible(&state, user.user_id, playlist_id).await?;
    let text = m3u8_text(&state, &playlist).await?;
    let file = format!(
        "attachment; filename=\"playlist-{}.m3u8\"",
        playlist.playlist_id
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "audio/x-mpegurl; charset=utf-8".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, file),
        ],
        text,
    )
        .into_response())
}

/// The playlist as an extended M3U8 file (`GET /playlists/{id}/m3u8`, `GET /me/export`).
pub(crate) async fn m3u8_text(
    state: &AppState,
    playlist: &playlists::Summary,
) -> Result<String, ApiError> {
    let playlist_id = playlist.playlist_id;
    let limit = i64::try_from(MAX_ENTRIES).unwrap_or(i64::MAX);
    let items = entries(state, playlist.owner_id, playlist_id, 0, limit).await?;
    let mut ids: Vec<String> = items.iter().map(|(i, _)| i.track_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let sources: HashMap<String, String> =
        playlists::sources_of(&state.pool, playlist.owner_id, &ids)
            .await?
            .into_iter()
            .filter(|(_, kind, _)| kind == "url")
            .map(|(track, _, source)| (track, source))
            .collect();
    let locations: Vec<String> = items
        .iter()
        .map(|(i, _)| match i.track_id.strip_prefix("yt:") {
            Some(video) => format!("https://www.youtube.com/watch?v={video}"),
            None => sources
                .get(&i.track_id)
                .cloned()
                .unwrap_or_else(|| i.track_id.clone()),
        })
        .collect();
    let text = m3u8::write(
        &playlist.name,
        items
            .iter()
            .zip(&locations)
            .map(|((_, track), location)| Line {
                location,
                duration_ms: track.as_ref().map_or(-1000, |t| t.duration_ms),
                artist: track
                    .as_ref()
                    .and_then(|t| t.artists.first())
                    .map_or("", String::as_str),
                title: track.as_ref().map_or("", |t| t.title.as_str()),
            }),
    );
    Ok(text)
}

#[derive(Serialize, ToSchema)]
pub struct Unmatched {
    /// The entry's number in the file, from 1.
    line: usize,
    location: String,
    artist: Option<String>,
    title: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Imported {
    id: Uuid,
    /// Entries matched to songs of my library, now the playlist's tracks in file order.
    matched: usize,
    /// Entries that matched nothing, left out.
    unmatched: Vec<Unmatched>,
}

/// Matches each entry to a track of `user_id`'s library: by song id or YouTube link, by
/// the link it was imported from, else by artist and title (case-insensitive).
async fn matches(
    state: &AppState,
    user_id: Uuid,
    file: &[M3uEntry],
) -> Result<Vec<Option<String>>, ApiError> {
    let direct: Vec<Option<String>> = file
        .iter()
        .map(|e| {
            m3u8::youtube_video_id(&e.location)
                .map(|id| format!("yt:{id}"))
                .or_else(|| TrackId::parse(&e.location).ok().map(|t| t.to_string()))
        })
        .collect();
    let mut wanted: Vec<String> = direct.iter().flatten().cloned().collect();
    wanted.sort();
    wanted.dedup();
    let held = playlists::held_tracks(&state.pool, user_id, &wanted).await?;
    let mut found: Vec<Option<String>> = direct
        .into_iter()
        .map(|d| d.filter(|id| held.contains(id)))
        .collect();
    let locations: Vec<String> = file.iter().map(|e| e.location.clone()).collect();
    let by_source: HashMap<String, String> =
        playlists::tracks_by_source(&state.pool, user_id, &locations)
            .await?
            .into_iter()
            .collect();
    let (mut artists, mut titles) = (Vec::new(), Vec::new());
    for (entry, slot) in file.iter().zip(found.iter_mut()) {
        if slot.is_none() {
            *slot = by_source.get(&entry.location).cloned();
        }
        if let (None, Some(artist), Some(title)) = (&slot, &entry.artist, &entry.title) {
            artists.push(artist.to_lowercase());
            titles.push(title.to_lowercase());
        }
    }
    let by_name: HashMap<(String, String), String> =
        playlists::tracks_by_name(&state.pool, user_id, &artists, &titles)
            .await?
            .into_iter()
            .map(|(artist, title, track)| ((artist, title), track))
            .collect();
    for (entry, slot) in file.iter().zip(found.iter_mut()) {
        if let (None, Some(artist), Some(title)) = (&slot, &entry.artist, &entry.title) {
            *slot = by_name
                .get(&(artist.to_lowercase(), title.to_lowercase()))
                .cloned();
        }
    }
    Ok(found)
}

/// `POST /playlists/import?name=`: a new playlist of an M3U8 file's entries (the body, at
/// most 1 MiB of UTF-8 text and 10,000 entries) that match songs of my library.
#[utoipa::path(post, path = "/playlists/import", tag = "playlists", security(("bearer" = [])),
    params(("name" = Option<String>, Query, min_length = 1, max_length = 200,
        description = "the new playlist's name (default: Imported playlist)"), CommandHeaders),
    request_body(content = String, content_type = "text/plain",
        description = "the M3U8 file (sent as any content type)"),
    responses((status = 201, body = Imported), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "larger than 1 MiB"),
        (status = 422, body = ErrorBody, description = "empty, not text, too many entries, or a bad name"),
        (status = 503, body = ErrorBody)))]
pub(super) async fn import(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    let query = params(query.as_deref())?;
    let name = query
        .get("name")
        .map_or("Imported playlist", String::as_str)
        .trim()
        .to_owned();
    if !jukebox_domain::playlist::valid_name(&name) {
        return Err(invalid(
            "invalid_playlist_name",
            "a playlist name is 1 to 200 characters, without control characters",
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
            "an M3U8 file to import is at most 1 MiB",
        )
    };
    let body = body.map_err(|_| too_large())?;
    if body.is_empty() {
        return Err(invalid(
            "empty_file",
            "send the M3U8 file as the request body",
        ));
    }
    let file = m3u8::parse(&body, MAX_ENTRIES).map_err(|e| match e {
        M3uError::TooLarge => too_large(),
        M3uError::NotText => invalid("not_text", e.to_string()),
        M3uError::TooManyEntries(_) => invalid("too_many_entries", e.to_string()),
    })?;
    after.wait(&state, &[models::LIBRARY, models::JOBS]).await?;
    let found = matches(&state, user.user_id, &file).await?;
    let mut tracks = Vec::new();
    let mut unmatched = Vec::new();
    for (line, (entry, track)) in (1..).zip(file.into_iter().zip(found)) {
        match track.and_then(|t| TrackId::parse(&t).ok()) {
            Some(track) => tracks.push(track),
            None => unmatched.push(Unmatched {
                line,
                location: entry.location,
                artist: entry.artist,
                title: entry.title,
            }),
        }
    }
    let playlist_id = Uuid::now_v7();
    let matched = tracks.len();
    let command = Command::CreatePlaylist {
        playlist_id,
        user_id: user.user_id,
        name,
        description: String::new(),
        public: false,
        tracks,
    };
    let playlist_id = run_create(&state, &headers, user.user_id, playlist_id, command).await?;
    Ok((
        StatusCode::CREATED,
        Json(Imported {
            id: playlist_id,
            matched,
            unmatched,
        }),
    ))
}
