//! Everything HTTP: the API gateway (:8000), the web app (:3000) and the stream
//! endpoint (:8005). Handlers validate and authenticate, then publish commands; reads
//! come from the read models.

pub mod api;
pub mod error;
pub mod extract;
pub mod headers;
pub mod password;
pub mod state;
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
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
