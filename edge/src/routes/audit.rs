//! `/admin/audit/*`: an aggregate's history from the Postgres log (the source of truth),
//! its state at a moment (`as_of`, folded with the aggregate's own `apply`), and every
//! event one request caused. Credentials are redacted (`jukebox_domain::audit`).

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use jukebox_domain::audit::{redact, state_after, AGGREGATE_TYPES};
use jukebox_nats::{log, sealed, user_keys, EventRecord};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::routes::library::{invalid, params};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/audit/correlation/{correlation_id}",
            get(correlation),
        )
        .route(
            "/admin/audit/{aggregate_type}/{aggregate_id}",
            get(aggregate),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(aggregate, correlation))]
pub(crate) struct Doc;

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // written with `json!` below; here for the document
struct AggregateHistory {
    aggregate_type: String,
    aggregate_id: String,
    as_of: Option<String>,
    /// The last event's sequence (0: none yet at `as_of`).
    version: i64,
    /// The aggregate folded over these events, credentials redacted.
    #[schema(value_type = Object)]
    state: Value,
    events: Vec<AuditEvent>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct CorrelatedEvents {
    correlation_id: Uuid,
    events: Vec<AuditEvent>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AuditEvent {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    #[schema(rename = "type")]
    event_type: String,
    recorded_at: Option<String>,
    #[schema(value_type = Object)]
    payload: Value,
    #[schema(value_type = Option<String>)]
    issued_by: Value,
    #[schema(value_type = Object)]
    command: Value,
    #[schema(value_type = Option<String>)]
    command_id: Value,
    #[schema(value_type = Option<String>)]
    correlation_id: Value,
    #[schema(value_type = Option<String>)]
    causation_id: Value,
}

/// At most this many events per answer (an aggregate's or a request's).
const MAX_EVENTS: i64 = 10_000;

/// One event as the audit routes show it: credentials redacted, the metadata's ids.
fn event_json(event: &EventRecord) -> Value {
    let meta = |key: &str| event.metadata.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "type": event.event_type,
        "recorded_at": event.recorded_at.format(&Rfc3339).ok(),
        "payload": redact(&event.payload),
        "issued_by": meta("user_id"),
        "command": redact(&meta("command")),
        "command_id": meta("command_id"),
        "correlation_id": meta("correlation_id"),
        "causation_id": meta("causation_id"),
    })
}

/// `GET /admin/audit/{aggregate_type}/{id}[?as_of=<RFC 3339>]`.
#[utoipa::path(get, path = "/admin/audit/{aggregate_type}/{aggregate_id}", tag = "admin",
    security(("bearer" = [])),
    params(("aggregate_type" = String, Path, description = "user, email_claim, session, external_identity, import, track, library (before issue 16) or library_entry (`<user_id>/<track_id>`)"),
        ("aggregate_id" = String, Path), ("as_of" = Option<String>, Query, format = DateTime)),
    responses((status = 200, body = AggregateHistory), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown type, or no such aggregate"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn aggregate(
    _: Admin,
    State(state): State<AppState>,
    Path((aggregate_type, aggregate_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    if !AGGREGATE_TYPES.contains(&aggregate_type.as_str()) {
        return Err(ApiError::not_found(format!(
            "no aggregate type {aggregate_type:?}; known: {}",
            AGGREGATE_TYPES.join(", ")
        )));
    }
    let params = params(raw.as_deref())?;
    let as_of = match params.get("as_of") {
        None => None,
        Some(raw) => Some(
            OffsetDateTime::parse(raw, &Rfc3339)
                .ok()
                // In UTC (as the query binds it) a valid time may leave the years the
                // driver can encode (9999-12-31T23:59-23:59): refuse it, never panic.
                .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
                .ok_or_else(|| {
                    invalid(
                        "invalid_as_of",
                        "as_of must be an RFC 3339 time between the years 0000 and 9999 \
                         in UTC, e.g. 2025-01-31T12:00:00Z",
                    )
                })?,
        ),
    };
    // A claim is asked for by its address or identity; it is stored keyed (ADR 43).
    let stored_id = state.claim_ids.id(&aggregate_type, &aggregate_id).await?;
    let mut rows = log::aggregate(
        &state.pool,
        &aggregate_type,
        &stored_id,
        as_of,
        Some(MAX_EVENTS),
    )
    .await?;
    if rows.is_empty() && as_of.is_none() {
        return Err(ApiError::not_found(format!(
            "no {aggregate_type} {aggregate_id:?} in the event log"
        )));
    }
    // Sealed personal fields (ADR 34): the events show "erased" once the key is gone;
    // the state folds with a placeholder address, which its own event types accept.
    let mut payloads: Vec<Value> = rows.iter().map(|r| r.payload.clone()).collect();
    user_keys::open_values(&state.pool, &mut payloads, sealed::ERASED_ADDRESS).await?;
    user_keys::open_records(&state.pool, &mut rows, sealed::ERASED).await?;
    let state_now = match state_after(&aggregate_type, &payloads) {
        Some(Ok(value)) => value,
        Some(Err(error)) => {
            return Err(ApiError::Internal(
                anyhow::Error::new(error).context("folding an aggregate's events"),
            ))
        }
        None => Value::Null,
    };
    Ok(Json(json!({
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "as_of": as_of.and_then(|t| t.format(&Rfc3339).ok()),
        "version": rows.last().map_or(0, |r| r.sequence),
        "state": state_now,
        "events": rows.iter().map(event_json).collect::<Vec<_>>(),
    })))
}

/// `GET /admin/audit/correlation/{id}`: every event one request caused, in commit order.
#[utoipa::path(get, path = "/admin/audit/correlation/{correlation_id}", tag = "admin",
    security(("bearer" = [])),
    params(("correlation_id" = Uuid, Path)),
    responses((status = 200, body = CorrelatedEvents), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn correlation(
    _: Admin,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let correlation_id = Uuid::parse_str(&raw).map_err(|_| {
        invalid(
            "invalid_correlation_id",
            "the correlation id must be a UUID",
        )
    })?;
    let mut rows = log::correlated(&state.pool, &correlation_id.to_string(), MAX_EVENTS).await?;
    user_keys::open_records(&state.pool, &mut rows, sealed::ERASED).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found("no event has this correlation id"));
    }
    Ok(Json(json!({
        "correlation_id": correlation_id,
        "events": rows.iter().map(event_json).collect::<Vec<_>>(),
    })))
}
