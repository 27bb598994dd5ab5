//! Everything HTTP: the API gateway (:8000), the web app (:3000) and the stream
//! endpoint (:8005). Handlers validate and authenticate, then publish commands; reads
//! come from the read models.

pub mod api;
pub mod app_credentials;
pub mod clients;
pub mod commands;
pub mod error;
pub mod extract;
pub mod fresh;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod marks;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod password;
pub mod play_queue;
pub mod ports;
pub mod progress;
pub mod rate_limit;
pub mod rest;
pub mod routes;
pub mod search_guard;
pub mod settings;
pub mod state;
pub mod stream;
pub mod tokens;
pub mod web;

pub use error::ApiError;
pub use state::AppState;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` resolves, finishing requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address keys the per-address rate limits.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
