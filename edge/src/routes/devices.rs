//! `/me/sessions`: the devices signed in to my account (issue 21, ADR 29). List them
//! (started, last used, browser, approximate address), end one, or sign out everywhere
//! else. App credentials are listed beside them by the web app (`/me/app-credentials`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jukebox_domain::Command;
use jukebox_nats::OutcomeStatus;
use jukebox_projections::devices;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{credential_envelope, envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, ClientAddr};
use crate::routes::auth::session_response;
use crate::state::AppState;
use crate::tokens::RefreshToken;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me/sessions", get(list))
        .route("/me/sessions/{session_id}", delete(end))
        .route("/me/sessions/sign-out-others", post(sign_out_others))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, end, sign_out_others))]
pub(crate) struct Doc;

/// One signed-in device.
#[derive(Serialize, ToSchema)]
pub struct DeviceSession {
    id: Uuid,
    /// The session this request comes from.
    current: bool,
    /// RFC 3339.
    started_at: String,
    /// RFC 3339: its sign-in or last refresh (access tokens live 15 minutes between).
    last_used_at: Option<String>,
    /// RFC 3339: it ends then at the latest.
    expires_at: String,
    /// "Firefox on Linux", from the user agent.
    device: Option<String>,
    user_agent: Option<String>,
    /// The address it was last used from, shortened (IPv4 /24, IPv6 /48).
    client: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceSessions {
    /// Live sessions, most recently used first (at most 100).
    sessions: Vec<DeviceSession>,
}

/// `GET /me/sessions`: my live sessions.
#[utoipa::path(get, path = "/me/sessions", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = DeviceSessions), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list(
    user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<DeviceSessions>, ApiError> {
    // The write-side access state: a session ended a moment ago is already gone.
    let rows = devices::live_sessions(&state.pool, user.user_id).await?;
    let rfc3339 = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let sessions = rows
        .into_iter()
        .map(|row| DeviceSession {
            id: row.session_id,
            current: row.session_id == user.session_id,
            started_at: rfc3339(row.started_at),
            last_used_at: row.last_used_at.map(rfc3339),
            expires_at: rfc3339(row.expires_at),
            device: row.user_agent.as_deref().map(describe),
            user_agent: row.user_agent,
            client: row.client,
        })
        .collect();
    Ok(Json(DeviceSessions { sessions }))
}

/// `DELETE /me/sessions/{id}`: 204; that device is signed out (its access token stops
/// working at its next request, its refresh token at once).
#[utoipa::path(delete, path = "/me/sessions/{session_id}", tag = "accounts",
    security(("bearer" = [])), params(("session_id" = Uuid, Path), CommandHeaders),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no session of mine"),
        (status = 409, body = ErrorBody, description = "the session of this request: sign out instead"),
        (status = 422, body = ErrorBody, description = "not a UUID"),
        (status = 503, body = ErrorBody)))]
async fn end(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session_id = Uuid::try_parse(&raw)
        .map_err(|_| ApiError::unprocessable("invalid_session_id", "a session id is a UUID"))?;
    if session_id == user.session_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "current_session",
            "this is the session of this device; sign out to end it",
        ));
    }
    let command = Command::EndSession {
        user_id: user.user_id,
        session_id,
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(StatusCode::NO_CONTENT),
        // Someone else's session reads as no session at all.
        Some(_) => Err(ApiError::not_found("no such session of yours")),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}

/// `POST /me/sessions/sign-out-others`: every other device is signed out; this one gets
/// a new session (access token in the body, refresh token in the cookie).
#[utoipa::path(post, path = "/me/sessions/sign-out-others", tag = "accounts",
    security(("bearer" = [])), params(CommandHeaders),
    responses((status = 200, body = super::auth::SessionResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "account disabled"),
        (status = 409, body = ErrorBody, description = "an Idempotency-Key replayed: credentials are never answered twice"),
        (status = 503, body = ErrorBody)))]
async fn sign_out_others(
    user: AuthUser,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if crate::idempotency::is_replay(&headers) {
        return Err(crate::idempotency::replayed());
    }
    let session_id = Uuid::new_v4();
    let refresh = RefreshToken::generate(session_id, user.user_id);
    let command = Command::SignOutOtherSessions {
        user_id: user.user_id,
        session_id,
        refresh_token_hash: refresh.hash(),
        session_expires_at: OffsetDateTime::now_utc() + state.auth.session_ttl,
    };
    renew(
        &state, &headers, &addr, &user, command, session_id, &refresh,
    )
    .await
}

/// Sends a command that ends every session and opens the caller's new one, and answers
/// that session.
pub(crate) async fn renew(
    state: &AppState,
    headers: &HeaderMap,
    addr: &str,
    user: &AuthUser,
    command: Command,
    session_id: Uuid,
    refresh: &RefreshToken,
) -> Result<Response, ApiError> {
    let envelope = credential_envelope(headers, Some(user.user_id), command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {}
        Some(outcome) => return Err(rejection(outcome)),
        None => return Err(ApiError::Unavailable("not answered in time".into())),
    }
    record_use(state, headers, addr, session_id, user.user_id).await;
    Ok(session_response(
        state,
        StatusCode::OK,
        &user.account,
        session_id,
        refresh,
    ))
}

/// Records where a session is used from (sign-in, refresh). Bookkeeping: a failure is
/// logged, never the request's failure.
pub async fn record_use(
    state: &AppState,
    headers: &HeaderMap,
    addr: &str,
    session_id: Uuid,
    user_id: Uuid,
) {
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(256)
        .collect();
    let client = approximate(addr);
    if let Err(error) =
        devices::record_use(&state.pool, session_id, user_id, &user_agent, &client).await
    {
        tracing::warn!(%error, "could not record a session's use");
    }
}

/// An address shortened to its network: IPv4 /24, IPv6 /48.
fn approximate(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            let [a, b, c, _] = ip.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => "unknown".into(),
    }
}

/// "Firefox on Linux": the browser and system a user agent names, roughly.
fn describe(user_agent: &str) -> String {
    let has = |needle: &str| user_agent.contains(needle);
    let browser = if has("Edg/") {
        "Edge"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chrome/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else if user_agent.is_empty() {
        "Unknown client"
    } else {
        user_agent.split('/').next().unwrap_or("Unknown client")
    };
    let system = if has("Android") {
        Some("Android")
    } else if has("iPhone") || has("iPad") {
        Some("iOS")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Mac OS X") || has("Macintosh") {
        Some("macOS")
    } else if has("Linux") || has("X11") {
        Some("Linux")
    } else {
        None
    };
    let browser: String = browser.chars().take(40).collect();
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_shortened_and_agents_named() {
        assert_eq!(approximate("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(approximate("2001:db8:1:2::5"), "2001:db8:1::/48");
        assert_eq!(approximate("unknown"), "unknown");
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(describe(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe(chrome), "Safari on iOS");
        assert_eq!(describe("curl/8.5.0"), "curl");
        assert_eq!(describe(""), "Unknown client");
    }
}
