//! A real `jukebox serve` process with `LOG_FORMAT=json`: every line it logs is one JSON
//! object, and the health port it picked (HEALTH_PORT=0) is in its log and answers.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::spawn_app_with;

#[tokio::test]
async fn serve_logs_json_lines_and_answers_on_its_health_port() {
    // A migrated database and a namespace of its own; the roles run in the child.
    let app = spawn_app_with(&[], &[]).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_jukebox"))
        .args(["serve", "processor", "relay"])
        .env("DATABASE_URL", app.config.database_url.expose_secret())
        .env("NATS_URL", &app.config.nats_url)
        .env("NATS_NAMESPACE", &app.config.nats_namespace)
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("HEALTH_PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut logged = Vec::new();
    let health = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let entry: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            for key in ["timestamp", "level", "target", "fields"] {
                assert!(entry.get(key).is_some(), "no {key} in {line}");
            }
            logged.push(entry.clone());
            let fields = &entry["fields"];
            if fields["message"] == "listening" && fields["role"] == "health" {
                return fields["address"].as_str().unwrap().to_owned();
            }
        }
        panic!("the process ended before listening: {logged:?}");
    })
    .await
    .expect("a `listening` line for the health port within 60 s");

    let response = reqwest::get(format!("http://{health}/readyz"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["roles"], serde_json::json!(["processor", "relay"]));
    // The processor's series appears once its consumer is up.
    let mut metrics = String::new();
    for _ in 0..300 {
        metrics = crate::scrape(&format!("http://{health}/metrics")).await;
        if metrics.contains(r#"jukebox_consumer_redeliveries_total{consumer="processor"} 0"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains(r#"jukebox_consumer_redeliveries_total{consumer="processor"} 0"#),
        "{metrics}"
    );
    assert!(metrics.contains("jukebox_relay_lag_seconds"), "{metrics}");

    child.kill().await.unwrap();
    app.cleanup().await;
}
