//! `/me/favourites` (issue 19, ADR 26): star and unstar a track, album or artist of my
//! library (`PUT`/`DELETE /me/favourites/{kind}/{id}`), and list what I starred
//! (`GET /me/favourites`). An id that is not in my library is 404, whoever's it is.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, put};
use axum::{Json, Router};
use jukebox_domain::{Command, FavouriteItem, FavouriteKind};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::{favourites, music};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::library::music::{
    album_item, album_track, artist_item, AlbumItem, AlbumTrack, ArtistItem,
};
use super::library::{limit_offset, params};
use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::fresh::{models, After};
use crate::marks::MarkSet;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me/favourites", get(list))
        .route("/me/favourites/{kind}/{item_id}", put(star).delete(unstar))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, star, unstar), components(schemas(Kind)))]
pub(crate) struct Doc;

/// What can be starred.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // the document's
pub enum Kind {
    Track,
    Album,
    Artist,
}

/// The item, parsed; 422 with what a valid one looks like.
fn item(kind: &str, raw: &str) -> Result<FavouriteItem, ApiError> {
    let kind = FavouriteKind::parse(kind).ok_or_else(|| {
        ApiError::unprocessable("invalid_kind", "kind must be track, album or artist")
    })?;
    FavouriteItem::parse(kind, raw)
        .map_err(|e| ApiError::unprocessable("invalid_item", e.to_string()))
}

/// Whether the item is in `user_id`'s library now (404 when not: unknown and another
/// user's alike).
pub(crate) async fn in_library(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    item: &FavouriteItem,
) -> Result<bool, sqlx::Error> {
    Ok(match item.kind {
        FavouriteKind::Track => music::tracks::get(pool, user_id, &item.item_id)
            .await?
            .is_some(),
        FavouriteKind::Album => music::albums::get(pool, user_id, &item.item_id)
            .await?
            .is_some(),
        FavouriteKind::Artist => music::artists::get(pool, user_id, &item.item_id)
            .await?
            .is_some(),
    })
}

/// A star's answer.
#[derive(Serialize, ToSchema)]
pub struct StarState {
    kind: String,
    id: String,
    starred: bool,
}

async fn set(
    user: AuthUser,
    after: After,
    state: AppState,
    headers: HeaderMap,
    (kind, raw): (String, String),
    starred: bool,
) -> Result<Json<StarState>, ApiError> {
    let item = item(&kind, &raw)?;
    after.wait(&state, &[models::MUSIC]).await?;
    if !in_library(&state.pool, user.user_id, &item).await? {
        return Err(ApiError::not_found(format!(
            "no such {} in your library",
            item.kind.as_str()
        )));
    }
    send_star(&state, &headers, user.user_id, &item, starred).await?;
    Ok(Json(StarState {
        kind: item.kind.as_str().to_owned(),
        id: item.item_id,
        starred,
    }))
}

/// Sends `StarItem` or `UnstarItem` (the caller checked the item is in the library);
/// answers the position of its events, if it wrote any.
pub(crate) async fn send_star(
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    item: &FavouriteItem,
    starred: bool,
) -> Result<Option<String>, ApiError> {
    let item = item.clone();
    let command = if starred {
        Command::StarItem { user_id, item }
    } else {
        Command::UnstarItem { user_id, item }
    };
    let envelope = envelope(headers, Some(user_id), command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(outcome.position),
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}

/// `PUT /me/favourites/{kind}/{id}`: stars it (starring a starred item changes nothing).
#[utoipa::path(put, path = "/me/favourites/{kind}/{item_id}", tag = "library",
    security(("bearer" = [])),
    params(("kind" = Kind, Path), ("item_id" = String, Path, min_length = 3, max_length = 200,
        description = "a track id (`yt:<id>`), or an album's or artist's UUID"), CommandHeaders),
    responses((status = 200, body = StarState), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not in my library"),
        (status = 422, body = ErrorBody, description = "not a kind, or not an id of that kind"),
        (status = 503, body = ErrorBody)))]
async fn star(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
) -> Result<Json<StarState>, ApiError> {
    set(user, after, state, headers, path, true).await
}

/// `DELETE /me/favourites/{kind}/{id}`: unstars it (unstarring an item not starred
/// changes nothing).
#[utoipa::path(delete, path = "/me/favourites/{kind}/{item_id}", tag = "library",
    security(("bearer" = [])),
    params(("kind" = Kind, Path), ("item_id" = String, Path, min_length = 3, max_length = 200,
        description = "a track id (`yt:<id>`), or an album's or artist's UUID"), CommandHeaders),
    responses((status = 200, body = StarState), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not in my library"),
        (status = 422, body = ErrorBody, description = "not a kind, or not an id of that kind"),
        (status = 503, body = ErrorBody)))]
async fn unstar(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
) -> Result<Json<StarState>, ApiError> {
    set(user, after, state, headers, path, false).await
}

/// My favourites still in my library, each list last starred first.
#[derive(Serialize, ToSchema)]
pub struct FavouriteLists {
    tracks: Vec<AlbumTrack>,
    albums: Vec<AlbumItem>,
    artists: Vec<ArtistItem>,
}

const MAX_PAGE: i64 = 500;

/// `GET /me/favourites?limit=&offset=`: starred tracks, albums and artists (`limit` of
/// each, from `offset`).
#[utoipa::path(get, path = "/me/favourites", tag = "library", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 500),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 100000)),
    responses((status = 200, body = FavouriteLists),
        (status = 400, body = ErrorBody, description = "a parameter given twice"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn list(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<FavouriteLists>, ApiError> {
    let (limit, offset) = limit_offset(&params(raw.as_deref())?, MAX_PAGE, MAX_PAGE)?;
    let [favourites_model, plays_model] = crate::marks::MODELS;
    after
        .wait(&state, &[models::MUSIC, favourites_model, plays_model])
        .await?;
    let (pool, user_id) = (&state.pool, user.user_id);
    let tracks = favourites::tracks(pool, user_id, limit, offset).await?;
    let albums = favourites::albums(pool, user_id, limit, offset).await?;
    let artists = favourites::artists(pool, user_id, limit, offset).await?;
    let track_ids: Vec<String> = tracks.iter().map(|t| t.track.track_id.clone()).collect();
    let album_ids: Vec<String> = albums.iter().map(|a| a.album.id.clone()).collect();
    let artist_ids: Vec<String> = artists.iter().map(|a| a.artist.id.clone()).collect();
    let marks = MarkSet::tracks(pool, user_id, &track_ids)
        .await?
        .merge(MarkSet::albums(pool, user_id, &album_ids).await?)
        .merge(MarkSet::artists(pool, user_id, &artist_ids).await?);
    let covers = state.stream.as_ref();
    Ok(Json(FavouriteLists {
        tracks: tracks
            .into_iter()
            .map(|t| album_track(t.track, user_id, covers, &marks))
            .collect(),
        albums: albums
            .into_iter()
            .map(|a| album_item(a.album, user_id, covers, &marks))
            .collect(),
        artists: artists
            .into_iter()
            .map(|a| artist_item(a.artist, &marks))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_checked_by_kind() {
        assert!(item("track", "yt:dQw4w9WgXcQ").is_ok());
        assert!(item("album", &Uuid::nil().to_string()).is_ok());
        for (kind, id) in [
            ("song", "yt:x1"),
            ("album", "yt:x1"),
            ("track", "nope"),
            ("artist", "1"),
        ] {
            assert!(item(kind, id).is_err(), "{kind} {id}");
        }
    }
}
