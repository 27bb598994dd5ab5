//! Sessions: sign-in, refresh rotation, logout, and the refresh cookie.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jukebox_domain::{Command, Email, ErrorCode, PasswordHash, RevokeReason, SignInMethod};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::access;
use jukebox_projections::accounts::AccountRow;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{hit, limited, user_info, UserInfo};
use crate::commands::{credential_envelope, envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ClientAddr};
use crate::password;
use crate::rate_limit::Bucket;
use crate::state::AppState;
use crate::tokens::RefreshToken;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignInRequest {
    email: String,
    password: String,
}

/// A fresh or refreshed session; the refresh token is in an HttpOnly cookie.
#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds the access token lives.
    expires_in: u64,
    user: UserInfo,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the email or the password is wrong")
}

/// `POST /auth/signin`: access token in the body, refresh token in an HttpOnly cookie.
/// Unknown address and wrong password answer alike, after one argon2 computation each.
#[utoipa::path(post, path = "/auth/signin", tag = "accounts", request_body = SignInRequest,
    params(CommandHeaders),
    responses((status = 200, body = SessionResponse),
        (status = 409, body = ErrorBody, description = "an Idempotency-Key replayed: credentials are never answered twice"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "wrong email or password"),
        (status = 403, body = ErrorBody, description = "account disabled or not verified"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<Response, ApiError> {
    if crate::idempotency::is_replay(&headers) {
        return Err(crate::idempotency::replayed());
    }
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::unprocessable("invalid_email", e.to_string()))?;
    let keys = [
        (Bucket::SignInAddress, addr.as_str()),
        (Bucket::SignInAccount, email.as_str()),
    ];
    limited(&state, &keys)?;
    let account = access::by_email(&state.pool, email.as_str()).await?;
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let checked = password::verify(stored, body.password).await?;
    let Some(account) = account.filter(|_| checked.ok) else {
        hit(&state, &keys);
        state.metrics.auth_failure("signin");
        return Err(invalid_credentials());
    };
    state.limiter.clear(Bucket::SignInAccount, email.as_str());
    let rehash = checked
        .rehash
        .map(|phc| PasswordHash::parse(&phc))
        .transpose()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2 produced {e}")))?;
    let (session_id, refresh) = open_session(
        &state,
        &headers,
        account.user_id,
        SignInMethod::Password,
        rehash,
    )
    .await?;
    crate::routes::devices::record_use(&state, &headers, &addr, session_id, account.user_id).await;
    Ok(session_response(
        &state,
        StatusCode::OK,
        &account,
        session_id,
        &refresh,
    ))
}

/// Sends `SignIn`: the user aggregate decides (disabled, unverified), the session opens.
pub async fn open_session(
    state: &AppState,
    headers: &HeaderMap,
    user_id: Uuid,
    method: SignInMethod,
    rehash: Option<PasswordHash>,
) -> Result<(Uuid, RefreshToken), ApiError> {
    let session_id = Uuid::new_v4();
    let refresh = RefreshToken::generate(session_id, user_id);
    let command = Command::SignIn {
        user_id,
        session_id,
        method,
        require_verified: state.auth.email_verify_required,
        refresh_token_hash: refresh.hash(),
        session_expires_at: OffsetDateTime::now_utc() + state.auth.session_ttl,
        rehash,
    };
    let envelope = credential_envelope(headers, Some(user_id), command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok((session_id, refresh)),
        Some(outcome) => {
            let refused = outcome.error.as_ref().is_some_and(|e| {
                matches!(
                    e.code,
                    ErrorCode::AccountDisabled | ErrorCode::EmailNotVerified
                )
            });
            if refused {
                state.metrics.auth_failure("signin_refused");
            }
            Err(rejection(outcome))
        }
        None => Err(ApiError::Unavailable(
            "sign-in was not answered in time".into(),
        )),
    }
}

/// 200/303 body and cookie of a fresh or refreshed session.
pub fn session_response(
    state: &AppState,
    status: StatusCode,
    account: &AccountRow,
    session_id: Uuid,
    refresh: &RefreshToken,
) -> Response {
    let access = state
        .auth
        .jwt
        .issue(account.user_id, session_id, state.auth.access_ttl);
    let body = SessionResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.auth.access_ttl.as_secs(),
        user: user_info(account),
    };
    (
        status,
        [(header::SET_COOKIE, refresh_cookie(state, Some(refresh)))],
        Json(body),
    )
        .into_response()
}

/// The refresh cookie (or, with `None`, the header that clears it). Narrow path, HttpOnly,
/// SameSite=Strict, Secure and `__Secure-` named except on plain-http dev.
pub fn refresh_cookie(state: &AppState, token: Option<&RefreshToken>) -> HeaderValue {
    let name = state.auth.refresh_cookie_name();
    let path = format!("{}/auth", state.mount);
    let secure = if state.auth.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let cookie = match token {
        Some(token) => format!(
            "{name}={}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            token.as_str(),
            state.auth.session_ttl.as_secs()
        ),
        None => format!("{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
    };
    HeaderValue::from_str(&cookie).expect("cookie values are visible ASCII")
}

/// A cookie's value from the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn presented_refresh(state: &AppState, headers: &HeaderMap) -> Option<RefreshToken> {
    cookie(headers, state.auth.refresh_cookie_name()).and_then(RefreshToken::parse)
}

/// Cookie-authenticated endpoints refuse cross-site requests (SECURITY.md 10).
fn same_site(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site {
        return Err(ApiError::forbidden(
            "cross_site",
            "this endpoint refuses cross-site requests",
        ));
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match origin {
        Some(origin)
            if state
                .auth
                .allowed_origins
                .iter()
                .any(|allowed| allowed == origin.trim_end_matches('/')) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::forbidden(
            "foreign_origin",
            "requests from this origin are refused here",
        )),
        None => Err(ApiError::forbidden(
            "missing_origin",
            "this endpoint needs the `Origin` header that browsers send",
        )),
    }
}

fn clearing(state: &AppState, error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, refresh_cookie(state, None));
    response
}

/// `POST /auth/refresh`: rotates the refresh token. A rotated token presented again
/// revokes the whole family (the `Session` aggregate decides and records it).
#[utoipa::path(post, path = "/auth/refresh", tag = "accounts", params(CommandHeaders),
    responses((status = 200, body = SessionResponse),
        (status = 409, body = ErrorBody, description = "an Idempotency-Key replayed: credentials are never answered twice"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "no valid session cookie"),
        (status = 403, body = ErrorBody, description = "cross-site, foreign or missing Origin; account disabled"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn refresh(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_site(&state, &headers)?;
    if crate::idempotency::is_replay(&headers) {
        return Err(crate::idempotency::replayed());
    }
    limited(&state, &[(Bucket::RefreshAddress, &addr)])?;
    let Some(token) = presented_refresh(&state, &headers) else {
        hit(&state, &[(Bucket::RefreshAddress, &addr)]);
        state.metrics.auth_failure("refresh");
        return Ok(clearing(
            &state,
            ApiError::unauthorized("no_session", "no valid session cookie; sign in"),
        ));
    };
    let session_key = token.session_id.to_string();
    let keys = [
        (Bucket::RefreshAddress, addr.as_str()),
        (Bucket::RefreshAccount, session_key.as_str()),
    ];
    limited(&state, &keys)?;
    let failed = |error: ApiError| {
        hit(&state, &keys);
        state.metrics.auth_failure("refresh");
        Ok(clearing(&state, error))
    };
    let Some((account, over)) =
        access::authenticate(&state.pool, token.user_id, token.session_id).await?
    else {
        return failed(ApiError::unauthorized(
            "invalid_session",
            "your session is not valid; sign in again",
        ));
    };
    if account.disabled {
        return failed(ApiError::forbidden(
            "account_disabled",
            "this account is disabled; contact an administrator",
        ));
    }
    if over {
        // Revoked, or ended by a disable (older epoch): the session decides nothing more.
        return failed(ApiError::unauthorized(
            "session_revoked",
            "your session has ended; sign in again",
        ));
    }
    // Derived, not random: a second tab refreshing with the same token at the same moment
    // asks for the same replacement and is answered with it (ADR 29).
    let replacement = token.rotated(&state.auth.refresh_rotation_key);
    let grace_ms = u32::try_from(state.auth.refresh_grace.as_millis()).unwrap_or(u32::MAX);
    let command = Command::RefreshSession {
        session_id: token.session_id,
        presented: token.hash(),
        replacement: replacement.hash(),
        grace_ms,
    };
    let envelope = credential_envelope(&headers, Some(token.user_id), command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {
            if outcome
                .events
                .iter()
                .any(|e| e.event_type == "RefreshTokenReused")
            {
                state.metrics.auth_failure("refresh_token_reused");
                return failed(ApiError::unauthorized(
                    "refresh_token_reused",
                    "an old session token was used again, so this session was ended \
                     everywhere; sign in again",
                ));
            }
            state.limiter.clear(Bucket::RefreshAccount, &session_key);
            crate::routes::devices::record_use(
                &state,
                &headers,
                &addr,
                token.session_id,
                token.user_id,
            )
            .await;
            Ok(session_response(
                &state,
                StatusCode::OK,
                &account,
                token.session_id,
                &replacement,
            ))
        }
        Some(outcome) => {
            let error = outcome.error.unwrap_or_else(|| {
                jukebox_domain::CommandError::new(ErrorCode::InvalidSession, "sign in again")
            });
            failed(ApiError::unauthorized(error.code.as_str(), error.message))
        }
        None => Err(ApiError::Unavailable(
            "refresh was not answered in time".into(),
        )),
    }
}

/// `POST /auth/logout`: revokes the session's family and clears the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "accounts",
    responses((status = 204, description = "signed out"), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "cross-site, foreign or missing Origin"),
        (status = 503, body = ErrorBody)))]
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_site(&state, &headers)?;
    if let Some(token) = presented_refresh(&state, &headers) {
        let command = Command::RevokeSession {
            session_id: token.session_id,
            presented: Some(token.hash()),
            reason: RevokeReason::Logout,
        };
        let envelope = envelope(&headers, Some(token.user_id), command)?;
        // A token that is not (or no longer) valid has nothing to revoke.
        send(&state, &envelope).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, refresh_cookie(&state, None))],
    )
        .into_response())
}
