//! The health port (`HEALTH_PORT`), one per process whatever roles it runs, apart from
//! the public ports the edge proxy exposes:
//! - `GET /healthz`: the process answers (liveness);
//! - `GET /readyz`: its dependencies answer (Postgres, NATS, and the object store for the
//!   roles that use it): 200, or 503 with a JSON body naming what is down;
//! - `GET /metrics`: the process' Prometheus registry, with the gauges that are read at
//!   scrape time (dependencies up, relay and projection lag) refreshed first.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jukebox_storage::{ObjectKey, ObjectStore};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use sqlx::PgPool;

/// How long one dependency check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Events counted per checkpoint on a scrape; a backlog beyond it shows as the cap.
const BACKLOG_CAP: i64 = 1_000_000;

/// What the health port needs.
#[derive(Clone)]
pub struct HealthState {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    /// The object store, for processes running a role that reads or writes it.
    pub store: Option<Arc<dyn ObjectStore>>,
    /// The roles this process runs (shown by `/readyz`).
    pub roles: Vec<&'static str>,
    pub registry: Arc<Registry>,
    pub gauges: ScrapeGauges,
}

/// Gauges whose values are read when Prometheus scrapes.
#[derive(Clone, Default)]
pub struct ScrapeGauges {
    dependency_up: Family<[(&'static str, &'static str); 1], Gauge>,
    projection_lag_events: Family<[(&'static str, String); 1], Gauge>,
    projection_lag_seconds:
        Family<[(&'static str, String); 1], Gauge<f64, std::sync::atomic::AtomicU64>>,
    relay_backlog_events: Gauge,
    relay_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// This process runs the projector (projection lag) / the relay (relay lag).
    projector: bool,
    relay: bool,
}

impl ScrapeGauges {
    pub fn new(projector: bool, relay: bool) -> Self {
        Self {
            projector,
            relay,
            ..Self::default()
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "jukebox_dependency_up",
            "Whether a dependency answered this process' last check (1) or not (0)",
            self.dependency_up.clone(),
        );
        if self.projector {
            registry.register(
                "jukebox_projection_lag_events",
                "Events in the log a read model has not applied yet",
                self.projection_lag_events.clone(),
            );
            registry.register(
                "jukebox_projection_lag_seconds",
                "Age of the oldest event a read model has not applied yet (0 when caught up)",
                self.projection_lag_seconds.clone(),
            );
        }
        if self.relay {
            registry.register(
                "jukebox_relay_backlog_events",
                "Events in the log not yet published to JetStream EVENTS",
                self.relay_backlog_events.clone(),
            );
            registry.register(
                "jukebox_relay_lag_seconds",
                "Age of the oldest event not yet published to EVENTS (0 when caught up)",
                self.relay_lag_seconds.clone(),
            );
        }
    }

    async fn refresh_lag(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        if !self.projector && !self.relay {
            return Ok(());
        }
        let backlogs = jukebox_projections::status::backlogs(pool, BACKLOG_CAP).await?;
        for backlog in backlogs {
            if backlog.name == "relay" {
                self.relay_backlog_events.set(backlog.events);
                self.relay_lag_seconds.set(backlog.oldest_age_seconds);
            } else if self.projector {
                let label = [("projection", backlog.name)];
                self.projection_lag_events
                    .get_or_create(&label)
                    .set(backlog.events);
                self.projection_lag_seconds
                    .get_or_create(&label)
                    .set(backlog.oldest_age_seconds);
            }
        }
        Ok(())
    }
}

pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// One dependency's check: `None` when it is up, else why it is down.
struct Check {
    name: &'static str,
    down: Option<String>,
}

async fn check_all(state: &HealthState) -> Vec<Check> {
    let postgres = async {
        match tokio::time::timeout(
            CHECK_TIMEOUT,
            jukebox_projections::status::ping(&state.pool),
        )
        .await
        {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    };
    let nats = async {
        match state.nats.connection_state() {
            async_nats::connection::State::Connected => None,
            other => Some(format!("not connected ({other})")),
        }
    };
    let store = async {
        let store = state.store.as_ref()?;
        let probe = ObjectKey::parse("health/probe").expect("a valid key");
        match tokio::time::timeout(CHECK_TIMEOUT, store.exists(&probe)).await {
            Ok(Ok(_)) => Some(None),
            Ok(Err(error)) => Some(Some(error.to_string())),
            Err(_) => Some(Some(format!("no answer within {CHECK_TIMEOUT:?}"))),
        }
    };
    let (postgres, nats, store) = tokio::join!(postgres, nats, store);
    let mut checks = vec![
        Check {
            name: "postgres",
            down: postgres,
        },
        Check {
            name: "nats",
            down: nats,
        },
    ];
    if let Some(down) = store {
        checks.push(Check {
            name: "object_store",
            down,
        });
    }
    for check in &checks {
        state
            .gauges
            .dependency_up
            .get_or_create(&[("dependency", check.name)])
            .set(i64::from(check.down.is_none()));
    }
    checks
}

/// `GET /readyz`: 200 `{"status":"ready",...}` or 503 `{"status":"unavailable",
/// "down":[...],...}`, each check `"up"` or `"down: <why>"`.
async fn ready(State(state): State<HealthState>) -> Response {
    let checks = check_all(&state).await;
    let down: Vec<&str> = checks
        .iter()
        .filter(|c| c.down.is_some())
        .map(|c| c.name)
        .collect();
    let details: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|c| {
            let value = match &c.down {
                None => "up".to_owned(),
                Some(why) => format!("down: {why}"),
            };
            (c.name.to_owned(), value.into())
        })
        .collect();
    let status = if down.is_empty() {
        StatusCode::OK
    } else {
        tracing::warn!(?down, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if down.is_empty() { "ready" } else { "unavailable" },
        "down": down,
        "checks": details,
        "roles": state.roles,
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the OpenMetrics text of the whole registry.
async fn metrics(State(state): State<HealthState>) -> Response {
    let lag = tokio::time::timeout(CHECK_TIMEOUT, state.gauges.refresh_lag(&state.pool));
    let (_, lag) = tokio::join!(check_all(&state), lag);
    if !matches!(lag, Ok(Ok(()))) {
        // The dependency gauge says Postgres is down; the lag gauges keep their last value.
        tracing::debug!("lag gauges not refreshed");
    }
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        tracing::error!(%error, "encoding metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
