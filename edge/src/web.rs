//! The web app (:3000). It serves the page and the API under `/api`, same-origin, so the
//! refresh cookie works without CORS.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use crate::headers::with_security_headers;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let page = Router::new()
        .route(
            "/",
            get(|| async { Html(include_str!("../web/index.html")) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", include_str!("../web/app.js")) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css", include_str!("../web/app.css")) }),
        );
    let api = AppState {
        mount: "/api",
        ..state
    };
    with_security_headers(page).nest("/api", crate::api::router(api))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}
