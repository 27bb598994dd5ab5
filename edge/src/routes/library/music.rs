//! My artists and albums (issue 18): `GET /library/artists`, `/library/artists/{id}` (the
//! artist with its albums), `/library/albums` (five orders, `limit`/`offset`) and
//! `/library/albums/{id}` (the album with its tracks in order), from the `music` read
//! model. Another user's or an unknown id is 404 alike.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use jukebox_projections::music::{self, AlbumSort as ModelSort};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{invalid, limit_offset, params};
use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::fresh::{models, After};
use crate::marks::{MarkSet, Marks};
use crate::state::AppState;
use crate::stream::StreamIssuer;

const MAX_PAGE: i64 = 500;
/// What these routes read: `music`, and the marks beside it.
const WAITS: [jukebox_projections::ReadModel; 3] = [
    models::MUSIC,
    crate::marks::MODELS[0],
    crate::marks::MODELS[1],
];
const DEFAULT_PAGE: i64 = 50;

#[derive(Serialize, ToSchema)]
pub struct ArtistItem {
    id: String,
    name: String,
    /// Albums whose artist (the first artist of their tracks) it is.
    album_count: i32,
    /// Tracks it is one of the artists of.
    track_count: i32,
    duration_ms: i64,
    #[serde(flatten)]
    marks: Marks,
}

pub(crate) fn artist_item(a: music::Artist, marks: &MarkSet) -> ArtistItem {
    ArtistItem {
        marks: marks.of(&a.id),
        id: a.id,
        name: a.name,
        album_count: a.album_count,
        track_count: a.track_count,
        duration_ms: a.duration_ms,
    }
}

#[derive(Serialize, ToSchema)]
pub struct ArtistPage {
    items: Vec<ArtistItem>,
    /// Artists in my library in all.
    total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AlbumItem {
    id: String,
    /// The album's title; a single (a track without album data) is named by its track.
    name: String,
    artist: String,
    artist_id: String,
    year: Option<i32>,
    track_count: i32,
    duration_ms: i64,
    /// When its first track came into my library.
    added_at: Option<String>,
    /// A signed, short-lived link to the cover: the album's first track's.
    #[serde(skip_serializing_if = "Option::is_none")]
    cover_url: Option<String>,
    #[serde(flatten)]
    marks: Marks,
}

fn time(t: Option<OffsetDateTime>) -> Option<String> {
    t.and_then(|t| t.format(&Rfc3339).ok())
}

pub(crate) fn album_item(
    a: music::Album,
    user_id: Uuid,
    covers: Option<&StreamIssuer>,
    marks: &MarkSet,
) -> AlbumItem {
    let now = OffsetDateTime::now_utc();
    AlbumItem {
        marks: marks.of(&a.id),
        cover_url: a
            .cover_track_id()
            .zip(covers)
            .map(|(track, issuer)| issuer.cover_url(track, user_id, now)),
        id: a.id,
        name: a.name,
        artist: a.artist,
        artist_id: a.artist_id,
        year: a.year,
        track_count: a.track_count,
        duration_ms: a.duration_ms,
        added_at: time(a.added_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ArtistDetail {
    #[serde(flatten)]
    artist: ArtistItem,
    /// Its albums, latest year first.
    albums: Vec<AlbumItem>,
}

#[derive(Serialize, ToSchema)]
pub struct AlbumPage {
    items: Vec<AlbumItem>,
    /// Albums in my library in all (with `sort=year`, all of them, not only those in the
    /// range).
    total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AlbumTrack {
    track_id: String,
    title: String,
    artists: Vec<String>,
    artist_ids: Vec<String>,
    album: String,
    album_id: String,
    year: Option<i32>,
    duration_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cover_url: Option<String>,
    added_at: Option<String>,
    #[serde(flatten)]
    marks: Marks,
}

pub(crate) fn album_track(
    t: music::Track,
    user_id: Uuid,
    covers: Option<&StreamIssuer>,
    marks: &MarkSet,
) -> AlbumTrack {
    let now = OffsetDateTime::now_utc();
    AlbumTrack {
        cover_url: covers
            .filter(|_| t.cover_stored)
            .map(|issuer| issuer.cover_url(&t.track_id, user_id, now)),
        added_at: time(t.added_at),
        marks: marks.of(&t.track_id),
        track_id: t.track_id,
        title: t.title,
        artists: t.artists,
        artist_ids: t.artist_ids,
        album: t.album,
        album_id: t.album_id,
        year: t.year,
        duration_ms: t.duration_ms,
    }
}

#[derive(Serialize, ToSchema)]
pub struct AlbumDetail {
    #[serde(flatten)]
    album: AlbumItem,
    /// Its tracks in order.
    tracks: Vec<AlbumTrack>,
}

/// The orders of `GET /library/albums`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // the document's
pub enum AlbumSort {
    Newest,
    Name,
    Artist,
    Random,
    Year,
}

fn id(raw: &str, what: &str) -> Result<String, ApiError> {
    Uuid::parse_str(raw).map(|id| id.to_string()).map_err(|_| {
        invalid(
            &format!("invalid_{what}_id"),
            format!("an {what} id is a UUID"),
        )
    })
}

/// `GET /library/artists?limit=&offset=`: my artists by name.
#[utoipa::path(get, path = "/library/artists", tag = "library", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 500),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 100000)),
    responses((status = 200, body = ArtistPage), (status = 400, body = ErrorBody, description = "a parameter given twice"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn artists(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ArtistPage>, ApiError> {
    let (limit, offset) = limit_offset(&params(raw.as_deref())?, DEFAULT_PAGE, MAX_PAGE)?;
    after.wait(&state, &WAITS).await?;
    let items = music::artists::page(&state.pool, user.user_id, limit, offset).await?;
    let total = music::artists::count(&state.pool, user.user_id).await?;
    let ids: Vec<String> = items.iter().map(|a| a.id.clone()).collect();
    let marks = MarkSet::artists(&state.pool, user.user_id, &ids).await?;
    Ok(Json(ArtistPage {
        items: items.into_iter().map(|a| artist_item(a, &marks)).collect(),
        total,
    }))
}

/// `GET /library/artists/{artist_id}`: the artist and its albums.
#[utoipa::path(get, path = "/library/artists/{artist_id}", tag = "library", security(("bearer" = [])),
    params(("artist_id" = String, Path, format = Uuid)),
    responses((status = 200, body = ArtistDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such artist in my library"),
        (status = 422, body = ErrorBody, description = "not an artist id"), (status = 503, body = ErrorBody)))]
pub(super) async fn artist(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ArtistDetail>, ApiError> {
    let artist_id = id(&raw, "artist")?;
    after.wait(&state, &WAITS).await?;
    let Some((artist, albums)) = music::artists::get(&state.pool, user.user_id, &artist_id).await?
    else {
        return Err(ApiError::not_found("no such artist in your library"));
    };
    let covers = state.stream.as_ref();
    let ids: Vec<String> = albums.iter().map(|a| a.id.clone()).collect();
    let marks = MarkSet::albums(&state.pool, user.user_id, &ids)
        .await?
        .merge(
            MarkSet::artists(&state.pool, user.user_id, std::slice::from_ref(&artist.id)).await?,
        );
    Ok(Json(ArtistDetail {
        artist: artist_item(artist, &marks),
        albums: albums
            .into_iter()
            .map(|a| album_item(a, user.user_id, covers, &marks))
            .collect(),
    }))
}

/// The `sort` (and `from`/`to` of `year`) of `GET /library/albums`.
fn album_sort(params: &std::collections::HashMap<String, String>) -> Result<ModelSort, ApiError> {
    let year = |name: &str| -> Result<Option<i32>, ApiError> {
        params
            .get(name)
            .map(|raw| {
                raw.parse::<i32>()
                    .ok()
                    .filter(|y| (1..=9999).contains(y))
                    .ok_or_else(|| {
                        invalid(
                            "invalid_year",
                            format!("{name} must be a year from 1 to 9999"),
                        )
                    })
            })
            .transpose()
    };
    let (from, to) = (year("from")?, year("to")?);
    let sort = match params.get("sort").map(String::as_str) {
        None | Some("newest") => ModelSort::Newest,
        Some("name") => ModelSort::AlphabeticalByName,
        Some("artist") => ModelSort::AlphabeticalByArtist,
        Some("random") => ModelSort::Random,
        Some("year") => ModelSort::ByYear {
            from: from.unwrap_or(1),
            to: to.unwrap_or(9999),
        },
        Some(_) => {
            return Err(invalid(
                "invalid_sort",
                "sort must be one of newest, name, artist, random, year",
            ))
        }
    };
    if !matches!(sort, ModelSort::ByYear { .. }) && (from.is_some() || to.is_some()) {
        return Err(invalid("invalid_query", "from and to go with sort=year"));
    }
    Ok(sort)
}

/// `GET /library/albums?sort=newest|name|artist|random|year&from=&to=&limit=&offset=`:
/// my albums. `year` lists albums from `from` to `to` (descending when `from > to`).
#[utoipa::path(get, path = "/library/albums", tag = "library", security(("bearer" = [])),
    params(("sort" = Option<AlbumSort>, Query, description = "default: newest"),
        ("from" = Option<i32>, Query, minimum = 1, maximum = 9999, description = "with sort=year"),
        ("to" = Option<i32>, Query, minimum = 1, maximum = 9999, description = "with sort=year"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 100000)),
    responses((status = 200, body = AlbumPage), (status = 400, body = ErrorBody, description = "a parameter given twice"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn albums(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AlbumPage>, ApiError> {
    let params = params(raw.as_deref())?;
    let (limit, offset) = limit_offset(&params, DEFAULT_PAGE, MAX_PAGE)?;
    let sort = album_sort(&params)?;
    after.wait(&state, &WAITS).await?;
    let items = music::albums::page(&state.pool, user.user_id, sort, limit, offset).await?;
    let total = music::albums::count(&state.pool, user.user_id).await?;
    let covers = state.stream.as_ref();
    let ids: Vec<String> = items.iter().map(|a| a.id.clone()).collect();
    let marks = MarkSet::albums(&state.pool, user.user_id, &ids).await?;
    Ok(Json(AlbumPage {
        items: items
            .into_iter()
            .map(|a| album_item(a, user.user_id, covers, &marks))
            .collect(),
        total,
    }))
}

/// `GET /library/albums/{album_id}`: the album and its tracks in order.
#[utoipa::path(get, path = "/library/albums/{album_id}", tag = "library", security(("bearer" = [])),
    params(("album_id" = String, Path, format = Uuid)),
    responses((status = 200, body = AlbumDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such album in my library"),
        (status = 422, body = ErrorBody, description = "not an album id"), (status = 503, body = ErrorBody)))]
pub(super) async fn album(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<AlbumDetail>, ApiError> {
    let album_id = id(&raw, "album")?;
    after.wait(&state, &WAITS).await?;
    let Some((album, tracks)) = music::albums::get(&state.pool, user.user_id, &album_id).await?
    else {
        return Err(ApiError::not_found("no such album in your library"));
    };
    let covers = state.stream.as_ref();
    let ids: Vec<String> = tracks.iter().map(|t| t.track_id.clone()).collect();
    let marks = MarkSet::tracks(&state.pool, user.user_id, &ids)
        .await?
        .merge(MarkSet::albums(&state.pool, user.user_id, std::slice::from_ref(&album.id)).await?);
    Ok(Json(AlbumDetail {
        album: album_item(album, user.user_id, covers, &marks),
        tracks: tracks
            .into_iter()
            .map(|t| album_track(t, user.user_id, covers, &marks))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sort(raw: &str) -> Result<ModelSort, ApiError> {
        album_sort(&params(Some(raw)).unwrap())
    }

    #[test]
    fn album_sorts_are_parsed_and_checked() {
        assert_eq!(sort("").unwrap(), ModelSort::Newest);
        assert_eq!(
            sort("sort=artist").unwrap(),
            ModelSort::AlphabeticalByArtist
        );
        assert_eq!(
            sort("sort=year&from=2010").unwrap(),
            ModelSort::ByYear {
                from: 2010,
                to: 9999
            }
        );
        for bad in [
            "sort=size",
            "sort=year&from=0",
            "sort=name&to=2000",
            "sort=year&to=x",
        ] {
            assert!(sort(bad).is_err(), "{bad}");
        }
        assert!(id("nope", "album").is_err());
    }
}
