//! `Idempotency-Key`, scoped to its caller, route and request (SECURITY.md 26, ADR 15).
//!
//! A mutating request with a key is recorded in `idempotency_keys` under a keyed digest of
//! (caller, method, route, key), where the caller is the bearer's user or, on anonymous
//! routes, the client's nonce (`X-Client-Nonce`, which the web app makes once per tab).
//! The first use stores a keyed digest of the request (method, path, query, JSON body);
//! a later use with another request is refused with 422. A later use with the same
//! request goes on as a replay: the command id (`api::envelope`, which takes the same
//! caller) is the first one's, so its stored outcome answers. Routes that issue
//! credentials refuse a replay (`replayed`): tokens are never answered twice.

use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use jukebox_projections::idempotency::{self, KeyUse};
use sha2::Sha256;

use crate::error::ApiError;
use crate::state::AppState;

/// The client's nonce, the caller of anonymous requests.
pub const NONCE_HEADER: &str = "x-client-nonce";
/// Set by `scope` (never by the client) on a request that replays a recorded key.
const REPLAY_HEADER: &str = "x-jukebox-idempotent-replay";
/// Bodies hashed into the digest; larger or non-JSON ones (uploads) are left out of it.
const MAX_HASHED_BODY: usize = 64 * 1024;

/// Whether `scope` found this request's key already used by the same request.
pub fn is_replay(headers: &HeaderMap) -> bool {
    headers.contains_key(REPLAY_HEADER)
}

/// A credential route's refusal of a replayed key.
pub fn replayed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "replayed",
        "this request was already made with this Idempotency-Key; credentials are never \
         handed out twice. Send it again with a new key.",
    )
}

/// The nonce header's value when it is one: 16 to 128 visible ASCII characters.
pub fn nonce(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(NONCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|n| (16..=128).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_graphic()))
}

/// The middleware (on the API router).
pub async fn scope(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    request.headers_mut().remove(REPLAY_HEADER);
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    let caller = match bearer_user(&state, request.headers()) {
        Some(Ok(user_id)) => Some(format!("user:{user_id}")),
        // An invalid token, or none on a route that needs one: the handler answers 401
        // before anything is recorded.
        Some(Err(())) => return next.run(request).await,
        // (The web role mounts the API under `/api`; its matched paths carry it.)
        None if !ANONYMOUS_ROUTES.contains(&route.strip_prefix(state.mount).unwrap_or(&route)) => {
            return next.run(request).await
        }
        None => None,
    };
    if request.headers().contains_key(NONCE_HEADER) && nonce(request.headers()).is_none() {
        return ApiError::bad_request(
            "invalid_client_nonce",
            "X-Client-Nonce must be 16 to 128 visible ASCII characters",
        )
        .into_response();
    }
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|k| k.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key else {
        return next.run(request).await;
    };
    let caller = match (caller, nonce(request.headers())) {
        (Some(user), _) => user,
        (None, Some(nonce)) => format!("nonce:{nonce}"),
        (None, None) => {
            return ApiError::bad_request(
                "missing_client_nonce",
                "an Idempotency-Key without a bearer token needs an `X-Client-Nonce` header: \
                 16 to 128 random visible ASCII characters, the same for every retry",
            )
            .into_response()
        }
    };
    match record(&state, request, &caller, &route, &key).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Routes without a bearer token: their caller is the client's nonce.
const ANONYMOUS_ROUTES: [&str; 9] = [
    "/auth/forgot-password",
    "/auth/reset-password",
    "/auth/confirm-email",
    "/auth/signup",
    "/auth/verify-email",
    "/auth/resend-verification",
    "/auth/signin",
    "/auth/refresh",
    "/auth/logout",
];

async fn record(
    state: &AppState,
    request: Request,
    caller: &str,
    route: &str,
    key: &str,
) -> Result<Request, ApiError> {
    let method = request.method().clone();
    let target = request
        .uri()
        .path_and_query()
        .map_or("", |p| p.as_str())
        .to_owned();
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (parts, body) = request.into_parts();
    let (bytes, body) = if json {
        let bytes = to_bytes(body, MAX_HASHED_BODY).await.map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("a JSON body may be at most {MAX_HASHED_BODY} bytes"),
            )
        })?;
        (bytes.clone(), Body::from(bytes))
    } else {
        (Default::default(), body)
    };
    let mut request = Request::from_parts(parts, body);
    let key_ = &state.auth.request_key;
    let scope = digest(
        key_,
        &[
            b"scope",
            caller.as_bytes(),
            method.as_str().as_bytes(),
            route.as_bytes(),
            key.as_bytes(),
        ],
    );
    let request_digest = digest(
        key_,
        &[
            b"request",
            method.as_str().as_bytes(),
            target.as_bytes(),
            &bytes,
        ],
    );
    match idempotency::record(&state.pool, &scope, &request_digest).await? {
        KeyUse::First => {}
        KeyUse::Replay => {
            request
                .headers_mut()
                .insert(REPLAY_HEADER, HeaderValue::from_static("1"));
        }
        KeyUse::Reused => {
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used before for another request; a key names one \
                 request (same route, parameters and body). Use a new key.",
            ))
        }
    }
    Ok(request)
}

/// `Some(Ok(user))` for a valid bearer token, `Some(Err)` for an invalid one.
fn bearer_user(state: &AppState, headers: &HeaderMap) -> Option<Result<uuid::Uuid, ()>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    Some(
        state
            .auth
            .jwt
            .verify(token.trim())
            .map(|claims| claims.sub)
            .map_err(|_| ()),
    )
}

/// HMAC-SHA256 over length-prefixed parts, hex: unambiguous, and nothing in the table
/// can be brute-forced back to a key, nonce or body without the server's key.
fn digest(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_do_not_run_parts_together() {
        assert_ne!(digest(b"k", &[b"ab", b"c"]), digest(b"k", &[b"a", b"bc"]));
        assert_ne!(digest(b"k", &[b"a"]), digest(b"other", &[b"a"]));
        assert_eq!(digest(b"k", &[b"a"]), digest(b"k", &[b"a"]));
    }
}
