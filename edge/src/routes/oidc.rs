//! Sign-in with an OpenID Connect provider (ADR 44): authorization code flow with PKCE
//! (S256), `state` and `nonce` bound to the browser by an HMAC-signed, HttpOnly cookie
//! (SECURITY.md 11); `crate::oidc` verifies the ID token (signature by the provider's
//! JWKS, issuer, audience, nonce, expiry). Accounts link by (issuer, subject), never by
//! email alone, and an address the provider has not verified never makes an account
//! (SECURITY.md 12). Google is a preset of the same code, also under `/auth/google/*`.
//! A link attempt (ADR 46) is finished by `routes::identities`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jukebox_domain::{Command, Email, ErrorCode, ExternalIdentity, SignInMethod};
use jukebox_nats::log;
use jukebox_nats::OutcomeStatus;
use jukebox_projections::access;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::commands::{credential_envelope, rejection, send};
use crate::error::{ApiError, ErrorBody};
use crate::oidc::{Attempt, Identity, OidcError, OidcProvider, OidcSettings};
use crate::routes::auth::{cookie, open_session, refresh_cookie};
use crate::state::AppState;

mod attempt;
use attempt::decode;
pub(crate) use attempt::{attempt_cookie, encode, Intent};

/// The Google preset's id (its routes predate the generic ones).
const GOOGLE: &str = "google";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/google/login", get(google_login))
        .route("/auth/google/callback", get(google_callback))
        .route("/auth/oidc/{provider}/login", get(login))
        .route("/auth/oidc/{provider}/callback", get(callback))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(google_login, google_callback, login, callback))]
pub(crate) struct Doc;

pub(crate) fn provider<'s>(
    state: &'s AppState,
    id: &str,
) -> Result<(&'s OidcSettings, &'s OidcProvider), ApiError> {
    let oidc = &state.auth.oidc;
    oidc.provider(id).map(|p| (oidc, p)).ok_or_else(|| {
        ApiError::not_found(format!(
            "no sign-in provider {id:?} is configured on this server"
        ))
    })
}

/// `GET /auth/google/login`: the Google preset's login.
#[utoipa::path(get, path = "/auth/google/login", tag = "accounts",
    responses((status = 303, description = "to Google, with the attempt cookie"),
        (status = 404, body = ErrorBody, description = "Google sign-in is not configured"),
        (status = 503, body = ErrorBody, description = "the provider could not be reached")))]
async fn google_login(State(state): State<AppState>) -> Result<Response, ApiError> {
    start(&state, GOOGLE).await
}

/// `GET /auth/oidc/{provider}/login`: redirects to the provider (discovering it first
/// when its metadata is not cached).
#[utoipa::path(get, path = "/auth/oidc/{provider}/login", tag = "accounts",
    params(("provider" = String, Path, description = "a configured provider's id, e.g. `google`")),
    responses((status = 303, description = "to the provider, with the attempt cookie"),
        (status = 400, description = "the path is not valid UTF-8"),
        (status = 404, body = ErrorBody, description = "no such provider is configured"),
        (status = 503, body = ErrorBody, description = "the provider could not be reached")))]
async fn login(
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Response, ApiError> {
    start(&state, &provider).await
}

async fn start(state: &AppState, id: &str) -> Result<Response, ApiError> {
    let (oidc, provider) = provider(state, id)?;
    let (url, attempt) = provider
        .authorize_url(&oidc.http)
        .await
        .map_err(|e| refused(provider, e))?;
    let value = encode(&oidc.cookie_key, id, &attempt, Intent::SignIn);
    let cookie = attempt_cookie(state, id, Some(&value));
    let location = HeaderValue::from_str(url.as_str())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("authorization URL: {e}")))?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
    )
        .into_response())
}

fn bad(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// A message a person can act on for each way a sign-in fails; the detail goes to the log.
pub(crate) fn refused(provider: &OidcProvider, error: OidcError) -> ApiError {
    let name = &provider.name;
    tracing::info!(provider = %provider.id, error = %error, "OpenID Connect sign-in refused");
    let token = |message: String| bad("invalid_id_token", message);
    match error {
        OidcError::Unreachable(_) => {
            ApiError::Unavailable(format!("{name} could not be reached; try again later"))
        }
        OidcError::Config(e) => {
            ApiError::Internal(anyhow::anyhow!("provider {}: {e}", provider.id))
        }
        OidcError::CodeRejected(_) => bad(
            "oidc_code_rejected",
            format!("{name} refused the sign-in code (it may have been used already); start again"),
        ),
        OidcError::BadResponse(_) => bad(
            "oidc_bad_response",
            format!("{name}'s answer could not be read; start again"),
        ),
        OidcError::Issuer(_) => token(format!(
            "the identity token was not issued by {name} ({}); sign-in refused",
            provider.issuer
        )),
        OidcError::Audience(_) => token(
            "the identity token was issued for another application than this server; \
             sign-in refused"
                .into(),
        ),
        OidcError::Nonce => {
            token("the identity token does not belong to this sign-in attempt; start again".into())
        }
        OidcError::Expired(_) => token(format!(
            "the identity token from {name} has expired (check this server's clock); start again"
        )),
        OidcError::Signature(_) => token(format!(
            "the identity token's signature does not match {name}'s keys; sign-in refused"
        )),
        OidcError::Other(_) => token("the identity token could not be verified".into()),
    }
}

/// `GET /auth/google/callback`: the Google preset's callback.
#[utoipa::path(get, path = "/auth/google/callback", tag = "accounts",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("error" = Option<String>, Query, description = "the provider refused")),
    responses((status = 303, description = "signed in: on to the app with the refresh cookie; \
            a link attempt (ADR 46): on to the app's `#/apps` with the result"),
        (status = 400, body = ErrorBody, description = "state, code or ID token refused"),
        (status = 401, body = ErrorBody, description = "a link attempt whose session has ended"),
        (status = 403, body = ErrorBody, description = "the provider has not verified the address"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the address has a password account; \
            a link: the identity is linked to another account, or another of this provider's is linked"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn google_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    finish_or_clear(&state, GOOGLE, &headers, &query).await
}

/// `GET /auth/oidc/{provider}/callback`: checks state, exchanges the code (with the PKCE
/// verifier), verifies the ID token, links or creates the account, opens a session and
/// sends the browser on with the refresh cookie.
#[utoipa::path(get, path = "/auth/oidc/{provider}/callback", tag = "accounts",
    params(("provider" = String, Path, description = "a configured provider's id"),
        ("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("error" = Option<String>, Query, description = "the provider refused")),
    responses((status = 303, description = "signed in: on to the app with the refresh cookie; \
            a link attempt (ADR 46): on to the app's `#/apps` with the result"),
        (status = 400, body = ErrorBody, description = "state, code or ID token refused"),
        (status = 401, body = ErrorBody, description = "a link attempt whose session has ended"),
        (status = 403, body = ErrorBody, description = "the provider has not verified the address"),
        (status = 404, body = ErrorBody, description = "no such provider is configured"),
        (status = 409, body = ErrorBody, description = "the address has a password account; \
            a link: the identity is linked to another account, or another of this provider's is linked"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    finish_or_clear(&state, &provider, &headers, &query).await
}

/// A failed callback also clears the attempt cookie: an attempt is tried once.
async fn finish_or_clear(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let (oidc, provider) = provider(state, id)?;
    match finish(state, oidc, provider, headers, query).await {
        Ok(response) => Ok(response),
        Err(error) => {
            state.metrics.auth_failure("oidc");
            let mut response = error.into_response();
            response
                .headers_mut()
                .append(header::SET_COOKIE, attempt_cookie(state, id, None));
            Ok(response)
        }
    }
}

async fn finish(
    state: &AppState,
    oidc: &OidcSettings,
    provider: &OidcProvider,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let name = &provider.name;
    if let Some(error) = query.get("error") {
        tracing::info!(provider = %provider.id, error, "sign-in refused by the provider");
        return Err(bad(
            "oidc_denied",
            format!("{name} did not sign you in; try again"),
        ));
    }
    let (attempt, intent) = cookie(headers, state.auth.oauth_cookie_name())
        .and_then(|raw| decode(&oidc.cookie_key, &provider.id, raw))
        .ok_or_else(|| {
            bad(
                "invalid_oauth_state",
                "this sign-in attempt was not started here or has expired; start again",
            )
        })?;
    let identity = verified_identity(oidc, provider, query, &attempt).await;
    if let Intent::Link {
        user_id,
        session_id,
    } = intent
    {
        return crate::routes::identities::finish_link(
            state, oidc, provider, headers, identity, user_id, session_id,
        )
        .await;
    }
    let identity = identity?;

    let user_id = match linked_user(state, &identity.issuer, &identity.subject).await? {
        Some(user_id) => user_id,
        None => create_account(state, headers, provider, &identity).await?,
    };
    let method = if provider.id == GOOGLE {
        SignInMethod::Google
    } else {
        SignInMethod::Oidc
    };
    let (session_id, refresh) = open_session(state, headers, user_id, method, None).await?;
    tracing::info!(provider = %provider.id, %user_id, %session_id, "OpenID Connect sign-in");
    let mut response = (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(&oidc.success_redirect).expect("a URL"),
        )],
    )
        .into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, refresh_cookie(state, Some(&refresh)));
    headers.append(
        header::SET_COOKIE,
        attempt_cookie(state, &provider.id, None),
    );
    Ok(response)
}

/// The identity the callback vouches for: the state matches the attempt's, and the code
/// exchanged with the PKCE verifier gives an ID token that passes every check.
async fn verified_identity(
    oidc: &OidcSettings,
    provider: &OidcProvider,
    query: &HashMap<String, String>,
    attempt: &Attempt,
) -> Result<Identity, ApiError> {
    let returned_state = query.get("state").map(String::as_str).unwrap_or_default();
    if !bool::from(returned_state.as_bytes().ct_eq(attempt.state.as_bytes())) {
        return Err(bad(
            "invalid_oauth_state",
            "this sign-in attempt does not match the one your browser started; start again",
        ));
    }
    let code = query
        .get("code")
        .filter(|c| !c.is_empty() && c.len() < 2048)
        .ok_or_else(|| bad("invalid_request", "the callback carries no code"))?;
    provider
        .sign_in(&oidc.http, attempt, code)
        .await
        .map_err(|e| refused(provider, e))
}

/// The user linked to (issuer, subject) now, from the `external_identity` aggregate (its
/// id a keyed hash, ADR 43; an erased account released it, ADR 42).
pub(crate) async fn linked_user(
    state: &AppState,
    issuer: &str,
    subject: &str,
) -> Result<Option<Uuid>, ApiError> {
    use jukebox_domain::ExternalIdentityEvent::{IdentityLinked, IdentityReleased};
    let id = (state.claim_ids)
        .id("external_identity", &ExternalIdentity::id(issuer, subject))
        .await?;
    let events = log::aggregate(&state.pool, "external_identity", &id, None, None).await?;
    Ok(events
        .iter()
        .filter_map(|event| event.decode::<jukebox_domain::ExternalIdentityEvent>().ok())
        .fold(None, |_, event| match event {
            IdentityLinked { user_id } => Some(user_id),
            IdentityReleased { .. } => None,
        }))
}

/// A first sign-in: a new account, unless the address already has one (then the person
/// signs in with their password; we never link by email alone). An address the provider
/// has not verified claims nothing: anyone can type any address at some providers.
async fn create_account(
    state: &AppState,
    headers: &HeaderMap,
    provider: &OidcProvider,
    identity: &Identity,
) -> Result<Uuid, ApiError> {
    let name = &provider.name;
    let email = identity
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| {
            bad(
                "invalid_id_token",
                format!("{name} did not share a usable email address; allow this server to see it"),
            )
        })?;
    if !identity.email_verified {
        return Err(ApiError::forbidden(
            "email_unverified",
            format!(
                "{name} has not verified {}; verify the address with {name}, then sign in again",
                email.as_str()
            ),
        ));
    }
    let taken = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "account_exists",
            "an account with this email address already exists; sign in with your password",
        )
    };
    if access::by_email(&state.pool, email.as_str())
        .await?
        .is_some()
    {
        return Err(taken());
    }
    let user_id = Uuid::now_v7();
    let command = Command::SignUpWithIdentity {
        user_id,
        email,
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        email_verified: true,
        admin_bootstrap_email: state.auth.admin_bootstrap_email.clone(),
    };
    let envelope = credential_envelope(headers, None, command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(user_id),
        Some(outcome) => match outcome.error.as_ref().map(|e| e.code) {
            // Two first sign-ins raced: the other one linked the identity.
            Some(ErrorCode::IdentityLinked) => {
                linked_user(state, &identity.issuer, &identity.subject)
                    .await?
                    .ok_or_else(|| rejection(outcome))
            }
            Some(ErrorCode::EmailTaken) => Err(taken()),
            _ => Err(rejection(outcome)),
        },
        None => Err(ApiError::Unavailable(
            "sign-up was not answered in time".into(),
        )),
    }
}
