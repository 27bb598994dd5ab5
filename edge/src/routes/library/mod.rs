//! `/library`: my tracks. `GET /library` pages through them (keyset cursor, text filter,
//! four sorts) from the `library` read model; `DELETE /library/{song_id}` takes one out
//! of my library (a command; the catalog keeps the stored track). `music.rs`: my artists
//! and albums; `correct.rs`: `PATCH /library/{song_id}`, my corrections of a track.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{delete, get};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jukebox_domain::{Command, TrackId};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::library;
use jukebox_projections::library::like_pattern;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::{envelope, rejection, send};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{denied, AccessToken, AuthUser};
use crate::fresh::{models, wait_for, After};
use crate::marks::MarkSet;
use crate::state::AppState;
use crate::stream::StreamIssuer;

mod correct;
pub(crate) mod music;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/library", get(list))
        .route("/library/{song_id}", delete(remove).patch(correct::correct))
        .route("/library/artists", get(music::artists))
        .route("/library/artists/{artist_id}", get(music::artist))
        .route("/library/albums", get(music::albums))
        .route("/library/albums/{album_id}", get(music::album))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        remove,
        correct::correct,
        music::artists,
        music::artist,
        music::albums,
        music::album
    ),
    components(schemas(Sort, Order, music::AlbumSort))
)]
pub(crate) struct Doc;

pub(crate) fn track_id(raw: &str) -> Result<TrackId, ApiError> {
    TrackId::parse(raw).map_err(|_| {
        ApiError::unprocessable(
            "invalid_song_id",
            "a song id looks like yt:<video id> or url:<hash>",
        )
    })
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // the answer below, for the document
struct Removed {
    track_id: String,
    removed: bool,
    /// The library read model shows the removal (always true on a 200: the answer waits
    /// for it, and answers 503 if it does not come in time).
    applied: bool,
    command_id: Uuid,
}

/// `DELETE /library/{song_id}`: 200 once the library no longer has it; 404 when it is not
/// in my library. `GET /library`, `GET /stream` and the stream role all read the
/// `library` read model: the answer waits (bounded, `READ_WAIT_MS`, then 503) until it
/// has applied the removal, so after a 200 a fresh stream URL is refused and a reload no
/// longer lists the track.
#[utoipa::path(delete, path = "/library/{song_id}", tag = "library", security(("bearer" = [])),
    params(("song_id" = String, Path, min_length = 3, max_length = 200, pattern = r"^[!-9;-~][!-~]*:[!-~]+$"),
        crate::commands::CommandHeaders),
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = "not in my library"),
        (status = 422, body = ErrorBody, description = "not a song id"), (status = 503, body = ErrorBody)))]
async fn remove(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let track_id = track_id(&raw)?;
    let command = Command::RemoveFromLibrary {
        user_id: user.user_id,
        track_id: track_id.clone(),
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    let position = match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => outcome.position,
        Some(outcome) => return Err(rejection(outcome)),
        None => return Err(ApiError::Unavailable("not answered in time".into())),
    };
    if let Some(position) = position.and_then(|p| p.parse().ok()) {
        wait_for(&state, position, &[models::LIBRARY]).await?;
    }
    Ok(Json(json!({
        "track_id": track_id.as_str(),
        "removed": true,
        "applied": true,
        "command_id": envelope.command_id,
    })))
}

pub const MAX_PAGE: i64 = 200;
const DEFAULT_PAGE: i64 = 50;
const MAX_Q_CHARS: usize = 200;

/// A sort of `GET /library` (`library::Sort` in the read model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    Added,
    Title,
    Artist,
    Duration,
}

impl Sort {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "added" => Self::Added,
            "title" => Self::Title,
            "artist" => Self::Artist,
            "duration" => Self::Duration,
            _ => return None,
        })
    }

    /// The read model's sort.
    fn model(self) -> library::Sort {
        match self {
            Self::Added => library::Sort::Added,
            Self::Title => library::Sort::Title,
            Self::Artist => library::Sort::Artist,
            Self::Duration => library::Sort::Duration,
        }
    }
}

/// Longer track ids than any stored one are forged.
const MAX_CURSOR_TEXT: usize = 4096;

/// The opaque cursor: the last row's sort value (`library::Entry::sort_value`) and track
/// id, with the sort and direction it belongs to.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    s: Sort,
    d: bool,
    v: String,
    t: String,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serializes"))
    }

    /// A cursor this server could have issued: its value has its sort's type and range,
    /// and no text carries a NUL, so the query built from it cannot fail on a cast.
    fn decode(raw: &str) -> Option<Self> {
        let cursor: Self = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        cursor.valid().then_some(cursor)
    }

    fn valid(&self) -> bool {
        self.s.model().accepts(&self.v)
            && self.t.len() <= MAX_CURSOR_TEXT
            && TrackId::parse(&self.t).is_ok()
    }
}

/// `GET /library` parameters, validated.
#[derive(Debug)]
pub struct ListQuery {
    limit: i64,
    sort: Sort,
    descending: bool,
    q: Option<String>,
    cursor: Option<Cursor>,
}

/// A query string's parameters; a repeated one is a 400 (never a silent pick).
pub(crate) fn params(
    raw: Option<&str>,
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut params = std::collections::HashMap::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if params.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{key} is given twice"),
            ));
        }
    }
    Ok(params)
}

/// `limit` (1 to `max`, default `default`) and `offset` (0 to 100,000).
pub(crate) fn limit_offset(
    params: &std::collections::HashMap<String, String>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), ApiError> {
    let limit = match params.get("limit") {
        None => default,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| invalid("invalid_limit", format!("limit must be 1 to {max}")))?,
    };
    let offset = match params.get("offset") {
        None => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|o| (0..=100_000).contains(o))
            .ok_or_else(|| invalid("invalid_offset", "offset must be 0 to 100000"))?,
    };
    Ok((limit, offset))
}

/// `q` trimmed and lower-cased as a LIKE pattern, or `None` when absent or empty.
pub(crate) fn text_filter(
    params: &std::collections::HashMap<String, String>,
) -> Result<Option<String>, ApiError> {
    match params.get("q").map(|q| q.trim()) {
        None | Some("") => Ok(None),
        Some(q) if q.chars().count() > MAX_Q_CHARS => Err(invalid(
            "invalid_query",
            format!("q must be at most {MAX_Q_CHARS} characters"),
        )),
        Some(q) => Ok(Some(like_pattern(&q.to_lowercase()))),
    }
}

pub(crate) fn invalid(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::unprocessable(code, message)
}

impl ListQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let params = params(raw)?;
        let limit = match params.get("limit") {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| {
                    invalid("invalid_limit", format!("limit must be 1 to {MAX_PAGE}"))
                })?,
        };
        let sort = match params.get("sort") {
            None => Sort::Added,
            Some(raw) => Sort::parse(raw).ok_or_else(|| {
                invalid(
                    "invalid_sort",
                    "sort must be one of added, title, artist, duration",
                )
            })?,
        };
        let descending = match params.get("order").map(String::as_str) {
            None => sort == Sort::Added,
            Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(invalid("invalid_order", "order must be asc or desc")),
        };
        let q = match params.get("q").map(|q| q.trim()) {
            None | Some("") => None,
            Some(q) if q.chars().count() > MAX_Q_CHARS => {
                return Err(invalid(
                    "invalid_query",
                    format!("q must be at most {MAX_Q_CHARS} characters"),
                ))
            }
            Some(q) => Some(q.to_lowercase()),
        };
        let cursor = match params.get("cursor") {
            None => None,
            Some(raw) => {
                let cursor = Cursor::decode(raw)
                    .filter(|c| c.s == sort && c.d == descending)
                    .ok_or_else(|| {
                        invalid(
                            "invalid_cursor",
                            "this cursor is damaged or belongs to another sort; start again without it",
                        )
                    })?;
                Some(cursor)
            }
        };
        Ok(Self {
            limit,
            sort,
            descending,
            q,
            cursor,
        })
    }
}

/// One page of a user's library as `GET /library` answers it. Items with a stored cover
/// picture carry a signed, short-lived `cover_url` when `covers` can sign one.
pub async fn page(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    query: &ListQuery,
    covers: Option<&StreamIssuer>,
) -> Result<LibraryPage, ApiError> {
    let page = library::page(pool, &query.model(user_id)).await?;
    let marks = MarkSet::of_page(&page);
    Ok(answer(page, user_id, query, covers, &marks))
}

impl ListQuery {
    /// The read model's query for `user_id`.
    fn model(&self, user_id: Uuid) -> library::PageQuery<'_> {
        library::PageQuery {
            user_id,
            sort: self.sort.model(),
            descending: self.descending,
            text: self.q.as_deref(),
            after: self.cursor.as_ref().map(|c| library::Resume {
                value: &c.v,
                track_id: &c.t,
            }),
            limit: self.limit,
        }
    }
}

/// The answer to `query` from the page read for it.
fn answer(
    page: library::Page,
    user_id: Uuid,
    query: &ListQuery,
    covers: Option<&StreamIssuer>,
    marks: &MarkSet,
) -> LibraryPage {
    let next_cursor = page.entries.last().filter(|_| page.more).map(|last| {
        Cursor {
            s: query.sort,
            d: query.descending,
            v: last.sort_value.clone(),
            t: last.track_id.clone(),
        }
        .encode()
    });
    let now = OffsetDateTime::now_utc();
    let items = page
        .entries
        .into_iter()
        .map(|entry| LibraryItem {
            marks: marks.of(&entry.track_id),
            cover_url: covers
                .filter(|_| entry.cover_stored)
                .map(|issuer| issuer.cover_url(&entry.track_id, user_id, now)),
            added_at: entry.added_at.and_then(|t| t.format(&Rfc3339).ok()),
            track_id: entry.track_id,
            title: entry.title,
            artist: entry.artist,
            duration_ms: entry.duration_ms,
            has_cover: entry.has_cover,
        })
        .collect();
    LibraryPage { items, next_cursor }
}

/// One page of `GET /library`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LibraryPage {
    items: Vec<LibraryItem>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LibraryItem {
    track_id: String,
    title: Option<String>,
    artist: Option<String>,
    duration_ms: i64,
    has_cover: bool,
    /// A signed, short-lived link to the cover picture, when one is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    cover_url: Option<String>,
    added_at: Option<String>,
    #[serde(flatten)]
    marks: crate::marks::Marks,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Order {
    Asc,
    Desc,
}

/// `GET /library?limit=&cursor=&q=&sort=added|title|artist|duration&order=asc|desc`.
#[utoipa::path(get, path = "/library", tag = "library", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page, same sort and order"),
        ("q" = Option<String>, Query, max_length = 200, description = "matches title or artist"),
        ("sort" = Option<Sort>, Query), ("order" = Option<Order>, Query, description = "default: desc for added, else asc")),
    responses((status = 200, body = LibraryPage), (status = 400, body = ErrorBody, description = "a parameter given twice"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list(
    token: AccessToken,
    after: After,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LibraryPage>, ApiError> {
    let query = ListQuery::parse(raw.as_deref())?;
    // The marks are kept on the entries: the library alone answers for them.
    after.wait(&state, &[models::LIBRARY]).await?;
    // The access check rides in the page's statement: one round trip per request.
    let page =
        library::page_for_session(&state.pool, &query.model(token.user_id), token.session_id)
            .await?
            .map_err(denied)?;
    let marks = MarkSet::of_page(&page);
    let covers = state.stream.as_ref();
    Ok(Json(answer(page, token.user_id, &query, covers, &marks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_validated() {
        assert!(ListQuery::parse(None).is_ok());
        for bad in [
            "limit=0",
            "limit=201",
            "limit=x",
            "sort=size",
            "order=up",
            "cursor=nope",
            "limit=5&limit=6",
        ] {
            assert!(ListQuery::parse(Some(bad)).is_err(), "{bad}");
        }
        let cursor = Cursor {
            s: Sort::Title,
            d: false,
            v: "a".into(),
            t: "yt:x".into(),
        }
        .encode();
        assert!(ListQuery::parse(Some(&format!("sort=title&cursor={cursor}"))).is_ok());
        // A cursor from another sort is refused, not misread.
        assert!(ListQuery::parse(Some(&format!("sort=artist&cursor={cursor}"))).is_err());
    }

    #[test]
    fn forged_cursor_values_are_refused_before_any_query() {
        let forged = |s: Sort, d: bool, v: &str, t: &str| {
            let cursor = Cursor {
                s,
                d,
                v: v.into(),
                t: t.into(),
            }
            .encode();
            let sort = serde_json::to_value(s).unwrap();
            let order = if d { "desc" } else { "asc" };
            let query = format!(
                "sort={}&order={order}&cursor={cursor}",
                sort.as_str().unwrap()
            );
            ListQuery::parse(Some(&query))
        };
        for (sort, value) in [
            (Sort::Duration, "abc"),
            (Sort::Duration, "99999999999999999999"),
            (Sort::Added, "2026-01-01 00:00:00+00"),
            (Sort::Added, "-1"),
            (Sort::Added, "253402300800000000"),
            (Sort::Title, "a\0b"),
        ] {
            assert!(
                forged(sort, false, value, "yt:x").is_err(),
                "{sort:?} {value}"
            );
        }
        assert!(forged(Sort::Title, false, "a", "not a track id").is_err());
        assert!(forged(Sort::Duration, true, "-5", "yt:x").is_ok());
        assert!(forged(Sort::Added, true, "1764000000000000", "url:ab").is_ok());
    }
}
