//! Account routes: verification, sign-in, refresh rotation, logout, `/auth/me`, and the
//! `AuthUser` extractor every authenticated route uses. No route here mails: the mail
//! reactor (handlers) answers the events these commands commit.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::{issue_command_id, Command, Email, PasswordHash, RevokeReason, SignInMethod};
use jukebox_nats::{EventRef, OutcomeStatus};
use jukebox_projections::accounts::AccountRow;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::api::{credential_envelope, envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::rate_limit::Bucket;
use crate::state::AppState;
use crate::tokens::{RefreshToken, VerificationToken};
use crate::{accounts, password};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/verify-email", post(verify_email))
        .route("/auth/resend-verification", post(resend_verification))
        .route("/auth/signin", post(sign_in))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

#[derive(OpenApi)]
#[openapi(paths(verify_email, resend_verification, sign_in, refresh, logout, me))]
pub(crate) struct Doc;

/// The caller's address (the TCP peer), the key of the per-address limits.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
        ))
    }
}

/// A request with a valid access token whose session and account are live.
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub account: AccountRow,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.account.is_admin()
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "send an access token: `Authorization: Bearer <token>`",
                )
            })?;
        let claims = state.auth.jwt.verify(token.trim()).map_err(|_| {
            state.metrics.auth_failure("access_token");
            ApiError::unauthorized(
                "invalid_token",
                "the access token is invalid or expired; refresh it or sign in again",
            )
        })?;
        // No memory of earlier answers: a revoked admin or session is refused at once.
        // A request that passes a position is answered as of it; the access state is
        // written with the events that change it, so there is nothing to wait for, but a
        // malformed position is refused here like on every read.
        crate::fresh::After::from_request_parts(parts, state).await?;
        let Some((account, revoked)) =
            accounts::authenticate(&state.pool, claims.sub, claims.sid).await?
        else {
            return Err(ApiError::unauthorized("invalid_token", "no such account"));
        };
        if account.disabled {
            return Err(ApiError::unauthorized(
                "account_disabled",
                "this account is disabled; contact an administrator",
            ));
        }
        if revoked {
            return Err(ApiError::unauthorized(
                "session_revoked",
                "this session has ended; sign in again",
            ));
        }
        Ok(Self {
            user_id: claims.sub,
            session_id: claims.sid,
            account,
        })
    }
}

/// An account as its owner sees it.
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    id: Uuid,
    email: String,
    roles: Vec<String>,
    verified: bool,
}

pub fn user_info(account: &AccountRow) -> UserInfo {
    UserInfo {
        id: account.user_id,
        email: account.email.clone(),
        roles: account.roles.clone(),
        verified: account.verified,
    }
}

/// `GET /auth/me`: who am I.
#[utoipa::path(get, path = "/auth/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = UserInfo), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn me(user: AuthUser) -> Json<UserInfo> {
    Json(user_info(&user.account))
}

/// Refuses the request with 429 when any of these keys is over its limit.
pub fn limited(state: &AppState, keys: &[(Bucket, &str)]) -> Result<(), ApiError> {
    for (bucket, key) in keys {
        if let Err(retry_after) = state.limiter.check(*bucket, key) {
            state.metrics.rate_limited(bucket.name());
            return Err(ApiError::RateLimited(retry_after));
        }
    }
    Ok(())
}

fn hit(state: &AppState, keys: &[(Bucket, &str)]) {
    for (bucket, key) in keys {
        state.limiter.hit(*bucket, key);
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignInRequest {
    email: String,
    password: String,
}

/// A fresh or refreshed session; the refresh token is in an HttpOnly cookie.
#[derive(Serialize, ToSchema)]
struct SessionResponse {
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
async fn sign_in(
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
    let account = accounts::by_email(&state.pool, email.as_str()).await?;
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
            let error = outcome.error.clone().unwrap_or_else(|| {
                jukebox_domain::CommandError::new("rejected", "sign-in was refused")
            });
            match error.code.as_str() {
                "account_disabled" | "email_not_verified" => {
                    state.metrics.auth_failure("signin_refused");
                    Err(ApiError::forbidden(&error.code, error.message))
                }
                _ => Err(rejection(outcome)),
            }
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
async fn refresh(
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
        accounts::authenticate(&state.pool, token.user_id, token.session_id).await?
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
    let replacement = RefreshToken::generate(token.session_id, token.user_id);
    let command = Command::RefreshSession {
        session_id: token.session_id,
        presented: token.hash(),
        replacement: replacement.hash(),
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
                jukebox_domain::CommandError::new("invalid_session", "sign in again")
            });
            failed(ApiError::unauthorized(&error.code, error.message))
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
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    /// From the mailed link.
    token: String,
}

#[derive(Serialize, ToSchema)]
struct Verified {
    verified: bool,
    user_id: Uuid,
}

/// `POST /auth/verify-email`: single use, expiring; only the token's hash is compared.
#[utoipa::path(post, path = "/auth/verify-email", tag = "accounts", params(CommandHeaders),
    request_body = VerifyRequest,
    responses((status = 200, body = Verified),
        (status = 400, body = ErrorBody, description = "invalid, used or expired token"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn verify_email(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    limited(&state, &[(Bucket::VerifyAddress, &addr)])?;
    let invalid = || {
        ApiError::bad_request(
            "invalid_token",
            "this verification link is invalid or was already used; ask for a new one",
        )
    };
    let Some(token) = VerificationToken::parse(&body.token) else {
        hit(&state, &[(Bucket::VerifyAddress, &addr)]);
        state.metrics.auth_failure("verify");
        return Err(invalid());
    };
    let user_key = token.user_id.to_string();
    let keys = [
        (Bucket::VerifyAddress, addr.as_str()),
        (Bucket::VerifyAccount, user_key.as_str()),
    ];
    limited(&state, &keys)?;
    let command = Command::VerifyEmail {
        user_id: token.user_id,
        token_hash: token.hash(),
        admin_bootstrap_email: state.auth.admin_bootstrap_email.clone(),
    };
    let envelope = envelope(&headers, None, command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(Json(Verified {
            verified: true,
            user_id: token.user_id,
        })
        .into_response()),
        Some(outcome) => {
            hit(&state, &keys);
            state.metrics.auth_failure("verify");
            let error = outcome.error.unwrap_or_else(|| {
                jukebox_domain::CommandError::new("invalid_token", "invalid token")
            });
            match error.code.as_str() {
                "token_expired" => Err(ApiError::bad_request(&error.code, error.message)),
                _ => Err(invalid()),
            }
        }
        None => Err(ApiError::Unavailable(
            "verification was not answered in time".into(),
        )),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResendRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
struct ResendResponse {
    status: &'static str,
    /// Only with `EXPOSE_VERIFICATION_TOKEN` (development and tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_token: Option<String>,
}

/// `POST /auth/resend-verification`: always 202, whether or not the address has an
/// unverified account, so it does not tell who has signed up.
#[utoipa::path(post, path = "/auth/resend-verification", tag = "accounts",
    params(CommandHeaders), request_body = ResendRequest,
    responses((status = 202, body = ResendResponse),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn resend_verification(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResendRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::unprocessable("invalid_email", e.to_string()))?;
    let keys = [
        (Bucket::SignUpAddress, addr.as_str()),
        (Bucket::SignUpAccount, email.as_str()),
    ];
    limited(&state, &keys)?;
    hit(&state, &keys);
    let mut body = ResendResponse {
        status: "if this address has an account that is not verified yet, a new link is on its way",
        verification_token: None,
    };
    // The user aggregate decides (unknown or verified: nothing happens); the mail reactor
    // answers `VerificationRequested` with a new link.
    if let Some(account) = accounts::by_email(&state.pool, email.as_str()).await? {
        let command = Command::RequestVerification {
            user_id: account.user_id,
        };
        let envelope = envelope(&headers, None, command)?;
        if let Some(outcome) = send(&state, &envelope).await? {
            let requested = outcome
                .events
                .iter()
                .find(|e| e.event_type == "VerificationRequested");
            if let Some(event) = requested {
                body.verification_token = exposed_token(&state, event).await?;
            }
        }
    }
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Dev and tests only (`EXPOSE_VERIFICATION_TOKEN`): the token the mail reactor makes for
/// `event` (derived from the event's id), once the reactor has committed its hash, so the
/// caller can verify at once. `None` when not exposing, or not committed within the
/// command wait.
pub async fn exposed_token(state: &AppState, event: &EventRef) -> Result<Option<String>, ApiError> {
    if !state.auth.expose_verification_token {
        return Ok(None);
    }
    let Ok(user_id) = event.aggregate_id.parse::<Uuid>() else {
        return Ok(None);
    };
    let event_id = format!(
        "{}:{}:{}",
        event.aggregate_type, event.aggregate_id, event.sequence
    );
    let token = VerificationToken::derive(&state.auth.verification_key, user_id, &event_id);
    let issued = tokio::time::timeout(
        state.command_wait,
        crate::api::stored_outcome_soon(state, issue_command_id(&event_id)),
    )
    .await;
    let Ok(outcome) = issued else {
        return Ok(None);
    };
    Ok((outcome?.status == OutcomeStatus::Committed).then(|| token.as_str().to_owned()))
}
