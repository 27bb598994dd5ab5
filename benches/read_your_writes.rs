//! Read-after-write benchmark (issue 15). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench read_your_writes` against the
//! Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL.
//!
//! `jukebox serve api processor relay projector` runs as its own process. `--clients`
//! (16) clients each send `--rounds` (50) imports (`POST /songs/import`, no downloader:
//! the job stays requested) and right after each answer read the job with its position
//! (`GET /jobs/{id}` with `Jukebox-Position`). Figures: p50/p99 from the command's
//! answer to the read's, and beside it the projector's own lag in the same run (per
//! `jobs` checkpoint move: the checkpoint's `updated_at` minus its event's `recorded_at`).

use std::time::{Duration, Instant};

use jukebox_test_support::bench::{arg, percentile, Server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = arg("--clients", 16);
    let rounds = arg("--rounds", 50);
    let server = Server::start(
        env!("CARGO_BIN_EXE_jukebox"),
        "ryw",
        &["api", "processor", "relay", "projector"],
        &[],
    )
    .await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut tokens = Vec::new();
    for _ in 0..clients {
        tokens.push(server.account(&http).await?.1);
    }

    // The projector's lag, sampled while the clients run.
    let pool = server.pool.clone();
    let sampling = tokio_util::sync::CancellationToken::new();
    let stop = sampling.clone();
    let sampler = tokio::spawn(async move {
        let mut lags = Vec::new();
        let mut last = -1i64;
        while !stop.is_cancelled() {
            let row: Option<(i64, f64)> = sqlx::query_as(
                "SELECT c.global_position,
                        extract(epoch FROM c.updated_at - e.recorded_at)::float8
                 FROM projection_checkpoints c
                 JOIN events e ON e.global_position = c.global_position
                 WHERE c.projection = 'jobs'",
            )
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
            if let Some((position, lag)) = row {
                if position != last {
                    last = position;
                    lags.push(Duration::from_secs_f64(lag.max(0.0)));
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lags
    });

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (client, token) in tokens.into_iter().enumerate() {
        let http = http.clone();
        let import = server.url("/songs/import");
        let jobs = server.url("/jobs");
        tasks.spawn(async move {
            let mut waits = Vec::new();
            for round in 0..rounds {
                let answered = http
                    .post(&import)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({
                        "url": format!("https://example.com/bench/{client}-{round}.mp3")
                    }))
                    .send()
                    .await?;
                anyhow::ensure!(answered.status().as_u16() == 202, "{}", answered.status());
                let position = answered
                    .headers()
                    .get("jukebox-position")
                    .ok_or_else(|| anyhow::anyhow!("no position"))?
                    .to_str()?
                    .to_owned();
                let body: serde_json::Value = answered.json().await?;
                let accepted = Instant::now();
                let job = http
                    .get(format!(
                        "{jobs}/{}",
                        body["job_id"].as_str().unwrap_or_default()
                    ))
                    .bearer_auth(&token)
                    .header("jukebox-position", &position)
                    .send()
                    .await?;
                anyhow::ensure!(job.status().is_success(), "GET /jobs: {}", job.status());
                waits.push(accepted.elapsed());
            }
            Ok::<_, anyhow::Error>(waits)
        });
    }
    let mut waits = Vec::new();
    while let Some(done) = tasks.join_next().await {
        waits.extend(done??);
    }
    let elapsed = started.elapsed();
    sampling.cancel();
    let mut lags = sampler.await?;
    waits.sort();
    lags.sort();
    println!(
        "read after write, {clients} clients x {rounds} imports in {elapsed:.1?}: \
         p50 {:.1?}, p99 {:.1?}, max {:.1?} (from the 202 to the GET /jobs/{{id}} that \
         carries its position)",
        percentile(&waits, 0.50),
        percentile(&waits, 0.99),
        waits.last().copied().unwrap_or_default()
    );
    println!(
        "projector lag (jobs), {} checkpoint moves: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        lags.len(),
        percentile(&lags, 0.50),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or_default()
    );
    server.stop().await
}
