//! The edge's metrics (auth failures, 429s, HTTP requests, streams). They live in
//! the process' one Prometheus registry, which the health port serves on `/metrics`; the
//! public ports do not.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Kind = [(&'static str, &'static str); 1];
type Counters<L = Kind> = Family<L, Counter>;
/// `(role, route_class, status)`.
type HttpLabels = [(&'static str, String); 3];

#[derive(Default)]
pub struct Metrics {
    auth_failures: Counters,
    rate_limited: Counters,
    stream: Counters,
    stream_denied: Counters,
    read_behind: Counters<[(&'static str, &'static str); 1]>,
    http_requests: Counters<HttpLabels>,
}

impl Metrics {
    /// `jukebox_auth_failures_total{kind="..."}`: failed sign-ins, bad tokens, reuse.
    pub fn auth_failure(&self, kind: &'static str) {
        self.auth_failures.get_or_create(&[("kind", kind)]).inc();
    }

    /// `jukebox_rate_limited_total{kind="..."}`: requests answered 429, by limit.
    pub fn rate_limited(&self, kind: &'static str) {
        self.rate_limited.get_or_create(&[("kind", kind)]).inc();
    }

    /// `jukebox_stream_total{kind="streams_started"|"bytes_served"|"range_requests"}`.
    pub fn stream(&self, kind: &'static str, amount: u64) {
        self.stream.get_or_create(&[("kind", kind)]).inc_by(amount);
    }

    /// `jukebox_stream_denied_total{kind="<reason>"}`: refused stream requests.
    pub fn stream_denied(&self, reason: &'static str) {
        self.stream_denied.get_or_create(&[("kind", reason)]).inc();
    }

    /// `jukebox_read_behind_total{model="<read model>"}`: reads with a position answered
    /// 503 because that read model did not catch up within `READ_WAIT`.
    pub fn read_behind(&self, model: &'static str) {
        self.read_behind.get_or_create(&[("model", model)]).inc();
    }

    /// `jukebox_http_requests_total{role, route_class, status}`.
    pub fn http_request(&self, role: &'static str, route_class: &'static str, status: u16) {
        self.http_requests
            .get_or_create(&[
                ("role", role.to_owned()),
                ("route_class", route_class.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// The value of a `kind`-labelled counter (`name` as exported, with `_total`).
    pub fn get(&self, name: &str, kind: &'static str) -> u64 {
        let family = match name {
            "jukebox_auth_failures_total" => &self.auth_failures,
            "jukebox_rate_limited_total" => &self.rate_limited,
            "jukebox_stream_total" => &self.stream,
            "jukebox_stream_denied_total" => &self.stream_denied,
            _ => return 0,
        };
        family
            .get(&[("kind", kind)])
            .map_or(0, |counter| counter.get())
    }

    pub fn register(&self, registry: &mut Registry) {
        let counters = [
            (
                "jukebox_auth_failures",
                "Failed sign-ins, refused tokens and refresh-token reuse, by kind",
                &self.auth_failures,
            ),
            (
                "jukebox_rate_limited",
                "Requests answered 429 by the application's own limits, by limit",
                &self.rate_limited,
            ),
            (
                "jukebox_stream",
                "Streams started, bytes served and range requests",
                &self.stream,
            ),
            (
                "jukebox_stream_denied",
                "Stream requests refused, by reason",
                &self.stream_denied,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "jukebox_read_behind",
            "Reads after a write answered 503: the read model did not catch up in time",
            self.read_behind.clone(),
        );
        registry.register(
            "jukebox_http_requests",
            "HTTP requests answered, by role, route class and status",
            self.http_requests.clone(),
        );
    }
}

/// The class of a request path, a short fixed set so that labels stay few. The web app
/// mounts the API under `/api`, which is stripped first.
pub fn route_class(path: &str) -> &'static str {
    let path = match path.strip_prefix("/api") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    };
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "auth" => "auth",
        "admin" => "admin",
        "songs" | "jobs" => "import",
        "library" => "library",
        "stream" | "public" => "stream",
        "commands" => "commands",
        "healthz" | "readyz" => "health",
        "openapi.json" => "docs",
        _ => "other",
    }
}

/// Counts every answer of `router` in `jukebox_http_requests_total` under `role`.
pub fn track(router: Router, metrics: std::sync::Arc<Metrics>, role: &'static str) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        (metrics, role),
        count_request,
    ))
}

async fn count_request(
    State((metrics, role)): State<(std::sync::Arc<Metrics>, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let class = route_class(request.uri().path());
    let response = next.run(request).await;
    metrics.http_request(role, class, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_classes() {
        assert_eq!(route_class("/auth/signin"), "auth");
        assert_eq!(route_class("/api/auth/signin"), "auth");
        assert_eq!(route_class("/admin/users/1/disable"), "admin");
        assert_eq!(route_class("/api/admin"), "admin");
        assert_eq!(route_class("/songs/import"), "import");
        assert_eq!(route_class("/jobs/1/events"), "import");
        assert_eq!(route_class("/library"), "library");
        assert_eq!(route_class("/api/public/stream/x"), "stream");
        assert_eq!(route_class("/"), "other");
        assert_eq!(route_class("/apiary"), "other");
        assert_eq!(route_class("/app.js"), "other");
    }

    #[test]
    fn counters_render_with_their_labels() {
        let metrics = Metrics::default();
        metrics.auth_failure("signin");
        metrics.auth_failure("signin");
        metrics.http_request("api", "admin", 403);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("jukebox_auth_failures_total{kind=\"signin\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "jukebox_http_requests_total{role=\"api\",route_class=\"admin\",status=\"403\"} 1"
            ),
            "{text}"
        );
        assert_eq!(metrics.get("jukebox_auth_failures_total", "signin"), 2);
    }
}
