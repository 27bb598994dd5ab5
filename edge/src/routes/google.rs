//! Google sign-in: authorization code flow with PKCE (S256), `state` and `nonce` bound to
//! the browser by an HMAC-signed, HttpOnly cookie (SECURITY.md 11). The ID token is
//! verified against the provider's JWKS (RS256), issuer, audience, expiry and nonce.
//! Accounts link by (issuer, subject), never by email alone (SECURITY.md 12).
//! Every URL comes from configuration, so tests run a fake provider on loopback.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use jukebox_domain::{Command, Email, ErrorCode, ExternalIdentity, SignInMethod};
use jukebox_nats::log;
use jukebox_nats::OutcomeStatus;
use jukebox_projections::access;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::{credential_envelope, rejection, send};
use crate::error::{ApiError, ErrorBody};
use crate::routes::auth::{cookie, open_session, refresh_cookie};
use crate::settings::GoogleSettings;
use crate::state::AppState;
use crate::tokens;

/// How long a sign-in attempt may take between login and callback.
const ATTEMPT_SECONDS: i64 = 600;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/google/login", get(login))
        .route("/auth/google/callback", get(callback))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(login, callback))]
pub(crate) struct Doc;

fn settings(state: &AppState) -> Result<&GoogleSettings, ApiError> {
    state
        .auth
        .google
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Google sign-in is not configured on this server"))
}

fn sign(key: &[u8], data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// What the browser carries between login and callback.
struct Attempt {
    state: String,
    nonce: String,
    verifier: String,
}

impl Attempt {
    fn encode(&self, key: &[u8]) -> String {
        let expires = OffsetDateTime::now_utc().unix_timestamp() + ATTEMPT_SECONDS;
        let data = format!("{}.{}.{}.{expires}", self.state, self.nonce, self.verifier);
        let mac = sign(key, &data);
        format!("{data}.{mac}")
    }

    fn decode(key: &[u8], raw: &str) -> Option<Self> {
        let (data, mac) = raw.rsplit_once('.')?;
        if !bool::from(sign(key, data).as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let mut parts = data.split('.');
        let (state, nonce, verifier, expires) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if expires.parse::<i64>().ok()? < OffsetDateTime::now_utc().unix_timestamp() {
            return None;
        }
        Some(Self {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
        })
    }
}

fn attempt_cookie(state: &AppState, value: Option<&str>) -> HeaderValue {
    let name = state.auth.oauth_cookie_name();
    let path = format!("{}/auth/google", state.mount);
    let secure = if state.auth.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    // Lax: the callback is a top-level navigation coming from the provider's site.
    let cookie = match value {
        Some(value) => format!(
            "{name}={value}; Path={path}; Max-Age={ATTEMPT_SECONDS}; HttpOnly; SameSite=Lax{secure}"
        ),
        None => format!("{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
    };
    HeaderValue::from_str(&cookie).expect("cookie values are visible ASCII")
}

/// `GET /auth/google/login`: redirects to the provider.
#[utoipa::path(get, path = "/auth/google/login", tag = "accounts",
    responses((status = 303, description = "to Google, with the attempt cookie"),
        (status = 404, body = ErrorBody, description = "Google sign-in is not configured")))]
async fn login(State(state): State<AppState>) -> Result<Response, ApiError> {
    let google = settings(&state)?;
    let attempt = Attempt {
        state: tokens::random_secret(),
        nonce: tokens::random_secret(),
        verifier: tokens::random_secret(),
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(attempt.verifier.as_bytes()));
    let mut url = url::Url::parse(&google.auth_url)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("GOOGLE_AUTH_URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &google.client_id)
        .append_pair("redirect_uri", &google.redirect_url)
        .append_pair("scope", "openid email")
        .append_pair("state", &attempt.state)
        .append_pair("nonce", &attempt.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let cookie = attempt_cookie(&state, Some(&attempt.encode(&google.cookie_key)));
    Ok((
        StatusCode::SEE_OTHER,
        [
            (
                header::LOCATION,
                HeaderValue::from_str(url.as_str()).expect("a URL"),
            ),
            (header::SET_COOKIE, cookie),
        ],
    )
        .into_response())
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    nonce: Option<String>,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
}

fn bad(code: &str, message: &str) -> ApiError {
    ApiError::bad_request(code, message)
}

/// `GET /auth/google/callback`: checks state, exchanges the code (with the PKCE
/// verifier), verifies the ID token, links or creates the account, opens a session and
/// sends the browser on with the refresh cookie.
#[utoipa::path(get, path = "/auth/google/callback", tag = "accounts",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("error" = Option<String>, Query, description = "the provider refused")),
    responses((status = 303, description = "signed in: on to the app with the refresh cookie"),
        (status = 400, body = ErrorBody, description = "state, code or ID token refused"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the address has a password account"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let google = settings(&state)?;
    let result = finish(&state, google, &headers, &query).await;
    let clear = attempt_cookie(&state, None);
    match result {
        Ok(response) => Ok(response),
        Err(error) => {
            state.metrics.auth_failure("google");
            let mut response = error.into_response();
            response.headers_mut().append(header::SET_COOKIE, clear);
            Ok(response)
        }
    }
}

async fn finish(
    state: &AppState,
    google: &GoogleSettings,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    if let Some(error) = query.get("error") {
        tracing::info!(error, "google sign-in refused by the provider");
        return Err(bad(
            "google_denied",
            "Google did not sign you in; try again",
        ));
    }
    let attempt = cookie(headers, state.auth.oauth_cookie_name())
        .and_then(|raw| Attempt::decode(&google.cookie_key, raw))
        .ok_or_else(|| {
            bad(
                "invalid_oauth_state",
                "this sign-in attempt was not started here or has expired; start again",
            )
        })?;
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

    // Exchange the code. A code the provider refuses (used before, expired) ends here.
    let exchanged = google
        .http
        .post(&google.token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &google.redirect_url),
            ("client_id", &google.client_id),
            (
                "client_secret",
                secrecy::ExposeSecret::expose_secret(&google.client_secret),
            ),
            ("code_verifier", &attempt.verifier),
        ])
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("google token endpoint: {e}")))?;
    if !exchanged.status().is_success() {
        return Err(bad(
            "google_code_rejected",
            "Google refused the sign-in code (it may have been used already); start again",
        ));
    }
    let tokens: TokenResponse = exchanged
        .json()
        .await
        .map_err(|_| bad("google_bad_response", "Google's answer could not be read"))?;
    let claims = verify_id_token(google, &tokens.id_token).await?;
    if !claims
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(attempt.nonce.as_bytes())))
    {
        return Err(bad(
            "invalid_id_token",
            "the identity token does not belong to this sign-in attempt",
        ));
    }

    let user_id = match linked_user(state, &claims.iss, &claims.sub).await? {
        Some(user_id) => user_id,
        None => create_account(state, headers, &claims).await?,
    };
    let (session_id, refresh) =
        open_session(state, headers, user_id, SignInMethod::Google, None).await?;
    tracing::info!(%user_id, %session_id, "google sign-in");
    let mut response = (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(&google.success_redirect).expect("a URL"),
        )],
    )
        .into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, refresh_cookie(state, Some(&refresh)));
    headers.append(header::SET_COOKIE, attempt_cookie(state, None));
    Ok(response)
}

async fn verify_id_token(google: &GoogleSettings, id_token: &str) -> Result<IdClaims, ApiError> {
    let invalid = || {
        bad(
            "invalid_id_token",
            "the identity token could not be verified",
        )
    };
    let header = jsonwebtoken::decode_header(id_token).map_err(|_| invalid())?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid());
    }
    let jwks: JwkSet = google
        .http
        .get(&google.jwks_url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| ApiError::Unavailable(format!("google JWKS: {e}")))?
        .json()
        .await
        .map_err(|e| ApiError::Unavailable(format!("google JWKS: {e}")))?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None => jwks.keys.first(),
    }
    .ok_or_else(invalid)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| invalid())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.set_audience(&[&google.client_id]);
    let issuers: Vec<&str> = if google.issuer == "https://accounts.google.com" {
        vec!["https://accounts.google.com", "accounts.google.com"]
    } else {
        vec![google.issuer.as_str()]
    };
    validation.set_issuer(&issuers);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 30;
    let data = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation).map_err(|e| {
        tracing::info!(error = %e, "google ID token refused");
        invalid()
    })?;
    Ok(data.claims)
}

/// The user linked to (issuer, subject), from the `external_identity` aggregate (its id a
/// keyed hash, ADR 43).
async fn linked_user(
    state: &AppState,
    issuer: &str,
    subject: &str,
) -> Result<Option<Uuid>, ApiError> {
    let id = (state.claim_ids)
        .id("external_identity", &ExternalIdentity::id(issuer, subject))
        .await?;
    let first = log::first(&state.pool, "external_identity", &id).await?;
    Ok(first
        .and_then(|event| event.decode::<jukebox_domain::ExternalIdentityEvent>().ok())
        .map(|jukebox_domain::ExternalIdentityEvent::IdentityLinked { user_id }| user_id))
}

/// A first Google sign-in: a new account, unless the address already has one (then the
/// person signs in with their password; we never link by email alone).
async fn create_account(
    state: &AppState,
    headers: &HeaderMap,
    claims: &IdClaims,
) -> Result<Uuid, ApiError> {
    let email = claims
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| {
            bad(
                "invalid_id_token",
                "Google did not share a usable email address",
            )
        })?;
    if access::by_email(&state.pool, email.as_str())
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "account_exists",
            "an account with this email address already exists; sign in with your password",
        ));
    }
    let user_id = Uuid::now_v7();
    let command = Command::SignUpWithIdentity {
        user_id,
        email,
        issuer: claims.iss.clone(),
        subject: claims.sub.clone(),
        email_verified: claims.email_verified,
        admin_bootstrap_email: state.auth.admin_bootstrap_email.clone(),
    };
    let envelope = credential_envelope(headers, None, command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(user_id),
        Some(outcome) => {
            match outcome.error.as_ref().map(|e| e.code) {
                // Two first sign-ins raced: the other one linked the identity.
                Some(ErrorCode::IdentityLinked) => linked_user(state, &claims.iss, &claims.sub)
                    .await?
                    .ok_or_else(|| rejection(outcome)),
                Some(ErrorCode::EmailTaken) => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "account_exists",
                    "an account with this email address already exists; sign in with your password",
                )),
                _ => Err(rejection(outcome)),
            }
        }
        None => Err(ApiError::Unavailable(
            "sign-up was not answered in time".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_cookie_is_tamper_proof() {
        let key = b"k".repeat(32);
        let attempt = Attempt {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
        };
        let raw = attempt.encode(&key);
        let back = Attempt::decode(&key, &raw).unwrap();
        assert_eq!(
            (back.state, back.nonce, back.verifier),
            ("s".into(), "n".into(), "v".into())
        );
        assert!(Attempt::decode(&key, &raw.replacen("s.", "x.", 1)).is_none());
        assert!(Attempt::decode(b"other", &raw).is_none());
    }
}
