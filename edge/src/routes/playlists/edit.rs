//! The changes to playlists: create (empty, with tracks, an album, or a copy of a playlist
//! I may see), change the details, add tracks, remove or move an entry, delete. Each is
//! one `playlist.*` command; the domain refuses what the owner may not do, the edge what
//! it can tell from the request (malformed ids, tracks not in my library).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use jukebox_domain::playlist::{valid_description, valid_name, Edit, MAX_ENTRIES};
use jukebox_domain::{Command, TrackId};
use jukebox_projections::{music, playlists};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{held, playlist_id, run, run_create, visible};
use crate::commands::CommandHeaders;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::fresh::{models, After};
use crate::routes::library::invalid;
use crate::state::AppState;

/// The most track ids one request names (a larger list goes in several adds).
const MAX_TRACKS_PER_REQUEST: usize = 5_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlaylist {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(max_length = 2000)]
    #[serde(default)]
    description: String,
    #[serde(default)]
    public: bool,
    /// Songs of my library to start with, in order (duplicates allowed).
    #[serde(default)]
    #[schema(max_items = 5000)]
    track_ids: Vec<String>,
    /// An album of my library whose tracks come after `track_ids`.
    album_id: Option<String>,
    /// A playlist I may see (mine or public) whose entries come first: a copy.
    copy_of: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct Created {
    id: Uuid,
    track_count: usize,
}

fn checked_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim().to_owned();
    if !valid_name(&name) {
        return Err(invalid(
            "invalid_playlist_name",
            "a playlist name is 1 to 200 characters, without control characters",
        ));
    }
    Ok(name)
}

fn checked_description(description: &str) -> Result<String, ApiError> {
    if !valid_description(description) {
        return Err(invalid(
            "invalid_playlist_description",
            "a playlist description is at most 2000 characters",
        ));
    }
    Ok(description.to_owned())
}

/// The tracks of `track_ids` (held), then of the album (held by definition).
async fn tracks_to_add(
    state: &AppState,
    user_id: Uuid,
    track_ids: &[String],
    album_id: Option<&str>,
) -> Result<Vec<TrackId>, ApiError> {
    if track_ids.len() > MAX_TRACKS_PER_REQUEST {
        return Err(invalid(
            "too_many_tracks",
            "at most 5000 songs per request; send the rest in another",
        ));
    }
    let mut tracks = held(state, user_id, track_ids).await?;
    if let Some(album_id) = album_id {
        if Uuid::try_parse(album_id).is_err() {
            return Err(invalid("invalid_album_id", "an album id is a UUID"));
        }
        let Some((_, album)) = music::albums::get(&state.pool, user_id, album_id).await? else {
            return Err(ApiError::not_found("no such album in your library"));
        };
        for track in album {
            tracks.push(TrackId::parse(&track.track_id).map_err(|_| {
                ApiError::Internal(anyhow::anyhow!("a stored track id does not parse"))
            })?);
        }
    }
    Ok(tracks)
}

/// `POST /playlists`: 201 with the new playlist's id.
#[utoipa::path(post, path = "/playlists", tag = "playlists", security(("bearer" = [])),
    params(CommandHeaders), request_body = NewPlaylist,
    responses((status = 201, body = Created), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "a song, album or playlist to copy I do not have"),
        (status = 409, body = ErrorBody, description = "more than 10000 tracks"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn create(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewPlaylist>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let name = checked_name(&body.name)?;
    let description = checked_description(&body.description)?;
    after
        .wait(
            &state,
            &[
                models::LIBRARY,
                models::MUSIC,
                models::PLAYLISTS,
                models::PLAYLIST_ENTRIES,
            ],
        )
        .await?;
    let mut tracks = Vec::new();
    if let Some(source) = body.copy_of {
        visible(&state, user.user_id, source).await?;
        let limit = i64::try_from(MAX_ENTRIES).unwrap_or(i64::MAX);
        for item in playlists::items(&state.pool, source, 0, limit).await? {
            tracks.push(TrackId::parse(&item.track_id).map_err(|_| {
                ApiError::Internal(anyhow::anyhow!("a stored track id does not parse"))
            })?);
        }
    }
    tracks.extend(
        tracks_to_add(
            &state,
            user.user_id,
            &body.track_ids,
            body.album_id.as_deref(),
        )
        .await?,
    );
    let playlist_id = Uuid::now_v7();
    let track_count = tracks.len();
    let command = Command::CreatePlaylist {
        playlist_id,
        user_id: user.user_id,
        name,
        description,
        public: body.public,
        tracks,
    };
    let playlist_id = run_create(&state, &headers, user.user_id, playlist_id, command).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: playlist_id,
            track_count,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(max_length = 2000)]
    description: Option<String>,
    public: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Changed {
    id: Uuid,
    command_id: Uuid,
}

/// `PATCH /playlists/{id}`: rename, describe, make public or private (mine only).
#[utoipa::path(patch, path = "/playlists/{playlist_id}", tag = "playlists", security(("bearer" = [])),
    params(("playlist_id" = String, Path, format = Uuid), CommandHeaders), request_body = Change,
    responses((status = 200, body = Changed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "someone else's playlist"),
        (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn change(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<Change>,
) -> Result<Json<Changed>, ApiError> {
    let playlist_id = playlist_id(&raw)?;
    let edit = Edit {
        name: body.name.as_deref().map(checked_name).transpose()?,
        description: body
            .description
            .as_deref()
            .map(checked_description)
            .transpose()?,
        public: body.public,
        ..Edit::default()
    };
    let command = Command::EditPlaylist {
        playlist_id,
        user_id: user.user_id,
        edit,
    };
    let command_id = run(&state, &headers, user.user_id, command).await?;
    Ok(Json(Changed {
        id: playlist_id,
        command_id,
    }))
}

/// `DELETE /playlists/{id}`: 200; mine only.
#[utoipa::path(delete, path = "/playlists/{playlist_id}", tag = "playlists", security(("bearer" = [])),
    params(("playlist_id" = String, Path, format = Uuid), CommandHeaders),
    responses((status = 200, body = Changed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "someone else's playlist"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(super) async fn remove(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Changed>, ApiError> {
    let playlist_id = playlist_id(&raw)?;
    let command = Command::DeletePlaylist {
        playlist_id,
        user_id: user.user_id,
    };
    let command_id = run(&state, &headers, user.user_id, command).await?;
    Ok(Json(Changed {
        id: playlist_id,
        command_id,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTracks {
    /// Songs of my library, appended in order (duplicates allowed).
    #[serde(default)]
    #[schema(max_items = 5000)]
    track_ids: Vec<String>,
    /// An album of my library, appended after `track_ids`.
    album_id: Option<String>,
}

/// `POST /playlists/{id}/tracks`: appends songs (and an album's) in one change.
#[utoipa::path(post, path = "/playlists/{playlist_id}/tracks", tag = "playlists", security(("bearer" = [])),
    params(("playlist_id" = String, Path, format = Uuid), CommandHeaders), request_body = AddTracks,
    responses((status = 200, body = Changed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "someone else's playlist"),
        (status = 404, body = ErrorBody, description = "no such playlist, or a song or album not in my library"),
        (status = 409, body = ErrorBody, description = "more than 10000 tracks"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn add(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<AddTracks>,
) -> Result<Json<Changed>, ApiError> {
    let playlist_id = playlist_id(&raw)?;
    after
        .wait(&state, &[models::LIBRARY, models::MUSIC])
        .await?;
    let add = tracks_to_add(
        &state,
        user.user_id,
        &body.track_ids,
        body.album_id.as_deref(),
    )
    .await?;
    let command = Command::EditPlaylist {
        playlist_id,
        user_id: user.user_id,
        edit: Edit {
            add,
            ..Edit::default()
        },
    };
    let command_id = run(&state, &headers, user.user_id, command).await?;
    Ok(Json(Changed {
        id: playlist_id,
        command_id,
    }))
}

fn entry_number(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid("invalid_entry", "an entry is a number from 1"))
}

/// `DELETE /playlists/{id}/entries/{entry}`: takes that entry out (mine only).
#[utoipa::path(delete, path = "/playlists/{playlist_id}/entries/{entry}", tag = "playlists",
    security(("bearer" = [])),
    params(("playlist_id" = String, Path, format = Uuid), ("entry" = u64, Path, minimum = 1),
        CommandHeaders),
    responses((status = 200, body = Changed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "someone else's playlist"),
        (status = 404, body = ErrorBody, description = "no such playlist or entry"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn remove_entry(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((raw, entry)): Path<(String, String)>,
) -> Result<Json<Changed>, ApiError> {
    let playlist_id = playlist_id(&raw)?;
    let entry = entry_number(&entry)?;
    let command = Command::EditPlaylist {
        playlist_id,
        user_id: user.user_id,
        edit: Edit {
            remove_entries: vec![entry],
            ..Edit::default()
        },
    };
    let command_id = run(&state, &headers, user.user_id, command).await?;
    Ok(Json(Changed {
        id: playlist_id,
        command_id,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTo {
    /// The index, from 0, the entry ends at.
    #[schema(minimum = 0, maximum = 9999)]
    to: u32,
}

/// `POST /playlists/{id}/entries/{entry}/move`: moves the entry to index `to` (mine only).
#[utoipa::path(post, path = "/playlists/{playlist_id}/entries/{entry}/move", tag = "playlists",
    security(("bearer" = [])),
    params(("playlist_id" = String, Path, format = Uuid), ("entry" = u64, Path, minimum = 1),
        CommandHeaders),
    request_body = MoveTo,
    responses((status = 200, body = Changed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "someone else's playlist"),
        (status = 404, body = ErrorBody, description = "no such playlist or entry"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`to` is past the end"),
        (status = 503, body = ErrorBody)))]
pub(super) async fn move_entry(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((raw, entry)): Path<(String, String)>,
    ApiJson(body): ApiJson<MoveTo>,
) -> Result<Json<Changed>, ApiError> {
    let playlist_id = playlist_id(&raw)?;
    let entry = entry_number(&entry)?;
    let command = Command::MovePlaylistEntry {
        playlist_id,
        user_id: user.user_id,
        entry,
        to: body.to as usize,
    };
    let command_id = run(&state, &headers, user.user_id, command).await?;
    Ok(Json(Changed {
        id: playlist_id,
        command_id,
    }))
}
