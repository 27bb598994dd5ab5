//! `GET /openapi.json`: the API gateway as the `#[utoipa::path]` annotations beside its
//! handlers describe it. Each routes module lists its own operations in a `Doc`, next to
//! its `routes()`; this merges them. schemathesis (tests/hostile) checks every answer of
//! the running API against this document.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The security scheme every bearer route names (`security(("bearer" = []))`).
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Jukebox API",
        description = "Accounts, import, library, playback and administration of Jukebox. \
            Errors are `{\"error\": {\"code\", \"message\"}}`; 5xx answers are opaque.",
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerToken),
    tags(
        (name = "accounts", description = "sign-up, sign-in, sessions"),
        (name = "imports", description = "search, import, upload, jobs"),
        (name = "library", description = "my tracks and playback"),
        (name = "admin", description = "admins only: users, songs, jobs, audit"),
        (name = "operations", description = "health and metrics"),
    )
)]
struct Base;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("the access token from POST /auth/signin"))
                    .build(),
            ),
        );
    }
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = Base::openapi();
    for part in [
        crate::api::Doc::openapi(),
        crate::auth::Doc::openapi(),
        crate::google::Doc::openapi(),
        crate::imports::Doc::openapi(),
        crate::library::Doc::openapi(),
        crate::stream::Doc::openapi(),
        crate::admin::Doc::openapi(),
        crate::audit::Doc::openapi(),
    ] {
        document.merge(part);
    }
    document
}

/// `GET /openapi.json`, built once.
pub async fn serve() -> impl IntoResponse {
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
            }
        }
    }
}
