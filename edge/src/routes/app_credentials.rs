//! `/me/app-credentials`: named credentials for music apps that speak the Subsonic API
//! (ADR 24). Create one (its secret is answered once), list them (never the secret),
//! revoke one (the next Subsonic request with it fails).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use jukebox_domain::app_credentials::valid_name;
use jukebox_domain::Command;
use jukebox_nats::OutcomeStatus;
use jukebox_projections::app_credentials::last_uses;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app_credentials::{load, nonce, secret};
use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me/app-credentials", get(list).post(create))
        .route("/me/app-credentials/{credential_id}", delete(revoke))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, revoke))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// What the credential is for ("Phone", "Feishin on the laptop"): 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
}

/// A new credential, with the secret shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedCredential {
    id: Uuid,
    name: String,
    /// The username to type into the app: the account's e-mail address.
    username: String,
    /// The password (or API key) to type into the app. Never shown again.
    secret: String,
}

/// `POST /me/app-credentials`: 201 with the secret.
#[utoipa::path(post, path = "/me/app-credentials", tag = "apps", security(("bearer" = [])),
    params(CommandHeaders), request_body = NewCredential,
    responses((status = 201, body = CreatedCredential),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "50 live credentials already, or a replayed key"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not a usable name"),
        (status = 503, body = ErrorBody)))]
async fn create(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewCredential>,
) -> Result<Response, ApiError> {
    if crate::idempotency::is_replay(&headers) {
        return Err(crate::idempotency::replayed());
    }
    let name = body.name.trim().to_owned();
    if !valid_name(&name) {
        return Err(ApiError::unprocessable(
            "invalid_credential_name",
            "a credential name is 1 to 64 characters, without control characters",
        ));
    }
    let credential_id = Uuid::now_v7();
    let nonce = nonce();
    let command = Command::CreateAppCredential {
        user_id: user.user_id,
        credential_id,
        name: name.clone(),
        nonce: nonce.clone(),
    };
    // The key is checked like any, but the command id is always fresh: a secret is only
    // ever answered by the request that made it (a replay is refused above).
    let mut envelope = envelope(&headers, Some(user.user_id), command)?;
    envelope.command_id = Uuid::now_v7();
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {}
        Some(outcome) => return Err(rejection(outcome)),
        None => return Err(ApiError::Unavailable("not answered in time".into())),
    }
    let secret = secret(
        &state.auth.app_credential_key,
        user.user_id,
        credential_id,
        &nonce,
    );
    let body = CreatedCredential {
        id: credential_id,
        name,
        username: user.account.email.clone(),
        secret,
    };
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct CredentialSummary {
    id: Uuid,
    name: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; null until an app used it (updated at most once a minute).
    last_used_at: Option<String>,
    /// The last app that used it, as it names itself (the Subsonic `c` parameter).
    last_client: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Credentials {
    /// Live credentials, oldest first.
    credentials: Vec<CredentialSummary>,
}

/// `GET /me/app-credentials`: my live credentials, without their secrets.
#[utoipa::path(get, path = "/me/app-credentials", tag = "apps", security(("bearer" = [])),
    responses((status = 200, body = Credentials), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn list(
    user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Credentials>, ApiError> {
    // Read from the log (not a projection): always as of the last write.
    let all = load(&state.pool, user.user_id).await?;
    let uses = last_uses(&state.pool, user.user_id).await?;
    let rfc3339 = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let credentials = all
        .live()
        .map(|c| {
            let used = uses.iter().find(|u| u.credential_id == c.credential_id);
            CredentialSummary {
                id: c.credential_id,
                name: c.name.clone(),
                created_at: rfc3339(c.created_at),
                last_used_at: used.map(|u| rfc3339(u.last_used_at)),
                last_client: used.map(|u| u.client.clone()),
            }
        })
        .collect();
    Ok(Json(Credentials { credentials }))
}

/// `DELETE /me/app-credentials/{id}`: 204; the next Subsonic request with it fails.
#[utoipa::path(delete, path = "/me/app-credentials/{credential_id}", tag = "apps",
    security(("bearer" = [])),
    params(("credential_id" = Uuid, Path), CommandHeaders),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such live credential of mine"),
        (status = 422, body = ErrorBody, description = "not a UUID"),
        (status = 503, body = ErrorBody)))]
async fn revoke(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let credential_id = Uuid::try_parse(&raw).map_err(|_| {
        ApiError::unprocessable("invalid_credential_id", "a credential id is a UUID")
    })?;
    let command = Command::RevokeAppCredential {
        user_id: user.user_id,
        credential_id,
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(StatusCode::NO_CONTENT),
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}
