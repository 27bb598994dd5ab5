//! `/me/identities`: the sign-in providers linked to my account (ADR 46). A signed-in
//! owner starts a link here; the provider's callback (`routes::oidc`) finishes it, for
//! the account and session the signed attempt cookie names, and only for an address the
//! provider verified. Never by matching addresses: the provider's address need not be
//! the account's. Unlinking keeps the account a way to sign in.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::{Command, Email, ErrorCode, UserEvent};
use jukebox_nats::{log, OutcomeStatus};
use jukebox_projections::access::{self, Verdict};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{denied, AuthUser};
use crate::oidc::{Identity, OidcProvider, OidcSettings};
use crate::routes::oidc::{attempt_cookie, encode, provider, refused, Intent};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me/identities", get(list))
        .route("/me/identities/{provider}", post(start).delete(unlink))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, start, unlink))]
pub(crate) struct Doc;

/// One provider linked to my account.
#[derive(Serialize, ToSchema)]
pub struct LinkedIdentity {
    /// The configured provider's id (in `/me/identities/{provider}`); `null` when this
    /// server no longer configures it.
    provider: Option<String>,
    /// Its name, or its issuer when it is no longer configured.
    name: String,
    /// The address the provider verified when it was linked (it may differ from the
    /// account's).
    email: String,
    /// RFC 3339.
    linked_at: String,
    #[serde(skip)]
    issuer: String,
    #[serde(skip)]
    subject: String,
}

#[derive(Serialize, ToSchema)]
pub struct LinkedIdentities {
    identities: Vec<LinkedIdentity>,
    /// Whether the account has a password: without one, its last identity cannot go.
    has_password: bool,
}

#[derive(Serialize, ToSchema)]
pub struct LinkStarted {
    /// Send the browser here (a top-level navigation); the provider returns it to the
    /// callback, which links the identity and goes on to the app's `#/apps`.
    authorization_url: String,
}

/// The account's identities, folded from its own log (sealed fields opened with its key),
/// so a link or unlink a moment ago is already there.
async fn linked(state: &AppState, user_id: Uuid) -> Result<LinkedIdentities, ApiError> {
    let mut records = log::aggregate(&state.pool, "user", &user_id.to_string(), None, None).await?;
    jukebox_nats::user_keys::open_records(&state.pool, &mut records, jukebox_nats::sealed::ERASED)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let oidc = &state.auth.oidc;
    let mut identities: Vec<LinkedIdentity> = Vec::new();
    let mut has_password = false;
    for record in &records {
        let Ok(event) = record.decode::<UserEvent>() else {
            continue;
        };
        let at = record.recorded_at.format(&Rfc3339).unwrap_or_default();
        let (issuer, subject, email, stored) = match event {
            UserEvent::UserSignedUp { .. }
            | UserEvent::PasswordReset { .. }
            | UserEvent::PasswordChanged { .. } => {
                has_password = true;
                continue;
            }
            UserEvent::UserSignedUpWithIdentity {
                issuer,
                subject,
                email,
                ..
            } => (issuer, subject, email, None),
            UserEvent::IdentityAdded {
                provider,
                issuer,
                subject,
                email,
            } => (issuer, subject, email, Some(provider)),
            UserEvent::IdentityRemoved { issuer, subject } => {
                identities.retain(|i| i.issuer != issuer || i.subject != subject);
                continue;
            }
            UserEvent::UserErased => {
                identities.clear();
                continue;
            }
            _ => continue,
        };
        let configured = oidc.providers.iter().find(|p| p.issuer == issuer);
        identities.push(LinkedIdentity {
            provider: configured.map(|p| p.id.clone()).or(stored),
            name: configured.map_or_else(|| issuer.clone(), |p| p.name.clone()),
            email: email.to_string(),
            linked_at: at,
            issuer,
            subject,
        });
    }
    Ok(LinkedIdentities {
        identities,
        has_password,
    })
}

/// `GET /me/identities`: the providers I can sign in with.
#[utoipa::path(get, path = "/me/identities", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = LinkedIdentities), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list(
    user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<LinkedIdentities>, ApiError> {
    Ok(Json(linked(&state, user.user_id).await?))
}

/// `POST /me/identities/{provider}`: starts linking the provider to my account. Answers
/// the provider's authorization URL and sets the attempt cookie (HMAC-signed, ten
/// minutes), which names this account and session.
#[utoipa::path(post, path = "/me/identities/{provider}", tag = "accounts",
    security(("bearer" = [])),
    params(("provider" = String, Path, description = "a configured provider's id, e.g. `google`")),
    responses((status = 200, body = LinkStarted, description = "go there; the attempt cookie is set"),
        (status = 400, body = ErrorBody, description = "the path is not valid UTF-8"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such provider is configured"),
        (status = 503, body = ErrorBody, description = "the provider could not be reached")))]
async fn start(
    user: AuthUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (oidc, provider) = provider(&state, &id)?;
    let (url, attempt) = provider
        .authorize_url(&oidc.http)
        .await
        .map_err(|e| refused(provider, e))?;
    let intent = Intent::Link {
        user_id: user.user_id,
        session_id: user.session_id,
    };
    let value = encode(&oidc.cookie_key, &provider.id, &attempt, intent);
    let body = LinkStarted {
        authorization_url: url.to_string(),
    };
    Ok((
        [(
            header::SET_COOKIE,
            attempt_cookie(&state, &provider.id, Some(&value)),
        )],
        Json(body),
    )
        .into_response())
}

fn provider_linked(provider: &OidcProvider) -> ApiError {
    let name = &provider.name;
    ApiError::new(
        StatusCode::CONFLICT,
        "provider_linked",
        format!("your account already has a {name} sign-in; unlink it first to link another {name} account"),
    )
}

/// `DELETE /me/identities/{provider}`: 204; the provider no longer signs me in. Refused
/// when it is the account's only way to sign in.
#[utoipa::path(delete, path = "/me/identities/{provider}", tag = "accounts",
    security(("bearer" = [])),
    params(("provider" = String, Path, description = "the provider's id, as `GET /me/identities` lists it"), CommandHeaders),
    responses((status = 204),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`identity_not_linked`: no such provider is linked"),
        (status = 409, body = ErrorBody, description = "`last_sign_in_method`: the account would have no way to sign in"),
        (status = 422, body = ErrorBody, description = "an Idempotency-Key reused with another request"),
        (status = 503, body = ErrorBody)))]
async fn unlink(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mine = linked(&state, user.user_id).await?;
    let Some(identity) = mine
        .identities
        .into_iter()
        .find(|i| i.provider.as_deref() == Some(id.as_str()))
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "identity_not_linked",
            format!("no provider {id:?} is linked to your account"),
        ));
    };
    let command = Command::UnlinkIdentity {
        user_id: user.user_id,
        issuer: identity.issuer,
        subject: identity.subject,
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(StatusCode::NO_CONTENT),
        Some(outcome) => match outcome.error.as_ref().map(|e| e.code) {
            Some(ErrorCode::LastSignInMethod) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "last_sign_in_method",
                format!(
                    "{} is the only way to sign in to your account; link another provider \
                     or set a password (\"Forgot password\") before unlinking it",
                    identity.name
                ),
            )),
            _ => Err(rejection(outcome)),
        },
        None => Err(ApiError::Unavailable(
            "the unlink was not answered in time; look at the list again".into(),
        )),
    }
}

/// The callback of a link attempt: links the identity, then sends the browser to the
/// app's `#/apps` with the result (`linked=<id>`, or `link_error=<code>`). A client that
/// does not ask for HTML gets the error itself (403, 409, ...).
pub(crate) async fn finish_link(
    state: &AppState,
    oidc: &OidcSettings,
    provider: &OidcProvider,
    headers: &HeaderMap,
    identity: Result<Identity, ApiError>,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Response, ApiError> {
    let linked = match identity {
        Ok(identity) => link(state, provider, headers, &identity, user_id, session_id).await,
        Err(error) => Err(error),
    };
    let result = match linked {
        Ok(()) => format!("linked={}", provider.id),
        Err(error) => {
            let browser = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"));
            if !browser {
                return Err(error);
            }
            state.metrics.auth_failure("oidc");
            let code = match &error {
                ApiError::Client { code, .. } => code.clone(),
                ApiError::Unavailable(_) => "unavailable".into(),
                _ => "internal".into(),
            };
            tracing::info!(provider = %provider.id, %user_id, %code, "link refused");
            format!("link_error={code}&provider={}", provider.id)
        }
    };
    // The app's own page, without any fragment it had, on the Apps & devices view.
    let app = oidc.success_redirect.split('#').next().unwrap_or("/");
    let location = HeaderValue::from_str(&format!("{app}#/apps?{result}"))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("redirect: {e}")))?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                attempt_cookie(state, &provider.id, None),
            ),
        ],
    )
        .into_response())
}

async fn link(
    state: &AppState,
    provider: &OidcProvider,
    headers: &HeaderMap,
    identity: &Identity,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<(), ApiError> {
    // The session that started the link must still be live: signing out cancels it.
    match access::authenticate(&state.pool, user_id, session_id).await? {
        None => return Err(denied(Verdict::NoAccount)),
        Some((account, _)) if account.disabled => return Err(denied(Verdict::Disabled)),
        Some((_, true)) => return Err(denied(Verdict::SessionOver)),
        Some(_) => {}
    }
    let name = &provider.name;
    let email = identity
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_id_token",
                format!("{name} did not share a usable email address; allow this server to see it"),
            )
        })?;
    // An address the provider has not verified never links an account (ADR 44).
    if !identity.email_verified {
        return Err(ApiError::forbidden(
            "email_unverified",
            format!(
                "{name} has not verified {}; verify the address with {name}, then link it again",
                email.as_str()
            ),
        ));
    }
    let command = Command::LinkIdentity {
        user_id,
        provider: provider.id.clone(),
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        email,
    };
    let mut headers = headers.clone();
    headers.remove("idempotency-key");
    let envelope = envelope(&headers, Some(user_id), command)?;
    match send(state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {
            tracing::info!(provider = %provider.id, %user_id, "identity linked");
            Ok(())
        }
        Some(outcome) => match outcome.error.as_ref().map(|e| e.code) {
            Some(ErrorCode::IdentityLinked) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "identity_linked",
                format!(
                    "this {name} account is already linked to another Jukebox account; \
                     unlink it there first, or link a different {name} account"
                ),
            )),
            Some(ErrorCode::ProviderLinked) => Err(provider_linked(provider)),
            _ => Err(rejection(outcome)),
        },
        None => Err(ApiError::Unavailable(
            "the link was not answered in time; look at your sign-in methods again".into(),
        )),
    }
}
