//! `GET /stream/{song_id}` on the API: a signed URL for a song the caller may play.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::fresh::{models, After};
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

/// `GET /stream/{song_id}` on the API (bearer): 302 to a signed URL, or
/// `{url, expires_at, cover_url?}` with `Accept: application/json` (`cover_url` when the
/// song has a cover picture).
#[utoipa::path(get, path = "/stream/{song_id}", tag = "library", security(("bearer" = [])),
    params(("song_id" = String, Path, min_length = 3, max_length = 200, pattern = r"^[!-9;-~][!-~]*:[!-~]+$")),
    responses((status = 200, body = StreamUrl, description = "with `Accept: application/json`"),
        (status = 302, description = "to the signed URL"),
        (status = 400, body = crate::error::ErrorBody, description = "a NUL character in the id"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "not in my library"),
        (status = 404, body = crate::error::ErrorBody, description = "no such song"),
        (status = 503, body = crate::error::ErrorBody, description = "streaming not configured")))]
pub async fn issue(
    State(state): State<AppState>,
    user: AuthUser,
    after: After,
    Path(song_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(issuer) = state.stream.as_ref() else {
        return Err(ApiError::Unavailable(
            "streaming is not configured on this server (STREAM_SIGNING_SECRET)".into(),
        ));
    };
    after.wait(&state, &[models::LIBRARY]).await?;
    let object = match song_access(&state.pool, &song_id, user.user_id, user.is_admin()).await? {
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
    let (url, expires) = issuer.url(&song_id, user.user_id, now);
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
            body["cover_url"] = json!(issuer.cover_url(&song_id, user.user_id, now));
        }
        return Ok(Json(body).into_response());
    }
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}
