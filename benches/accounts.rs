//! Accounts benchmark (issue 3). Not a test: it prints figures for `docs/benchmarks.md`.
//! Run with `cargo bench --bench accounts` (release build), against the Postgres and NATS
//! at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL.
//!
//! `jukebox serve api processor relay projector` runs as its own process on a scratch
//! database and NATS namespace. Then:
//! 1. sign-in: `--clients` (16) concurrent clients each sign in over HTTP in a loop
//!    (`--signins` in all); latency p50/p99 and the rate. argon2id dominates.
//! 2. `GET /auth/me` with a valid access token: `--me-clients` (64) keep-alive clients
//!    for `--seconds` (10); requests/s and p50/p99. Each request checks the JWT and reads
//!    the account and session rows in the processor's access state (one query per
//!    request: nothing is remembered, so a revocation counts from the next request).

use std::time::{Duration, Instant};

use jukebox_test_support::bench::{arg, load, percentile, Server, PASSWORD};

async fn sign_in(http: &reqwest::Client, server: &Server, email: &str) -> anyhow::Result<String> {
    let response = http
        .post(server.url("/auth/signin"))
        .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "sign-in: {}",
        response.status()
    );
    let body: serde_json::Value = response.json().await?;
    Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = arg("--clients", 16);
    let signins = arg("--signins", 480);
    let me_clients = arg("--me-clients", 64);
    let seconds = arg("--seconds", 10) as u64;
    let server = Server::start(
        env!("CARGO_BIN_EXE_jukebox"),
        "accounts",
        &["api", "processor", "relay", "projector"],
        &[],
    )
    .await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    // One account per client.
    let emails: Vec<String> = (0..clients)
        .map(|i| format!("bench{i}@example.com"))
        .collect();
    for email in &emails {
        let response = http
            .post(server.url("/auth/signup"))
            .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().as_u16() == 201,
            "sign-up: {}",
            response.status()
        );
    }
    // Warm-up (and the read model catches up).
    for email in &emails {
        sign_in(&http, &server, email).await?;
    }

    // 1. Sign-in latency with `clients` concurrent clients.
    let per_client = signins.div_ceil(clients);
    let started = Instant::now();
    let tasks = emails.iter().cloned().map(|email| {
        let http = http.clone();
        let server = &server;
        async move {
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let at = Instant::now();
                sign_in(&http, server, &email).await?;
                latencies.push(at.elapsed());
            }
            anyhow::Ok(latencies)
        }
    });
    let mut latencies: Vec<Duration> = futures::future::try_join_all(tasks)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "sign-in, {clients} clients, argon2id m={} KiB t={} p={}: {} sign-ins in {:.1?} = {:.0}/s; \
         p50 {:.1?}, p99 {:.1?}",
        jukebox_edge::password::M_COST,
        jukebox_edge::password::T_COST,
        jukebox_edge::password::P_COST,
        latencies.len(),
        elapsed,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );

    // 2. Authenticated GET /auth/me.
    let token = sign_in(&http, &server, &emails[0]).await?;
    let me = load(
        &http,
        &server.url("/auth/me"),
        Some(&token),
        me_clients,
        seconds,
    )
    .await?;
    println!("GET /auth/me, {me_clients} keep-alive clients, {seconds} s: {me}");
    server.stop().await
}
