//! The web app (:3000). It serves the page and the API under `/api`, same-origin, so the
//! refresh cookie works without CORS. The app is plain static files (HTML, CSS, ES
//! modules) built into the binary: nothing to fetch from elsewhere, no build step.
//! `/settings.json` tells the page how this server is set up (sign-in providers, email
//! verification) before anyone signs in.

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
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
        "/music.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/music.js"),
    ),
    (
        "/favourites.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/favourites.js"),
    ),
    (
        "/playlists.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/playlists.js"),
    ),
    (
        "/plays.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/plays.js"),
    ),
    (
        "/subscriptions.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/subscriptions.js"),
    ),
    (
        "/apps.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/apps.js"),
    ),
    (
        "/account.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/account.js"),
    ),
    (
        "/identities.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/identities.js"),
    ),
    (
        "/queue.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/queue.js"),
    ),
    (
        "/resume.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/resume.js"),
    ),
    (
        "/auth.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/auth.js"),
    ),
    (
        "/collections.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/collections.js"),
    ),
    (
        "/jobs.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/jobs.js"),
    ),
    (
        "/messages.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/messages.js"),
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
    let settings = serde_json::to_string(&page_settings(&state)).expect("plain fields");
    let page = ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(path, get(move || async move { asset(content_type, body) }))
        })
        .route(
            "/settings.json",
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    settings,
                )
            }),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ));
    // Apps are given the web app's address: `/rest` is served here too.
    let rest = crate::rest::router(state.clone());
    let api = state.mounted_at("/api");
    with_security_headers(page)
        .merge(rest)
        .nest("/api", crate::api::router(api))
}

/// What the page needs to know about this server before anyone signs in, so it asks
/// nothing that would only answer 404 (no sign-in provider) and words sign-up as the
/// server behaves. Public: nothing here is a secret.
#[derive(Serialize)]
struct PageSettings {
    /// The OpenID Connect providers, one "Sign in with {name}" button each (ADR 44).
    sign_in_providers: Vec<SignInProvider>,
    email_verification_required: bool,
    /// Where people are meant to reach the app (`PUBLIC_BASE_URL`).
    public_base_url: String,
    /// Search, import and upload are served (`false` on a deployment without imports).
    imports: bool,
}

#[derive(Serialize)]
struct SignInProvider {
    /// In `/api/me/identities/{id}` (link, unlink).
    id: String,
    name: String,
    /// Where the button goes (under the web app's `/api`).
    login: String,
}

fn page_settings(state: &AppState) -> PageSettings {
    PageSettings {
        sign_in_providers: state
            .auth
            .oidc
            .providers
            .iter()
            .map(|p| SignInProvider {
                id: p.id.clone(),
                name: p.name.clone(),
                login: if p.id == "google" {
                    "/api/auth/google/login".into()
                } else {
                    format!("/api/auth/oidc/{}/login", p.id)
                },
            })
            .collect(),
        email_verification_required: state.auth.email_verify_required,
        public_base_url: state.auth.public_base_url.clone(),
        imports: state.imports.is_some(),
    }
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
