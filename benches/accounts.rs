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

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

mod support;
use support::{admin_url, arg, nats_url, percentile};

const PASSWORD: &str = "correct horse battery staple";

struct Server {
    child: Child,
    base: String,
    database: String,
    namespace: String,
}

impl Server {
    async fn start() -> anyhow::Result<Self> {
        let id = &Uuid::new_v4().simple().to_string()[..10];
        let database = format!("jukebox_bench_accounts_{id}");
        let namespace = format!("bacc{id}");
        let mut url = url::Url::parse(&admin_url())?;
        url.set_path(&database);
        let port = 30_000 + (std::process::id() % 10_000) as u16;
        let vars = [
            ("DATABASE_URL", url.to_string()),
            ("NATS_URL", nats_url()),
            ("NATS_NAMESPACE", namespace.clone()),
        ];
        let config = jukebox::Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })?;
        jukebox::ops::migrate(&config).await?;
        let child = Command::new(env!("CARGO_BIN_EXE_jukebox"))
            .args(["serve", "api", "processor", "relay", "projector"])
            .env("DATABASE_URL", url.as_str())
            .env("NATS_URL", nats_url())
            .env("NATS_NAMESPACE", &namespace)
            .env("API_PORT", port.to_string())
            .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret-0123")
            .env("RATE_LIMIT_PER_ACCOUNT", "1000000")
            .env("RATE_LIMIT_PER_ADDRESS", "1000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            database,
            namespace,
        };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(response) = http.get(format!("{}/readyz", server.base)).send().await {
                if response.status().is_success() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the server did not become ready")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let nats = async_nats::connect(nats_url()).await?;
        let namespace =
            jukebox_nats::Namespace::new(&self.namespace).map_err(anyhow::Error::msg)?;
        jukebox_nats::Topology::new(namespace)
            .delete_streams(&async_nats::jetstream::new(nats))
            .await;
        let mut admin = PgConnection::connect(&admin_url()).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.database
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}

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
    let server = Server::start().await?;
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
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks = (0..me_clients).map(|_| {
        let http = http.clone();
        let url = server.url("/auth/me");
        let token = token.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                let response = http.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(response.status().is_success(), "me: {}", response.status());
                response.bytes().await?;
                latencies.push(at.elapsed());
            }
            anyhow::Ok(latencies)
        })
    });
    let handles: Vec<_> = tasks.collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "GET /auth/me, {me_clients} keep-alive clients, {seconds} s: {} requests = {:.0} req/s; \
         p50 {:.2?}, p99 {:.2?}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    server.stop().await
}
