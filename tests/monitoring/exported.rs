//! Every metric an alert uses is exported by a running role on its health port.

use std::collections::{BTreeMap, BTreeSet};

use jukebox::app::{Role, Running};
use jukebox_nats::FailPoints;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::rules::{alerts, metric_names, SCRAPE_SERIES};
use crate::support::{spawn_app_with, TestApp};
use crate::{exported_names, sample, scrape};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn every_metric_the_alerts_use_is_exported_by_a_role() {
    // Each role in its own set, as in compose, so each has its own health port.
    let app = spawn_app_with(
        &[],
        &[
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
            (
                "STREAM_SIGNING_SECRET",
                "monitoring-test-stream-secret-0123456789".into(),
            ),
            ("RATE_LIMIT_PER_ACCOUNT", "2".into()),
        ],
    )
    .await;
    let roles = [
        Role::Api,
        Role::Web,
        Role::Stream,
        Role::Processor,
        Role::Relay,
        Role::Projector,
        Role::Downloader,
        Role::Reactor,
    ];
    let mut running: BTreeMap<&'static str, Running> = BTreeMap::new();
    for role in roles {
        running.insert(role.name(), app.start(&[role], FailPoints::default()).await);
    }
    let api = running["api"].api_addr.unwrap();
    let url = |path: &str| format!("http://{api}{path}");
    let http = reqwest::Client::new();

    // A user, and what the alerts watch for: failed sign-ins, a 429, an admin request.
    let signed_up: Value = http
        .post(url("/auth/signup"))
        .json(&json!({"email": "mona@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed_up["verification_token"].as_str().unwrap();
    let verified = http
        .post(url("/auth/verify-email"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
    let sign_in = |password: &'static str| {
        http.post(url("/auth/signin"))
            .json(&json!({"email": "mona@example.com", "password": password}))
            .send()
    };
    let access: Value = sign_in(PASSWORD).await.unwrap().json().await.unwrap();
    let access = access["access_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let wrong = sign_in("not the password").await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = sign_in("not the password").await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let admin = http
        .get(url("/admin/users"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);
    // An import the downloader refuses at once (a loopback address): no media tools run.
    let import = http
        .post(url("/songs/import"))
        .bearer_auth(&access)
        .json(&json!({"url": "http://127.0.0.1:9/tone.mp3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(import.status(), StatusCode::ACCEPTED);
    let downloader_metrics = format!("http://{}/metrics", running["downloader"].health_addr);
    let failed = r#"jukebox_downloader_jobs_total{outcome="failed"}"#;
    for _ in 0..300 {
        if sample(&scrape(&downloader_metrics).await, failed) == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The lag gauges below read 0 only once the whole log is applied, the downloader's
    // failure too, which answers no request of the test: no position to wait for.
    app.projections_caught_up().await;

    let mut exported = BTreeSet::new();
    let mut texts = BTreeMap::new();
    for (role, set) in &running {
        let text = scrape(&format!("http://{}/metrics", set.health_addr)).await;
        exported.extend(exported_names(&text));
        texts.insert(*role, text);
    }
    let alerts = alerts();
    assert!(!alerts.is_empty());
    for alert in &alerts {
        for name in metric_names(&alert.expr) {
            if SCRAPE_SERIES.contains(&name.as_str()) {
                continue;
            }
            assert!(
                name.starts_with("jukebox_"),
                "{}: {name} is neither ours nor Prometheus' own",
                alert.name
            );
            assert!(
                exported.contains(&name),
                "{}: no role exports {name}; exported: {exported:?}",
                alert.name
            );
        }
    }

    // Each metric comes from the role that knows it, with what just happened.
    let api_text = &texts["api"];
    let counted = |series: &str| {
        sample(api_text, series).unwrap_or_else(|| panic!("{series} in:\n{api_text}"))
    };
    assert_eq!(
        counted(r#"jukebox_auth_failures_total{kind="signin"}"#),
        2.0
    );
    assert_eq!(counted(r#"jukebox_rate_limited_total{kind="signin"}"#), 1.0);
    assert_eq!(
        counted(r#"jukebox_http_requests_total{role="api",route_class="auth",status="429"}"#),
        1.0
    );
    assert_eq!(
        counted(r#"jukebox_http_requests_total{role="api",route_class="admin",status="403"}"#),
        1.0
    );
    assert_eq!(
        counted(r#"jukebox_dependency_up{dependency="object_store"}"#),
        1.0
    );
    let projector = &texts["projector"];
    assert_eq!(
        sample(
            projector,
            r#"jukebox_projection_lag_events{projection="accounts"}"#
        ),
        Some(0.0),
        "{projector}"
    );
    assert_eq!(
        sample(
            projector,
            r#"jukebox_consumer_redeliveries_total{consumer="proj-all"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&texts["relay"], "jukebox_relay_backlog_events"),
        Some(0.0)
    );
    let downloader = &texts["downloader"];
    assert_eq!(
        sample(downloader, "jukebox_downloader_jobs_in_flight"),
        Some(0.0)
    );
    assert_eq!(sample(downloader, failed), Some(1.0), "{downloader}");
    assert_eq!(
        sample(
            downloader,
            r#"jukebox_downloader_jobs_total{outcome="succeeded"}"#
        ),
        Some(0.0)
    );
    for text in texts.values() {
        assert_eq!(
            sample(text, r#"jukebox_dependency_up{dependency="postgres"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(text, r#"jukebox_dependency_up{dependency="nats"}"#),
            Some(1.0)
        );
    }
    // Metrics stay off the public ports.
    let stream = running["stream"].stream_addr.unwrap();
    for public in [url("/metrics"), format!("http://{stream}/metrics")] {
        let response = http.get(&public).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{public}");
    }
    // The projector knows projection lag; the api does not pretend to.
    assert!(!api_text.contains("jukebox_projection_lag"), "{api_text}");

    stop(app, running).await;
}

async fn stop(app: TestApp, running: BTreeMap<&'static str, Running>) {
    for (_, set) in running {
        set.stop().await.unwrap();
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_command_redelivered_after_a_crash_is_counted() {
    let app = spawn_app_with(&[], &[]).await;
    let api = app.start(&[Role::Api], FailPoints::default()).await;
    // The processor dies after committing the sign-up, before its ack.
    let fail_points = FailPoints::armed();
    fail_points.arm("processor.after_commit", 2);
    let doomed = app.start(&[Role::Processor], fail_points).await;
    let sign_up = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://{}/auth/signup", api.api_addr.unwrap()))
            .json(&json!({"email": "rita@example.com", "password": PASSWORD}))
            .send(),
    );
    let died = tokio::time::timeout(std::time::Duration::from_secs(20), doomed.wait()).await;
    assert!(died.expect("the processor dies at its fail point").is_err());

    // The next processor gets the command again (after the 2 s ack wait) and counts it.
    let survivor = app.start(&[Role::Processor], FailPoints::default()).await;
    let metrics = format!("http://{}/metrics", survivor.health_addr);
    let series = r#"jukebox_consumer_redeliveries_total{consumer="processor"}"#;
    let mut text = String::new();
    for _ in 0..300 {
        text = scrape(&metrics).await;
        if sample(&text, series).is_some_and(|count| count >= 1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // At least once: a slow machine may let the ack wait pass again.
    let counted = sample(&text, series).unwrap_or(0.0);
    assert!(counted >= 1.0, "{text}");
    let answered = sign_up.await.unwrap().unwrap().status();
    assert!(answered.is_success(), "{answered}");
    survivor.stop().await.unwrap();
    api.stop().await.unwrap();
    app.cleanup().await;
}
