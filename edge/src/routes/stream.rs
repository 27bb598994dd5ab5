//! `GET /stream/{song_id}` on the API: a signed URL for a song the caller may play.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::fresh::{models, After};
use crate::routes::library::params;
use crate::routes::playlists::playlist_id;
use crate::state::AppState;
use crate::stream::{song_access, Access};

pub fn routes() -> Router<AppState> {
    Router::new().route("/stream/{song_id}", get(issue))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(issue))]
pub(crate) struct Doc;

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // `issue` writes it as JSON; here for the document
struct StreamUrl {
    /// On the stream role; valid for `STREAM_URL_TTL_S`, for this song and user only.
    url: String,
    expires_at: Option<String>,
    /// The cover picture's signed link, when the song has one.
    cover_url: Option<String>,
}

/// `GET /stream/{song_id}?playlist=` on the API (bearer): 302 to a signed URL, or
/// `{url, expires_at, cover_url?}` with `Accept: application/json` (`cover_url` when the
/// song has a cover picture). With `playlist`, a song of a public playlist I may see that
/// is not in my library plays from its owner's library (ADR 32).
#[utoipa::path(get, path = "/stream/{song_id}", tag = "library", security(("bearer" = [])),
    params(("song_id" = String, Path, min_length = 3, max_length = 200, pattern = r"^[!-9;-~][!-~]*:[!-~]+$"),
        ("playlist" = Option<String>, Query, format = Uuid,
            description = "a playlist I may see that lists the song: play it from the owner's library")),
    responses((status = 200, body = StreamUrl, description = "with `Accept: application/json`"),
        (status = 302, description = "to the signed URL"),
        (status = 400, body = crate::error::ErrorBody, description = "a NUL character in the id"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "not in my library (nor in the playlist's owner's)"),
        (status = 404, body = crate::error::ErrorBody, description = "no such song"),
        (status = 422, body = crate::error::ErrorBody, description = "`playlist` is not a playlist id"),
        (status = 503, body = crate::error::ErrorBody, description = "streaming not configured")))]
pub async fn issue(
    State(state): State<AppState>,
    user: AuthUser,
    after: After,
    Path(song_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = params(query.as_deref())?;
    let playlist = query
        .get("playlist")
        .map(|raw| playlist_id(raw))
        .transpose()?;
    let Some(issuer) = state.stream.as_ref() else {
        return Err(ApiError::Unavailable(
            "streaming is not configured on this server (STREAM_SIGNING_SECRET)".into(),
        ));
    };
    let mut reads = vec![models::LIBRARY];
    if playlist.is_some() {
        reads.extend([models::PLAYLISTS, models::PLAYLIST_ENTRIES]);
    }
    after.wait(&state, &reads).await?;
    // The link names whose copy plays: mine, or the public playlist's owner's.
    let mut listener = user.user_id;
    let mut access = song_access(&state.pool, &song_id, user.user_id, user.is_admin()).await?;
    if let (Access::Denied, Some(playlist)) = (&access, playlist) {
        if let Some(owner) = playlist_owner(&state, user.user_id, playlist, &song_id).await? {
            access = song_access(&state.pool, &song_id, owner, false).await?;
            listener = owner;
        }
    }
    let object = match access {
        Access::UnknownSong => return Err(ApiError::not_found("no such song")),
        Access::Denied => {
            return Err(ApiError::forbidden(
                "not_in_library",
                "this song is not in your library; import it first",
            ))
        }
        Access::Granted(object) => object,
    };
    let now = OffsetDateTime::now_utc();
    let (url, expires) = issuer.url(&song_id, listener, now);
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let expires_at = OffsetDateTime::from_unix_timestamp(expires)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        let mut body = json!({ "url": url, "expires_at": expires_at });
        if object.cover.is_some() {
            body["cover_url"] = json!(issuer.cover_url(&song_id, listener, now));
        }
        return Ok(Json(body).into_response());
    }
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}

/// The owner of `playlist` when `user_id` may see it and it lists `song_id`.
async fn playlist_owner(
    state: &AppState,
    user_id: uuid::Uuid,
    playlist: uuid::Uuid,
    song_id: &str,
) -> Result<Option<uuid::Uuid>, ApiError> {
    use jukebox_projections::playlists;
    let Some(found) = playlists::get(&state.pool, playlist).await? else {
        return Ok(None);
    };
    if !(found.public || found.owner_id == user_id) {
        return Ok(None);
    }
    Ok(playlists::lists_track(&state.pool, playlist, song_id)
        .await?
        .then_some(found.owner_id))
}
