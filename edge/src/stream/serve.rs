//! The stream role (:8005): signed URLs checked, objects served with byte ranges.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use jukebox_storage::{ByteRange, ObjectKey, ObjectStore, StoreError};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::access::{song_access, Access, StoredObject};
use super::range::{parse_range, RangeDecision};
use super::signing::{Capability, Denied, StreamSigner};
use crate::error::ApiError;
use crate::metrics::Metrics;

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
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let max_age = (expires - now).clamp(0, state.signer.ttl.as_secs() as i64);
    picture(
        state.store.as_ref(),
        &method,
        &headers,
        &cover,
        max_age,
        None,
    )
    .await
}

/// A cover picture's answer (also the Subsonic API's `getCoverArt`), cached privately for
/// `max_age` seconds. With `fit`, a picture larger than `fit`×`fit` is scaled down to a JPEG.
pub(crate) async fn picture(
    store: &dyn ObjectStore,
    method: &Method,
    headers: &HeaderMap,
    cover: &super::access::StoredImage,
    max_age: i64,
    fit: Option<u32>,
) -> Result<Response, ApiError> {
    let key = ObjectKey::parse(&cover.key).map_err(store_error)?;
    let fit = fit.filter(|_| cover.size <= MAX_SCALED_SOURCE_BYTES);
    // A scaled answer is another representation: its own tag per size.
    let etag = match fit {
        None => etag(&cover.key, cover.size),
        Some(fit) => etag(&format!("{}@{fit}", cover.key), cover.size),
    };
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
    if fit.is_none() && *method == Method::HEAD {
        return respond(
            builder(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, cover.size),
            Body::empty(),
        );
    }
    let body = store.get(&key, None).await.map_err(|error| match error {
        StoreError::NotFound(_) => {
            ApiError::not_found("the song's cover picture is missing from the store")
        }
        other => store_error(other),
    })?;
    let Some(fit) = fit else {
        let response = builder(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, cover.size);
        return respond(response, Body::from_stream(body.stream));
    };
    let original = Bytes::from(body.bytes().await.map_err(store_error)?);
    let (bytes, scaled_type) = scaled(original, fit, &cover.key).await;
    let content_type = scaled_type.unwrap_or(content_type);
    let response = builder(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, bytes.len());
    if *method == Method::HEAD {
        return respond(response, Body::empty());
    }
    respond(response, Body::from(bytes))
}

/// Covers larger than this are served as stored rather than read whole to be scaled
/// (stored covers are a 512 px JPEG of some tens of KB).
const MAX_SCALED_SOURCE_BYTES: u64 = 16 << 20;

/// The cover fitted in `fit`×`fit` as a JPEG (off the async threads), or as stored when
/// it already fits or will not decode (an app shows it or not; never a failure).
async fn scaled(original: Bytes, fit: u32, key: &str) -> (Bytes, Option<&'static str>) {
    let source = original.clone();
    let work = tokio::task::spawn_blocking(move || super::scale::fit_jpeg(&source, fit)).await;
    match work {
        Ok(Ok(Some(jpeg))) => (Bytes::from(jpeg), Some("image/jpeg")),
        Ok(Ok(None)) => (original, None),
        Ok(Err(error)) => {
            tracing::warn!(key, error = %error, "a cover does not decode; serving it unscaled");
            (original, None)
        }
        Err(error) => {
            tracing::warn!(key, error = %error, "scaling a cover failed; serving it unscaled");
            (original, None)
        }
    }
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
    audio(
        state.store.as_ref(),
        &state.metrics,
        &method,
        &headers,
        &object.key,
        object.size,
    )
    .await
}

/// A track's audio with byte ranges (also the Subsonic API's `stream` and `download`).
pub(crate) async fn audio(
    store: &dyn ObjectStore,
    metrics: &Arc<Metrics>,
    method: &Method,
    headers: &HeaderMap,
    object_key: &str,
    size: u64,
) -> Result<Response, ApiError> {
    let key = ObjectKey::parse(object_key).map_err(store_error)?;
    // The size comes from the catalog: objects never change under their key, and asking
    // the store would cost a round trip per request (an S3 HEAD).
    let etag = etag(object_key, size);

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
            metrics.stream("range_requests", 1);
            (StatusCode::PARTIAL_CONTENT, Some((first, last)))
        }
        RangeDecision::Unsatisfiable => {
            metrics.stream_denied("range_not_satisfiable");
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
    if *method == Method::HEAD || length == 0 {
        return respond(response, Body::empty());
    }
    metrics.stream("streams_started", 1);
    let body = store
        .get(&key, range.map(|(first, last)| ByteRange::new(first, last)))
        .await
        .map_err(store_error)?;
    let metrics = metrics.clone();
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
