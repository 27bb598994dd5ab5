//! The web app (:3000). It serves the page and the API under `/api`, same-origin, so the
//! refresh cookie works without CORS. The app is plain static files (HTML, CSS, ES
//! modules) built into the binary: nothing to fetch from elsewhere, no build step.

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::headers::{page_csp, with_security_headers};
use crate::state::AppState;

/// Every file of the web app: (path, content type, body).
pub const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    ),
    (
        "/api.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/api.js"),
    ),
    (
        "/player.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/player.js"),
    ),
    (
        "/admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/admin.js"),
    ),
    (
        "/ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/ui.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_str!("../web/app.css"),
    ),
    (
        "/icon.svg",
        "image/svg+xml",
        include_str!("../web/icon.svg"),
    ),
];

pub fn router(state: AppState) -> Router {
    // Audio comes from the stream role (PUBLIC_STREAM_BASE_URL), another origin.
    let stream_origin = state
        .stream
        .as_ref()
        .and_then(|s| url::Url::parse(&s.public_base_url).ok())
        .map(|u| u.origin().ascii_serialization());
    let csp = HeaderValue::from_str(&page_csp(stream_origin.as_deref()))
        .expect("the CSP is visible ASCII");
    let page = ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(path, get(move || async move { asset(content_type, body) }))
        })
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ));
    let api = AppState {
        mount: "/api",
        ..state
    };
    with_security_headers(page).nest("/api", crate::api::router(api))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The files change with the binary; revalidate rather than cache stale code.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
