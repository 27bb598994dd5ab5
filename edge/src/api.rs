//! The API gateway's routes.

use axum::extract::{DefaultBodyLimit, MatchedPath, Path, State};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::{Command, Email, PasswordHash};
use jukebox_nats::{CommandEnvelope, CommandOutcome, OutcomeStatus, SendError};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::headers::with_security_headers;
use crate::password;
use crate::state::AppState;

/// JSON bodies are small; uploads get their own limit.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/auth/signup", post(sign_up))
        .route("/commands/{command_id}", get(command_outcome))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUpRequest {
    email: String,
    password: String,
}

/// `POST /auth/signup`: claims the address and creates the account.
async fn sign_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignUpRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::unprocessable("invalid_email", e.to_string()))?;
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
            let user_id = outcome
                .events
                .iter()
                .find(|e| e.aggregate_type == "user")
                .and_then(|e| e.aggregate_id.parse().ok())
                .unwrap_or(user_id);
            Ok((
                StatusCode::CREATED,
                Json(json!({ "user_id": user_id, "email": email, "command_id": envelope.command_id })),
            )
                .into_response())
        }
        Some(outcome) => Err(rejection(outcome)),
        None => Ok(accepted(envelope.command_id)),
    }
}

/// `GET /commands/{id}`: the outcome of a command, for its issuer. Anonymous commands
/// (sign-up) are readable by whoever holds their id, an unguessable 128-bit value.
async fn command_outcome(
    State(state): State<AppState>,
    Path(command_id): Path<String>,
) -> Result<Json<CommandOutcome>, ApiError> {
    let command_id = Uuid::parse_str(&command_id)
        .map_err(|_| ApiError::unprocessable("invalid_command_id", "command id must be a UUID"))?;
    let row: Option<(sqlx::types::Json<CommandOutcome>,)> = sqlx::query_as(
        "SELECT outcome FROM command_outcomes WHERE command_id = $1 AND issued_by IS NULL",
    )
    .bind(command_id)
    .fetch_optional(&state.pool)
    .await?;
    row.map(|(outcome,)| Json(outcome.0)).ok_or_else(|| {
        ApiError::not_found(
            "no outcome for this command yet; if it was just accepted, try again shortly",
        )
    })
}

async fn ready(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    sqlx::query("SELECT 1").execute(&state.pool).await?;
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::Unavailable("nats is not connected".into()));
    }
    Ok("ready")
}

/// Builds the envelope. `Idempotency-Key` makes a retried request the same command: its id
/// is derived from the issuer and the key, so one client cannot collide with another's.
fn envelope(
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
                .filter(|k| (1..=255).contains(&k.len()))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?;
            let issuer = issued_by.map_or("anonymous".to_owned(), |u| u.to_string());
            Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("jukebox:{issuer}:{key}").as_bytes(),
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

async fn send(
    state: &AppState,
    envelope: &CommandEnvelope,
) -> Result<Option<CommandOutcome>, ApiError> {
    match state.bus.send(envelope, state.command_wait).await {
        Ok(Some(outcome)) => Ok(Some(outcome)),
        // Not answered in time (or a duplicate whose first answer went elsewhere): the
        // outcome may already be stored.
        Ok(None) => Ok(sqlx::query_as::<_, (sqlx::types::Json<CommandOutcome>,)>(
            "SELECT outcome FROM command_outcomes WHERE command_id = $1",
        )
        .bind(envelope.command_id)
        .fetch_optional(&state.pool)
        .await?
        .map(|(outcome,)| outcome.0)),
        Err(SendError::Unavailable(cause)) => Err(ApiError::Unavailable(cause)),
    }
}

fn accepted(command_id: Uuid) -> Response {
    let location = format!("/commands/{command_id}");
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(json!({ "command_id": command_id, "status": "pending", "location": location })),
    )
        .into_response()
}

fn rejection(outcome: CommandOutcome) -> ApiError {
    let error = outcome.error.unwrap_or_else(|| {
        jukebox_domain::CommandError::new("rejected", "the command was rejected")
    });
    let status = match error.code.as_str() {
        "email_taken" | "user_exists" => StatusCode::CONFLICT,
        "unknown_user" => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, &error.code, error.message)
}
