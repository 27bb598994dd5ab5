//! Playback: signed stream URLs (issued by the API) and the stream role that serves them.
//!
//! `GET /stream/{song_id}` on the API checks that the caller may play the song and answers
//! with a short-lived URL on the stream role: `.../api/public/stream/{song_id}?u=&e=&s=`,
//! where `s` is HMAC-SHA256 (key `STREAM_SIGNING_SECRET`, used for nothing else) over the
//! song, the user and the expiry. The URL is a narrow capability: one song, one user, a
//! few minutes; never the access token. The stream role checks the signature in constant
//! time, the expiry, and that the user still has the song, then serves the object from
//! the store with byte ranges, without buffering it whole.
//!
//! Covers work the same way, because an `<img>` cannot send a bearer header either:
//! `GET /library` and `GET /stream/{song_id}` hand out `.../api/public/covers/{song_id}?u=&e=&s=`,
//! signed under a tag of their own (a cover URL never opens the audio, nor the reverse),
//! with the same checks, served with a cache lifetime no longer than the signature's.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use jukebox_storage::{ByteRange, ObjectKey, ObjectStore, StoreError};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::fresh::{models, After};
use crate::metrics::Metrics;
use crate::state::AppState;

/// More ranges than this in one `Range` header are refused (416); 2..=this are ignored
/// and the whole object is sent (RFC 9110 lets a server ignore a Range header).
pub const MAX_RANGES: usize = 8;

/// Signs and checks stream URLs.
#[derive(Clone)]
pub struct StreamSigner {
    key: Arc<[u8]>,
    /// How long an issued URL stays valid.
    pub ttl: Duration,
}

/// What a signed URL opens. Each signs under its own tag, so one cannot pass for the
/// other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// The audio (`/api/public/stream/...`).
    Stream,
    /// The cover picture (`/api/public/covers/...`).
    Cover,
}

impl Capability {
    fn tag(self) -> &'static [u8] {
        match self {
            Self::Stream => b"jukebox-stream-v1",
            Self::Cover => b"jukebox-cover-v1",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Stream => "/api/public/stream/",
            Self::Cover => "/api/public/covers/",
        }
    }

    /// What a person calls it, in refusals.
    fn noun(self) -> &'static str {
        match self {
            Self::Stream => "stream link",
            Self::Cover => "cover link",
        }
    }
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No signature, or parameters missing or malformed.
    Missing,
    /// The signature does not match (tampered, truncated, or for another song or user).
    BadSignature,
    Expired,
}

impl StreamSigner {
    pub fn new(key: &[u8], ttl: Duration) -> Self {
        Self {
            key: key.into(),
            ttl,
        }
    }

    fn mac(
        &self,
        capability: Capability,
        song_id: &str,
        user_id: Uuid,
        expires: i64,
    ) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        // Unambiguous: a version tag (one per capability, both 17 bytes), then
        // length-prefixed song id, fixed-size user id and expiry. No two (capability,
        // song, user, expiry) tuples encode to the same bytes.
        mac.update(capability.tag());
        mac.update(&(song_id.len() as u64).to_be_bytes());
        mac.update(song_id.as_bytes());
        mac.update(user_id.as_bytes());
        mac.update(&expires.to_be_bytes());
        mac
    }

    /// The `s` parameter of a stream URL for this song, user and expiry (unix seconds).
    pub fn sign(&self, song_id: &str, user_id: Uuid, expires: i64) -> String {
        self.sign_for(Capability::Stream, song_id, user_id, expires)
    }

    /// The `s` parameter of a URL for `capability`.
    pub fn sign_for(
        &self,
        capability: Capability,
        song_id: &str,
        user_id: Uuid,
        expires: i64,
    ) -> String {
        let mac = self.mac(capability, song_id, user_id, expires);
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Checks a stream URL's signature (constant time) and then the expiry against `now`.
    pub fn verify(
        &self,
        song_id: &str,
        user_id: Uuid,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), Denied> {
        self.verify_for(
            Capability::Stream,
            song_id,
            user_id,
            expires,
            signature,
            now,
        )
    }

    /// [`verify`](Self::verify) for a URL of `capability`.
    pub fn verify_for(
        &self,
        capability: Capability,
        song_id: &str,
        user_id: Uuid,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), Denied> {
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Denied::BadSignature)?;
        self.mac(capability, song_id, user_id, expires)
            .verify_slice(&signature)
            .map_err(|_| Denied::BadSignature)?;
        if expires <= now {
            return Err(Denied::Expired);
        }
        Ok(())
    }
}

/// What the API needs to issue stream URLs.
#[derive(Clone)]
pub struct StreamIssuer {
    pub signer: StreamSigner,
    /// `PUBLIC_STREAM_BASE_URL`, without a trailing slash.
    pub public_base_url: String,
}

impl StreamIssuer {
    /// A stream URL and its expiry (unix seconds).
    pub fn url(&self, song_id: &str, user_id: Uuid, now: OffsetDateTime) -> (String, i64) {
        let expires = now.unix_timestamp() + self.signer.ttl.as_secs() as i64;
        let url = self.signed(Capability::Stream, song_id, user_id, expires);
        (url, expires)
    }

    /// A cover URL. Its expiry is rounded down to a quarter of the lifetime, so a page
    /// that lists the library again within that time gets the same URLs and the browser
    /// shows the cached pictures instead of fetching each one anew.
    pub fn cover_url(&self, song_id: &str, user_id: Uuid, now: OffsetDateTime) -> String {
        let now = now.unix_timestamp();
        let ttl = self.signer.ttl.as_secs() as i64;
        let step = (ttl / 4).max(1);
        let expires = ((now + ttl) / step * step).max(now + 1);
        self.signed(Capability::Cover, song_id, user_id, expires)
    }

    fn signed(&self, capability: Capability, song_id: &str, user_id: Uuid, expires: i64) -> String {
        let signature = self.signer.sign_for(capability, song_id, user_id, expires);
        let base = format!("{}{}", self.public_base_url, capability.path());
        let mut url = url::Url::parse(&base).expect("PUBLIC_STREAM_BASE_URL is checked at start");
        url.path_segments_mut()
            .expect("an http(s) base URL")
            .pop_if_empty()
            .push(song_id);
        url.query_pairs_mut()
            .append_pair("u", &user_id.to_string())
            .append_pair("e", &expires.to_string())
            .append_pair("s", &signature);
        url.to_string()
    }
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

/// The stored objects behind a song, as the library read model records them.
struct StoredObject {
    key: String,
    size: u64,
    cover: Option<StoredImage>,
}

/// A song's cover picture in the store.
struct StoredImage {
    key: String,
    size: u64,
    content_type: String,
}

enum Access {
    UnknownSong,
    Denied,
    Granted(StoredObject),
}

/// May `user_id` play `song_id`: it is in their library, or they are an admin (and not
/// disabled). Unknown songs are told apart so the API can answer 404. The library read
/// model answers both questions (`jukebox_projections::library::playable`).
async fn song_access(
    pool: &PgPool,
    song_id: &str,
    user_id: Uuid,
    is_admin: bool,
) -> Result<Access, sqlx::Error> {
    use jukebox_projections::library::{playable, Playable};
    let (track, mine) = match playable(pool, user_id, song_id).await? {
        Playable::Unknown => return Ok(Access::UnknownSong),
        Playable::InLibrary(track) => (track, true),
        Playable::NotInLibrary(track) => (track, false),
    };
    // The token's claim is checked against the account as it is now (write-side state).
    let granted = mine
        || (is_admin
            && crate::accounts::by_id(pool, user_id)
                .await?
                .is_some_and(|account| !account.disabled && account.is_admin()));
    if !granted {
        return Ok(Access::Denied);
    }
    Ok(Access::Granted(StoredObject {
        key: track.object_key,
        size: track.size,
        cover: track.cover.map(|(key, size, content_type)| StoredImage {
            key,
            size,
            content_type,
        }),
    }))
}

/// State of the stream role.
#[derive(Clone)]
pub struct StreamState {
    pub pool: PgPool,
    pub store: Arc<dyn ObjectStore>,
    pub signer: StreamSigner,
    pub metrics: Arc<Metrics>,
}

/// The stream role's routes (:8005).
pub fn router(state: StreamState) -> Router {
    Router::new()
        .route("/api/public/stream/{song_id}", get(serve).head(serve))
        .route(
            "/api/public/covers/{song_id}",
            get(serve_cover).head(serve_cover),
        )
        .with_state(state)
}

#[derive(Debug, Deserialize)]
pub struct SignedParams {
    u: Option<String>,
    e: Option<String>,
    s: Option<String>,
}

/// Checks a signed URL of `capability` for `song_id`: the signature (constant time),
/// then the expiry (410), then that the user still has the song. Returns the song's
/// objects and the URL's expiry.
async fn signed_access(
    state: &StreamState,
    capability: Capability,
    song_id: &str,
    params: SignedParams,
) -> Result<(StoredObject, i64), ApiError> {
    let deny = |reason: &'static str, error: ApiError| {
        state.metrics.stream_denied(reason);
        error
    };
    let noun = capability.noun();
    let (Some(user), Some(expires), Some(signature)) = (params.u, params.e, params.s) else {
        return Err(deny(
            "missing",
            ApiError::forbidden(
                "unsigned",
                format!("this {noun} is not signed; ask for a new one"),
            ),
        ));
    };
    let (Ok(user_id), Ok(expires)) = (Uuid::parse_str(&user), expires.parse::<i64>()) else {
        return Err(deny(
            "malformed",
            ApiError::forbidden(
                "bad_signature",
                format!("this {noun} is damaged; ask for a new one"),
            ),
        ));
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    match state
        .signer
        .verify_for(capability, song_id, user_id, expires, &signature, now)
    {
        Ok(()) => {}
        Err(Denied::Expired) => {
            return Err(deny(
                "expired",
                ApiError::new(
                    StatusCode::GONE,
                    "link_expired",
                    format!("this {noun} has expired; ask for a new one"),
                ),
            ))
        }
        Err(Denied::Missing | Denied::BadSignature) => {
            return Err(deny(
                "bad_signature",
                ApiError::forbidden(
                    "bad_signature",
                    format!("this {noun} is not valid for this song; ask for a new one"),
                ),
            ))
        }
    }
    match song_access(&state.pool, song_id, user_id, true).await? {
        Access::UnknownSong => Err(deny("unknown", ApiError::not_found("no such song"))),
        Access::Denied => Err(deny(
            "no_access",
            ApiError::forbidden("not_in_library", "this song is no longer in your library"),
        )),
        Access::Granted(object) => Ok((object, expires)),
    }
}

/// `GET`/`HEAD /api/public/covers/{song_id}?u=&e=&s=`: the song's cover picture, for
/// an `<img>`. Cached privately for no longer than the signature lives.
async fn serve_cover(
    State(state): State<StreamState>,
    method: Method,
    Path(song_id): Path<String>,
    Query(params): Query<SignedParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (object, expires) = signed_access(&state, Capability::Cover, &song_id, params).await?;
    let Some(cover) = object.cover else {
        state.metrics.stream_denied("no_cover");
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_cover",
            "this song has no cover picture",
        ));
    };
    let key = ObjectKey::parse(&cover.key).map_err(store_error)?;
    let etag = etag(&cover.key, cover.size);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let max_age = (expires - now).clamp(0, state.signer.ttl.as_secs() as i64);
    // Only the picture types the downloader writes; anything else is not shown as one.
    let content_type = match cover.content_type.as_str() {
        "image/jpeg" | "image/png" => cover.content_type.as_str(),
        _ => "application/octet-stream",
    };
    let builder = |status: StatusCode| {
        Response::builder()
            .status(status)
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, format!("private, max-age={max_age}"))
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
    };
    if let Some(candidates) = headers.get(header::IF_NONE_MATCH) {
        if etag_matches(candidates, &etag) {
            return respond(builder(StatusCode::NOT_MODIFIED), Body::empty());
        }
    }
    let response = builder(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, cover.size);
    if method == Method::HEAD {
        return respond(response, Body::empty());
    }
    let body = state
        .store
        .get(&key, None)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => {
                ApiError::not_found("the song's cover picture is missing from the store")
            }
            other => store_error(other),
        })?;
    respond(response, Body::from_stream(body.stream))
}

/// `GET`/`HEAD /api/public/stream/{song_id}?u=&e=&s=`.
async fn serve(
    State(state): State<StreamState>,
    method: Method,
    Path(song_id): Path<String>,
    Query(params): Query<SignedParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (object, _) = signed_access(&state, Capability::Stream, &song_id, params).await?;
    let key = ObjectKey::parse(&object.key).map_err(store_error)?;
    // The size comes from the catalog: objects never change under their key, and asking
    // the store would cost a round trip per request (an S3 HEAD).
    let size = object.size;
    let etag = etag(&object.key, size);

    if let Some(candidates) = headers.get(header::IF_NONE_MATCH) {
        if etag_matches(candidates, &etag) {
            return respond(base_headers(StatusCode::NOT_MODIFIED, &etag), Body::empty());
        }
    }
    // If-Range: a range only applies to the representation the client already has.
    let range_applies = match headers.get(header::IF_RANGE) {
        None => true,
        Some(value) => value.as_bytes() == etag.as_bytes(),
    };
    let decision = match headers.get(header::RANGE) {
        Some(value) if range_applies => parse_range(value.as_bytes(), size),
        _ => RangeDecision::Full,
    };
    let (status, range) = match decision {
        RangeDecision::Full => (StatusCode::OK, None),
        RangeDecision::Partial(first, last) => {
            state.metrics.stream("range_requests", 1);
            (StatusCode::PARTIAL_CONTENT, Some((first, last)))
        }
        RangeDecision::Unsatisfiable => {
            state.metrics.stream_denied("range_not_satisfiable");
            let message = format!("the requested range is outside the {size}-byte track");
            let body = json!({"error": {"code": "range_not_satisfiable", "message": message}});
            return respond(
                base_headers(StatusCode::RANGE_NOT_SATISFIABLE, &etag)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .header(header::CONTENT_TYPE, "application/json"),
                Body::from(body.to_string()),
            );
        }
    };
    let (first, last) = range.unwrap_or((0, size.saturating_sub(1)));
    let length = if size == 0 { 0 } else { last - first + 1 };
    let mut response = base_headers(status, &etag)
        .header(header::CONTENT_TYPE, "audio/mp4")
        .header(header::CONTENT_LENGTH, length);
    if range.is_some() {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {first}-{last}/{size}"),
        );
    }
    if method == Method::HEAD || length == 0 {
        return respond(response, Body::empty());
    }
    state.metrics.stream("streams_started", 1);
    let body = state
        .store
        .get(&key, range.map(|(first, last)| ByteRange::new(first, last)))
        .await
        .map_err(store_error)?;
    let metrics = state.metrics.clone();
    let stream = body.stream.inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            metrics.stream("bytes_served", bytes.len() as u64);
        }
    });
    respond(response, Body::from_stream(stream))
}

fn respond(builder: axum::http::response::Builder, body: Body) -> Result<Response, ApiError> {
    builder
        .body(body)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("building a response")))
}

fn base_headers(status: StatusCode, etag: &str) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, "private, max-age=3600")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
}

/// A strong validator: a track's object never changes under its key, so key and size
/// name one representation.
fn etag(key: &str, size: u64) -> String {
    let digest = Sha256::digest(format!("{key}\n{size}").as_bytes());
    format!("\"{}\"", hex::encode(&digest[..12]))
}

fn etag_matches(candidates: &HeaderValue, etag: &str) -> bool {
    candidates.to_str().is_ok_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
    })
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(_) => {
            ApiError::not_found("the song's audio is missing from the store")
        }
        StoreError::RangeNotSatisfiable { size } => ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the requested range is outside the {size}-byte track"),
        ),
        other => ApiError::Unavailable(format!("the object store failed: {other}")),
    }
}

/// What to do with a `Range` header for an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDecision {
    /// Send the whole object (no usable range, or several: ignored).
    Full,
    /// Send the inclusive byte positions `first..=last`.
    Partial(u64, u64),
    /// 416: no requested range overlaps the object, or too many ranges.
    Unsatisfiable,
}

/// Parses `bytes=first-last`, `bytes=first-` and `bytes=-suffix` (RFC 9110 §14.1.2). A
/// header that does not parse is ignored, as the RFC asks.
pub fn parse_range(header: &[u8], size: u64) -> RangeDecision {
    let Ok(header) = std::str::from_utf8(header) else {
        return RangeDecision::Full;
    };
    let Some(specs) = header.trim().strip_prefix("bytes=") else {
        return RangeDecision::Full;
    };
    let specs: Vec<&str> = specs.split(',').map(str::trim).collect();
    if specs.len() > MAX_RANGES {
        return RangeDecision::Unsatisfiable;
    }
    let mut parsed = Vec::with_capacity(specs.len());
    for spec in &specs {
        let Some((first, last)) = spec.split_once('-') else {
            return RangeDecision::Full;
        };
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let resolved = match (first.trim(), last.trim()) {
            ("", suffix) => {
                let Some(suffix) = number(suffix) else {
                    return RangeDecision::Full;
                };
                (suffix > 0 && size > 0).then(|| (size - suffix.min(size), size - 1))
            }
            (first, "") => {
                let Some(first) = number(first) else {
                    return RangeDecision::Full;
                };
                (first < size).then(|| (first, size - 1))
            }
            (first, last) => {
                let (Some(first), Some(last)) = (number(first), number(last)) else {
                    return RangeDecision::Full;
                };
                if last < first {
                    return RangeDecision::Full; // invalid syntax: ignore the header
                }
                (first < size).then(|| (first, last.min(size - 1)))
            }
        };
        parsed.push(resolved);
    }
    let satisfiable: Vec<(u64, u64)> = parsed.into_iter().flatten().collect();
    match satisfiable.as_slice() {
        [] => RangeDecision::Unsatisfiable,
        [(first, last)] if specs.len() == 1 => RangeDecision::Partial(*first, *last),
        _ => RangeDecision::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_resolve_against_the_size() {
        assert_eq!(
            parse_range(b"bytes=0-99", 1000),
            RangeDecision::Partial(0, 99)
        );
        assert_eq!(
            parse_range(b"bytes=500-", 1000),
            RangeDecision::Partial(500, 999)
        );
        assert_eq!(
            parse_range(b"bytes=-100", 1000),
            RangeDecision::Partial(900, 999)
        );
        assert_eq!(
            parse_range(b"bytes=-5000", 1000),
            RangeDecision::Partial(0, 999)
        );
        assert_eq!(
            parse_range(b"bytes=990-5000", 1000),
            RangeDecision::Partial(990, 999)
        );
    }

    #[test]
    fn ranges_outside_the_object_are_unsatisfiable() {
        assert_eq!(
            parse_range(b"bytes=1000-", 1000),
            RangeDecision::Unsatisfiable
        );
        assert_eq!(
            parse_range(b"bytes=2000-3000", 1000),
            RangeDecision::Unsatisfiable
        );
        assert_eq!(parse_range(b"bytes=-0", 1000), RangeDecision::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 0), RangeDecision::Unsatisfiable);
    }

    #[test]
    fn headers_that_do_not_parse_are_ignored() {
        for header in [
            &b"items=0-1"[..],
            b"bytes=abc",
            b"bytes=5-1",
            b"bytes=1-2-3",
            b"bytes=+1-2",
            b"bytes=",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_range(header, 1000), RangeDecision::Full, "{header:?}");
        }
    }

    #[test]
    fn several_ranges_are_ignored_and_too_many_refused() {
        assert_eq!(parse_range(b"bytes=0-1,5-6", 1000), RangeDecision::Full);
        let many = format!("bytes={}", ["0-1"; MAX_RANGES + 1].join(","));
        assert_eq!(
            parse_range(many.as_bytes(), 1000),
            RangeDecision::Unsatisfiable
        );
    }

    fn signer() -> StreamSigner {
        StreamSigner::new(b"a key used for nothing else", Duration::from_secs(300))
    }

    #[test]
    fn a_signature_verifies_only_for_its_own_song_user_and_expiry() {
        let signer = signer();
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let signature = signer.sign("yt:song-a", alice, 2_000);
        assert_eq!(
            signer.verify("yt:song-a", alice, 2_000, &signature, 1_000),
            Ok(())
        );
        for (song, user, expires) in [
            ("yt:song-b", alice, 2_000),
            ("yt:song-a", bob, 2_000),
            ("yt:song-a", alice, 2_001),
        ] {
            assert_eq!(
                signer.verify(song, user, expires, &signature, 1_000),
                Err(Denied::BadSignature)
            );
        }
        let other_key = StreamSigner::new(b"another key", Duration::from_secs(300));
        assert_eq!(
            other_key.verify("yt:song-a", alice, 2_000, &signature, 1_000),
            Err(Denied::BadSignature)
        );
    }

    #[test]
    fn tampered_truncated_and_expired_signatures_fail() {
        let signer = signer();
        let user = Uuid::now_v7();
        let signature = signer.sign("s", user, 2_000);
        let truncated = &signature[..signature.len() - 2];
        let mut tampered = signature.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [truncated, tampered.as_str(), "", "!!not base64!!"] {
            assert_eq!(
                signer.verify("s", user, 2_000, bad, 1_000),
                Err(Denied::BadSignature)
            );
        }
        assert_eq!(
            signer.verify("s", user, 2_000, &signature, 2_000),
            Err(Denied::Expired)
        );
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        // "ab" + user vs "a" + "b..." cannot collide: the song id is length-prefixed.
        let signer = signer();
        let user = Uuid::nil();
        assert_ne!(signer.sign("ab", user, 1), signer.sign("a", user, 1));
    }

    #[test]
    fn a_cover_signature_never_opens_the_audio_nor_the_reverse() {
        let signer = signer();
        let user = Uuid::now_v7();
        let cover = signer.sign_for(Capability::Cover, "yt:a", user, 2_000);
        let stream = signer.sign("yt:a", user, 2_000);
        assert_ne!(cover, stream);
        assert_eq!(
            signer.verify_for(Capability::Cover, "yt:a", user, 2_000, &cover, 1_000),
            Ok(())
        );
        assert_eq!(
            signer.verify("yt:a", user, 2_000, &cover, 1_000),
            Err(Denied::BadSignature)
        );
        assert_eq!(
            signer.verify_for(Capability::Cover, "yt:a", user, 2_000, &stream, 1_000),
            Err(Denied::BadSignature)
        );
    }

    #[test]
    fn cover_urls_stay_the_same_for_a_while_and_never_outlive_the_ttl() {
        let issuer = StreamIssuer {
            signer: signer(),
            public_base_url: "http://127.0.0.1:8005".into(),
        };
        let user = Uuid::now_v7();
        let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap();
        let expiry = |url: &str| -> i64 {
            let url = url::Url::parse(url).unwrap();
            let e = url.query_pairs().find(|(k, _)| k == "e").unwrap().1;
            e.parse().unwrap()
        };
        // TTL 300 s: expiries fall on multiples of 75 s.
        let first = issuer.cover_url("yt:a", user, at(1_000));
        assert_eq!(issuer.cover_url("yt:a", user, at(1_049)), first);
        assert!(first.starts_with("http://127.0.0.1:8005/api/public/covers/yt:a?"));
        for now in [1_000, 1_049, 1_050, 1_124] {
            let expires = expiry(&issuer.cover_url("yt:a", user, at(now)));
            assert!(expires > now && expires <= now + 300, "{now} -> {expires}");
        }
    }

    #[test]
    fn issued_urls_carry_the_signature_and_escape_the_song_id() {
        let issuer = StreamIssuer {
            signer: signer(),
            public_base_url: "http://127.0.0.1:8005".into(),
        };
        let user = Uuid::now_v7();
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let (url, expires) = issuer.url("url:a/b?c", user, now);
        assert_eq!(expires, 1_300);
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.path(), "/api/public/stream/url:a%2Fb%3Fc");
        let signature = parsed
            .query_pairs()
            .find(|(k, _)| k == "s")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert_eq!(
            issuer
                .signer
                .verify("url:a/b?c", user, 1_300, &signature, 1_000),
            Ok(())
        );
    }
}
