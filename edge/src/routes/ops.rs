//! `GET /healthz` and `GET /readyz` on the API port.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready))
}

#[derive(OpenApi)]
#[openapi(paths(healthz, ready))]
pub(crate) struct Doc;

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
    jukebox_projections::status::ping(&state.pool).await?;
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::Unavailable("nats is not connected".into()));
    }
    Ok("ready")
}
