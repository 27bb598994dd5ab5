//! The API gateway's routes.

use axum::extract::{DefaultBodyLimit, MatchedPath, Path, RawQuery, State};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::{Command, Email, PasswordHash};
use jukebox_nats::{CommandEnvelope, CommandOutcome, OutcomeStatus, SendError};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tower_http::trace::TraceLayer;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::{exposed_token, limited, ClientAddr};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::headers::with_security_headers;
use crate::password;
use crate::rate_limit::Bucket;
use crate::state::AppState;

/// JSON bodies are small; uploads get their own limit.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/auth/signup", post(sign_up))
        .merge(crate::auth::routes())
        .merge(crate::google::routes())
        .merge(crate::admin::routes())
        .merge(crate::imports::routes())
        .merge(crate::library::routes())
        .route("/stream/{song_id}", get(crate::stream::issue))
        .route("/commands/{command_id}", get(command_outcome))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn(crate::fresh::stamp))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::scope,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("unmatched");
                tracing::info_span!("http", method = %request.method(), route)
            }),
        )
        .with_state(state);
    with_security_headers(routes)
}

/// This module's operations in the OpenAPI document (`crate::openapi`).
#[derive(OpenApi)]
#[openapi(paths(sign_up, command_outcome, healthz, ready))]
pub(crate) struct Doc;

/// The headers every command-sending route reads.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read from the `HeaderMap` by `envelope`; here for the document
pub(crate) struct CommandHeaders {
    /// A retried request with the same key (per caller, route and request) is the same
    /// command, applied once and answered as the first time; the key with another request
    /// is 422. Routes that issue credentials refuse a replay (409).
    #[serde(rename = "Idempotency-Key")]
    #[param(min_length = 1, max_length = 255, pattern = "^[ -~]+$")]
    idempotency_key: Option<String>,
    /// Anonymous routes: the client's nonce (16 to 128 visible ASCII characters, one per
    /// browser tab), the caller an `Idempotency-Key` is scoped to; required with a key.
    #[serde(rename = "X-Client-Nonce")]
    #[param(min_length = 16, max_length = 128, pattern = "^[!-~]+$")]
    client_nonce: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignUpRequest {
    #[schema(example = "ada@example.org")]
    email: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

#[derive(Serialize, ToSchema)]
struct SignUpResponse {
    user_id: Uuid,
    email: String,
    command_id: Uuid,
    verified: bool,
    /// Only with `EXPOSE_VERIFICATION_TOKEN` (development and tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_token: Option<String>,
}

/// A command accepted but not answered within the wait: poll `location`.
#[derive(Serialize, ToSchema)]
pub(crate) struct CommandAccepted {
    command_id: Uuid,
    #[schema(example = "pending")]
    status: String,
    location: String,
}

/// `POST /auth/signup`: claims the address and creates the account; the mail reactor then
/// mails a verification link (even when this answers 202). When verification is required, an address that is taken answers like a fresh
/// sign-up (its owner gets a mail instead), so the response does not tell who has an
/// account (SECURITY.md 3).
#[utoipa::path(post, path = "/auth/signup", tag = "accounts",
    params(CommandHeaders), request_body = SignUpRequest,
    responses(
        (status = 201, body = SignUpResponse, description = "account created (or, with verification on, an address already taken: its owner gets a mail)"),
        (status = 202, body = CommandAccepted, description = "accepted, not answered in time"),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "address taken (verification off)"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid email or password"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn sign_up(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignUpRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::unprocessable("invalid_email", e.to_string()))?;
    let keys = [
        (Bucket::SignUpAddress, addr.as_str()),
        (Bucket::SignUpAccount, email.as_str()),
    ];
    limited(&state, &keys)?;
    for (bucket, key) in keys {
        state.limiter.hit(bucket, key);
    }
    let password_hash = PasswordHash::parse(&password::hash(body.password).await?)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2 produced {e}")))?;
    let user_id = Uuid::now_v7();
    let envelope = envelope(
        &headers,
        None,
        Command::SignUp {
            user_id,
            email: email.clone(),
            password_hash,
        },
    )?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {
            // A retried request (same Idempotency-Key) gets the first request's account.
            let signed_up = outcome
                .events
                .iter()
                .find(|e| e.aggregate_type == "user" && e.event_type == "UserSignedUp");
            let user_id = signed_up
                .and_then(|e| e.aggregate_id.parse().ok())
                .unwrap_or(user_id);
            // The mail reactor mails the link (it answers `UserSignedUp`); dev and tests
            // may get the token here.
            let verification_token = match signed_up {
                Some(event) => exposed_token(&state, event).await?,
                None => None,
            };
            Ok((
                StatusCode::CREATED,
                Json(SignUpResponse {
                    user_id,
                    email: email.as_str().to_owned(),
                    command_id: envelope.command_id,
                    verified: false,
                    verification_token,
                }),
            )
                .into_response())
        }
        // The address is taken. The sign-up recorded `SignUpAttempted`, which the mail
        // reactor answers with a mail to the owner; the answer looks like a fresh one.
        Some(outcome)
            if state.auth.email_verify_required
                && outcome
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == "email_taken") =>
        {
            Ok((
                StatusCode::CREATED,
                Json(SignUpResponse {
                    user_id,
                    email: email.as_str().to_owned(),
                    command_id: envelope.command_id,
                    verified: false,
                    verification_token: None,
                }),
            )
                .into_response())
        }
        Some(outcome) => Err(rejection(outcome)),
        None => Ok(accepted(&state, envelope.command_id)),
    }
}

/// `CommandOutcome` (jukebox-nats) as the document shows it.
#[derive(ToSchema)]
#[schema(as = CommandOutcome)]
#[allow(dead_code)]
struct CommandOutcomeDoc {
    command_id: Uuid,
    #[schema(pattern = "^(committed|rejected)$")]
    status: String,
    #[schema(value_type = Option<crate::error::ErrorDetail>)]
    error: Option<()>,
    events: Vec<EventRefDoc>,
    /// The position of the last event the command wrote: pass it as `?after=` (or the
    /// `Jukebox-Position` header) to a read that must show the command's effect.
    #[schema(example = "1042.77", pattern = r"^[0-9]+\.[0-9]+$")]
    position: Option<String>,
}

#[derive(ToSchema)]
#[schema(as = EventRef)]
#[allow(dead_code)]
struct EventRefDoc {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read from the raw query; here for the document
struct OutcomeQuery {
    /// From the `202`'s `location`: only its holder reads the outcome.
    #[param(min_length = 64, max_length = 64)]
    capability: Option<String>,
}

/// `GET /commands/{id}?capability=`: the outcome of an anonymous command (sign-up), for its
/// issuer only: the `202` that accepted it gave the capability in `location`. Without it,
/// or with another command's, the answer is 404, as for an unknown id. The outcome never
/// names an address (the claim's id is one), and with verification required a taken
/// address reads like a fresh sign-up, as the `201` does (SECURITY.md 3).
#[utoipa::path(get, path = "/commands/{command_id}", tag = "accounts",
    params(("command_id" = Uuid, Path), OutcomeQuery),
    responses((status = 200, body = CommandOutcomeDoc),
        (status = 400, body = ErrorBody, description = "a parameter given twice"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn command_outcome(
    State(state): State<AppState>,
    Path(command_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<CommandOutcome>, ApiError> {
    let command_id = Uuid::parse_str(&command_id)
        .map_err(|_| ApiError::unprocessable("invalid_command_id", "command id must be a UUID"))?;
    let params = crate::library::params(raw.as_deref())?;
    let expected = capability(&state, command_id);
    let presented = params.get("capability").map(String::as_bytes);
    let allowed = presented.is_some_and(|p| bool::from(p.ct_eq(expected.as_bytes())));
    let not_found = || {
        ApiError::not_found(
            "no outcome for this command yet; if it was just accepted, try again shortly \
             (with the `location` the 202 gave)",
        )
    };
    if !allowed {
        return Err(not_found());
    }
    let row: Option<(sqlx::types::Json<CommandOutcome>,)> = sqlx::query_as(
        "SELECT outcome FROM command_outcomes WHERE command_id = $1 AND issued_by IS NULL",
    )
    .bind(command_id)
    .fetch_optional(&state.pool)
    .await?;
    let (sqlx::types::Json(mut outcome),) = row.ok_or_else(not_found)?;
    outcome.events.retain(|e| e.aggregate_type != "email_claim");
    let taken = outcome
        .error
        .as_ref()
        .is_some_and(|e| e.code == "email_taken");
    if taken && state.auth.email_verify_required {
        outcome.status = OutcomeStatus::Committed;
        outcome.error = None;
    }
    crate::fresh::record(outcome.position.as_deref());
    Ok(Json(outcome))
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: Postgres and NATS answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String),
        (status = 503, body = ErrorBody)))]
async fn ready(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    sqlx::query("SELECT 1").execute(&state.pool).await?;
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::Unavailable("nats is not connected".into()));
    }
    Ok("ready")
}

/// Builds the envelope. `Idempotency-Key` makes a retried request the same command: its id
/// is derived from the caller (the user, or on anonymous routes the client's nonce, as
/// `idempotency::scope` recorded it), the command's kind and the key, so one caller cannot
/// collide with another's, nor one route with another.
pub(crate) fn envelope(
    headers: &HeaderMap,
    issued_by: Option<Uuid>,
    command: Command,
) -> Result<CommandEnvelope, ApiError> {
    let command_id = match headers.get("idempotency-key") {
        None => Uuid::now_v7(),
        Some(key) => {
            let key = key
                .to_str()
                .ok()
                // `to_str` lets a tab through; the document says printable ASCII.
                .filter(|k| {
                    (1..=255).contains(&k.len()) && k.bytes().all(|b| (b' '..=b'~').contains(&b))
                })
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?;
            let issuer = match (issued_by, crate::idempotency::nonce(headers)) {
                (Some(user), _) => user.to_string(),
                (None, Some(nonce)) => format!("nonce:{nonce}"),
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "missing_client_nonce",
                        "an Idempotency-Key on this route needs an `X-Client-Nonce` header",
                    ))
                }
            };
            // The kind is part of it: a key reused on another route is another command,
            // never the first one's answer (schemathesis reused keys across routes).
            let kind = command.subject_suffix();
            Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("jukebox:{issuer}:{kind}:{key}").as_bytes(),
            )
        }
    };
    let correlation_id = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::now_v7);
    Ok(CommandEnvelope {
        command_id,
        correlation_id,
        issued_by,
        issued_at: OffsetDateTime::now_utc(),
        command,
    })
}

/// The envelope of a command that hands out credentials (sign-in, refresh, Google): always
/// a fresh command id, so a token is only ever answered by the request that made it. A
/// replayed key is refused before (`idempotency::replayed`).
pub(crate) fn credential_envelope(
    headers: &HeaderMap,
    issued_by: Option<Uuid>,
    command: Command,
) -> Result<CommandEnvelope, ApiError> {
    let mut headers = headers.clone();
    headers.remove("idempotency-key");
    envelope(&headers, issued_by, command)
}

/// Sends the command and waits (bounded) for its outcome; the outcome's position goes
/// into the request's answer (`crate::fresh`).
pub(crate) async fn send(
    state: &AppState,
    envelope: &CommandEnvelope,
) -> Result<Option<CommandOutcome>, ApiError> {
    let outcome = send_and_wait(state, envelope).await?;
    if let Some(outcome) = &outcome {
        crate::fresh::record(outcome.position.as_deref());
    }
    Ok(outcome)
}

async fn send_and_wait(
    state: &AppState,
    envelope: &CommandEnvelope,
) -> Result<Option<CommandOutcome>, ApiError> {
    let sent = state.bus.send(envelope, state.command_wait);
    // A retry (its id comes from an Idempotency-Key: UUIDv5) of a command that is running
    // or ran: JetStream drops the duplicate publish, so no answer comes to this request.
    // Watch for the first one's stored outcome instead of waiting out the command wait.
    let answer = if envelope.command_id.get_version_num() == 5 {
        tokio::select! {
            answer = sent => answer,
            stored = stored_outcome_soon(state, envelope.command_id) => return stored.map(Some),
        }
    } else {
        sent.await
    };
    match answer {
        Ok(Some(outcome)) => Ok(Some(outcome)),
        // Not answered in time (or a duplicate whose first answer went elsewhere): the
        // outcome may already be stored.
        Ok(None) => stored_outcome(state, envelope.command_id).await,
        Err(SendError::Unavailable(cause)) => Err(ApiError::Unavailable(cause)),
    }
}

/// The stored outcome, once there is one (polled; the caller bounds the wait).
pub(crate) async fn stored_outcome_soon(
    state: &AppState,
    command_id: Uuid,
) -> Result<CommandOutcome, ApiError> {
    loop {
        if let Some(outcome) = stored_outcome(state, command_id).await? {
            return Ok(outcome);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn stored_outcome(
    state: &AppState,
    command_id: Uuid,
) -> Result<Option<CommandOutcome>, ApiError> {
    Ok(sqlx::query_as::<_, (sqlx::types::Json<CommandOutcome>,)>(
        "SELECT outcome FROM command_outcomes WHERE command_id = $1",
    )
    .bind(command_id)
    .fetch_optional(&state.pool)
    .await?
    .map(|(outcome,)| outcome.0))
}

/// The location carries the mount, like the jobs redirect (the web role serves the API
/// under `/api`), and the capability that lets only this caller read the outcome.
fn accepted(state: &AppState, command_id: Uuid) -> Response {
    let location = format!(
        "{}/commands/{command_id}?capability={}",
        state.mount,
        capability(state, command_id)
    );
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(CommandAccepted {
            command_id,
            status: "pending".into(),
            location,
        }),
    )
        .into_response()
}

/// The capability to read an anonymous command's outcome: HMAC(request key, id).
fn capability(state: &AppState, command_id: Uuid) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&state.auth.request_key)
        .expect("HMAC takes any key length");
    mac.update(b"command outcome\0");
    mac.update(command_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) fn rejection(outcome: CommandOutcome) -> ApiError {
    let error = outcome.error.unwrap_or_else(|| {
        jukebox_domain::CommandError::new("rejected", "the command was rejected")
    });
    let status = match error.code.as_str() {
        "email_taken" | "user_exists" | "identity_linked" => StatusCode::CONFLICT,
        "unknown_user" | "not_in_library" => StatusCode::NOT_FOUND,
        "account_disabled" | "email_not_verified" | "not_admin" => StatusCode::FORBIDDEN,
        "invalid_session" | "session_revoked" | "session_expired" => StatusCode::UNAUTHORIZED,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, &error.code, error.message)
}
