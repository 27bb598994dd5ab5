//! `/readyz` answers 200 while the dependencies answer, and 503 naming the one that does
//! not: here a private nats-server that the test stops and starts again.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jukebox::app::Role;
use jukebox_handlers::media::find_tool;
use serde_json::Value;

use crate::support::{eventually, spawn_app_with};
use crate::{sample, scrape};

/// A nats-server with JetStream on a free loopback port, its data in a temp folder, so
/// that it can be stopped and started on the same port and data.
struct PrivateNats {
    port: u16,
    data: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    fn start() -> Self {
        let port = crate::support::free_port();
        let mut nats = Self {
            port,
            data: tempfile::tempdir().unwrap(),
            child: None,
        };
        nats.resume();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) {
        let binary = find_tool("nats-server")
            .expect("nats-server is not installed: run scripts/install-deps.sh");
        let child = Command::new(binary)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn readyz(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn readyz_names_the_dependency_that_is_down_and_recovers() {
    let mut nats = PrivateNats::start();
    // The stream role opens the object store, so all three dependencies are checked.
    let app = spawn_app_with(
        &[Role::Processor, Role::Stream],
        &[
            ("NATS_URL", nats.url()),
            (
                "STREAM_SIGNING_SECRET",
                "monitoring-test-stream-secret-0123456789".into(),
            ),
        ],
    )
    .await;
    let ready_url = app.health("/readyz");
    let (status, body) = readyz(&ready_url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["down"], serde_json::json!([]));
    for dependency in ["postgres", "nats", "object_store"] {
        assert_eq!(body["checks"][dependency], "up", "{body}");
    }
    assert_eq!(body["roles"], serde_json::json!(["stream", "processor"]));

    nats.stop();
    let mut last = Value::Null;
    for _ in 0..300 {
        let (status, body) = readyz(&ready_url).await;
        last = body;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "unavailable", "{last}");
    assert_eq!(last["down"], serde_json::json!(["nats"]), "{last}");
    assert!(
        last["checks"]["nats"]
            .as_str()
            .unwrap()
            .starts_with("down: "),
        "{last}"
    );
    assert_eq!(last["checks"]["postgres"], "up");
    // Alive all the same, and the gauge the alert reads says so.
    assert_eq!(scrape(&app.health("/healthz")).await, "ok");
    let metrics = scrape(&app.health("/metrics")).await;
    assert_eq!(
        sample(&metrics, r#"jukebox_dependency_up{dependency="nats"}"#),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, r#"jukebox_dependency_up{dependency="postgres"}"#),
        Some(1.0)
    );

    // NATS back on the same port: ready again without a restart.
    nats.resume();
    // Reconnecting is the process' own doing, not a write: nothing has a position.
    eventually("readyz is ready again", || async {
        readyz(&ready_url).await.0 == 200
    })
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn readyz_names_postgres_when_it_does_not_answer() {
    // The health router over a pool whose server is a closed port, beside a live NATS.
    let closed = crate::support::free_addr();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy(&format!("postgres://postgres@{closed}/nothing"))
        .unwrap();
    let nats = async_nats::connect(crate::support::nats_url())
        .await
        .unwrap();
    let gauges = jukebox_edge::health::ScrapeGauges::new(true, true);
    let mut registry = prometheus_client::registry::Registry::default();
    gauges.register(&mut registry);
    let router = jukebox_edge::health::router(jukebox_edge::health::HealthState {
        pool,
        nats,
        store: None,
        roles: vec!["projector", "relay"],
        registry: std::sync::Arc::new(registry),
        gauges,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let (status, body) = readyz(&format!("http://{addr}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["down"], serde_json::json!(["postgres"]), "{body}");
    assert_eq!(body["checks"]["nats"], "up");
    assert!(body["checks"].get("object_store").is_none(), "{body}");
    // The scrape still answers, and its gauge says Postgres is down (the lag gauges keep
    // their last value, none here; JukeboxDependencyDown covers this case).
    let metrics = scrape(&format!("http://{addr}/metrics")).await;
    assert_eq!(
        sample(&metrics, r#"jukebox_dependency_up{dependency="postgres"}"#),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "jukebox_relay_lag_seconds"), Some(0.0));
    server.abort();
}
