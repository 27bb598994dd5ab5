//! The API gateway: the router of every resource's routes (`crate::routes`) with the
//! layers they share, and the OpenAPI document of them. Nothing imports this module but
//! the roles that serve it (an architecture test keeps route modules from it).

use std::sync::OnceLock;

use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{header, Request};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::headers::with_security_headers;
use crate::routes;
use crate::state::AppState;

/// JSON bodies are small; uploads get their own limit.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(routes::auth::routes())
        .merge(routes::oidc::routes())
        .merge(routes::admin::routes())
        .merge(routes::imports::routes())
        .merge(routes::library::routes())
        .merge(routes::app_credentials::routes())
        .merge(routes::favourites::routes())
        .merge(routes::plays::routes())
        .merge(routes::account::routes())
        .merge(routes::erase::routes())
        .merge(routes::devices::routes())
        .merge(routes::identities::routes())
        .merge(routes::export::routes())
        .merge(routes::playlists::routes())
        .merge(routes::play_queue::routes())
        .merge(routes::subscriptions::routes())
        .merge(routes::stream::routes())
        .route("/openapi.json", get(openapi_json))
        .merge(routes::ops::routes())
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
        .with_state(state.clone());
    with_security_headers(routes).merge(crate::rest::router(state))
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    crate::openapi::assemble([
        routes::ops::Doc::openapi(),
        routes::auth::Doc::openapi(),
        routes::oidc::Doc::openapi(),
        routes::imports::Doc::openapi(),
        routes::library::Doc::openapi(),
        routes::app_credentials::Doc::openapi(),
        routes::favourites::Doc::openapi(),
        routes::plays::Doc::openapi(),
        routes::account::Doc::openapi(),
        routes::erase::Doc::openapi(),
        routes::devices::Doc::openapi(),
        routes::identities::Doc::openapi(),
        routes::export::Doc::openapi(),
        routes::playlists::Doc::openapi(),
        routes::play_queue::Doc::openapi(),
        routes::subscriptions::Doc::openapi(),
        routes::stream::Doc::openapi(),
        routes::admin::Doc::openapi(),
        routes::audit::Doc::openapi(),
    ])
}

/// `GET /openapi.json`, built once.
async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    });
    ([(header::CONTENT_TYPE, "application/json")], body.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_its_errors_and_auth() {
        let document = document();
        let json = serde_json::to_value(&document).unwrap();
        let paths = json["paths"].as_object().unwrap();
        assert!(paths.len() >= 25, "{} paths", paths.len());
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path}");
                // A bearer route says so and documents the 401 it answers without a token.
                if operation.get("security").is_some() {
                    assert!(responses.contains_key("401"), "{method} {path}: no 401");
                }
                // Every read behind a token takes a position; every write answers one.
                let parameters = operation["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let names: Vec<&str> = parameters
                    .iter()
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                if method == "get" && operation.get("security").is_some() {
                    assert!(names.contains(&"after"), "{method} {path}: no after");
                    assert!(responses.contains_key("503"), "{method} {path}: no 503");
                }
                if method == "post" || method == "delete" {
                    for (status, response) in responses {
                        if status.starts_with('2') {
                            assert!(
                                response["headers"].get("Jukebox-Position").is_some(),
                                "{method} {path} {status}: no Jukebox-Position"
                            );
                        }
                    }
                }
            }
        }
    }
}
