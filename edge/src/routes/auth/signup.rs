//! `POST /auth/signup` and `GET /commands/{id}`: the one anonymous command, and how its
//! issuer reads an outcome that was not answered in time.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jukebox_domain::{Command, Email, ErrorCode, PasswordHash};
use jukebox_nats::outcomes;
use jukebox_nats::{CommandOutcome, OutcomeStatus};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{exposed_token, hit, limited};
use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ClientAddr};
use crate::password;
use crate::rate_limit::Bucket;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignUpRequest {
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
pub(super) async fn sign_up(
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
    hit(&state, &keys);
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
                    .is_some_and(|e| e.code == ErrorCode::EmailTaken) =>
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
pub(super) async fn command_outcome(
    State(state): State<AppState>,
    Path(command_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<CommandOutcome>, ApiError> {
    let command_id = Uuid::parse_str(&command_id)
        .map_err(|_| ApiError::unprocessable("invalid_command_id", "command id must be a UUID"))?;
    let params = crate::routes::library::params(raw.as_deref())?;
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
    let mut outcome = outcomes::anonymous(&state.pool, command_id)
        .await?
        .ok_or_else(not_found)?;
    outcome.events.retain(|e| e.aggregate_type != "email_claim");
    let taken = outcome
        .error
        .as_ref()
        .is_some_and(|e| e.code == ErrorCode::EmailTaken);
    if taken && state.auth.email_verify_required {
        outcome.status = OutcomeStatus::Committed;
        outcome.error = None;
    }
    crate::fresh::record(outcome.position.as_deref());
    Ok(Json(outcome))
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
