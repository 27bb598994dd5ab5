//! Import benchmarks (issue 4). Not a test: it prints figures for `docs/benchmarks.md`.
//! Run with `cargo bench --bench import` (release build), against the Postgres and NATS
//! at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL, with yt-dlp, ffmpeg and ffprobe installed.
//!
//! A 3-minute test tone (pink noise + 440 Hz, MP3 192 kbps, tagged) is served from a
//! loopback HTTP server; every import gets its own URL, so none is deduplicated.
//!
//! 1. by hand: the commands the pipeline runs (yt-dlp -J, yt-dlp --load-info-json,
//!    ffprobe, ffmpeg to AAC 256 kbps +faststart, ffprobe of the result), in sequence;
//! 2. through the system: `POST /songs/import` until `GET /jobs/{id}` says completed, with
//!    `jukebox serve api processor relay projector` and `jukebox serve downloader` as two
//!    child processes; the ratio to (1) is the pipeline's overhead;
//! 3. 8 imports posted at once with DOWNLOAD_CONCURRENCY=2, beside 4x one import;
//! 4. peak RSS (VmHWM) of the downloader process (yt-dlp and ffmpeg are children with
//!    their own memory, not counted).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jukebox_handlers::media::Tools;
use jukebox_test_support::bench::{arg, rss_kib, Server};
use jukebox_test_support::media::{make_tone, Tone};
use serde_json::{json, Value};

/// The 1-minute load average (other work on the same cores).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

fn run(program: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Serves `file` under `/media/<any name>.mp3`.
async fn media_server(file: PathBuf) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/media/{name}",
        axum::routing::get(move || {
            let file = file.clone();
            async move {
                let bytes = tokio::fs::read(&file).await.unwrap_or_default();
                ([(axum::http::header::CONTENT_TYPE, "audio/mpeg")], bytes)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// The pipeline's commands, run by hand in sequence.
fn by_hand(tools: &Tools, url: &str, dir: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let info = dir.join("info.json");
    let out = Command::new(&tools.yt_dlp)
        .args([
            "--ignore-config",
            "--no-playlist",
            "--no-cache-dir",
            "-f",
            "bestaudio/best",
            "--dump-single-json",
            "--",
            url,
        ])
        .output()?;
    anyhow::ensure!(out.status.success(), "yt-dlp -J failed");
    std::fs::write(&info, &out.stdout)?;
    let source = dir.join("source.%(ext)s");
    run(
        &tools.yt_dlp,
        &[
            "--ignore-config",
            "--no-playlist",
            "--no-cache-dir",
            "-f",
            "bestaudio/best",
            "--load-info-json",
            info.to_str().unwrap(),
            "-o",
            source.to_str().unwrap(),
            "--quiet",
        ],
    )?;
    let input = dir.join("source.mp3");
    let probe = |path: &Path| {
        run(
            &tools.ffprobe,
            &[
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
                path.to_str().unwrap(),
            ],
        )
    };
    probe(&input)?;
    let output = dir.join("track.m4a");
    run(
        &tools.ffmpeg,
        &[
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            input.to_str().unwrap(),
            "-map",
            "0:a:0",
            "-c:a",
            "aac",
            "-b:a",
            "256k",
            "-movflags",
            "+faststart",
            output.to_str().unwrap(),
        ],
    )?;
    probe(&output)?;
    let elapsed = started.elapsed();
    std::fs::remove_dir_all(dir)?;
    std::fs::create_dir_all(dir)?;
    Ok(elapsed)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// `jukebox serve api processor relay projector` and `jukebox serve downloader` (the
/// second process) with a signed-in user.
struct System {
    server: Server,
    http: reqwest::Client,
    token: String,
    _work: tempfile::TempDir,
}

impl System {
    async fn start(concurrency: usize) -> anyhow::Result<Self> {
        let work = tempfile::tempdir()?;
        let vars = [
            ("COOKIE_SECURE", "0".into()),
            ("IMPORT_ALLOW_PRIVATE_NETWORKS", "1".into()),
            ("IMPORT_WORK_DIR", work.path().display().to_string()),
            ("DOWNLOAD_CONCURRENCY", concurrency.to_string()),
        ];
        let mut server = Server::start(
            env!("CARGO_BIN_EXE_jukebox"),
            "import",
            &["api", "processor", "relay", "projector"],
            &vars,
        )
        .await?;
        if let Err(e) = server.spawn(&["downloader"]) {
            server.stop().await?;
            return Err(e);
        }
        let http = reqwest::Client::new();
        let (_, token) = server.account(&http).await?;
        Ok(Self {
            server,
            http,
            token,
            _work: work,
        })
    }

    /// The downloader's process id.
    fn downloader(&self) -> u32 {
        self.server.pids()[1]
    }

    async fn post(&self, url: &str) -> anyhow::Result<String> {
        let body: Value = self
            .http
            .post(self.server.url("/songs/import"))
            .bearer_auth(&self.token)
            .json(&json!({ "url": url }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["job_id"].as_str().unwrap_or_default().to_owned())
    }

    async fn wait(&self, job_id: &str) -> anyhow::Result<()> {
        loop {
            let response = self
                .http
                .get(self.server.url(&format!("/jobs/{job_id}")))
                .bearer_auth(&self.token)
                .send()
                .await?;
            if response.status().is_success() {
                let job: Value = response.json().await?;
                match job["status"].as_str() {
                    Some("completed") => return Ok(()),
                    Some("failed") => anyhow::bail!("import failed: {job}"),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn status(&self, job_id: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .get(self.server.url(&format!("/jobs/{job_id}")))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if !response.status().is_success() {
            return Ok("unknown".into());
        }
        let job: Value = response.json().await?;
        Ok(job["status"].as_str().unwrap_or_default().to_owned())
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = arg("--seconds", 180) as u32;
    let rounds = arg("--rounds", 3);
    let burst = arg("--burst", 8);
    let concurrency = arg("--concurrency", 2);
    let tools = Tools::discover()?;
    let media = tempfile::tempdir()?;
    let source = media.path().join("source.mp3");
    make_tone(
        &source,
        &Tone {
            seconds,
            title: "Bench Tone",
            artist: "The Bench",
            cover: false,
        },
    );
    let size = std::fs::metadata(&source)?.len();
    let base = media_server(source).await?;
    println!(
        "source: {seconds} s tone, MP3 192 kbps, {:.1} MiB",
        size as f64 / 1048576.0
    );
    let mut next = 0;
    let mut url = || {
        next += 1;
        format!("{base}/media/track-{next}.mp3")
    };

    // 1. By hand, 1b. the pipeline alone in process, 2. through the system: interleaved
    // round by round, so each round's three figures share the machine's load of the
    // moment (other work on the same cores shifts all three alike).
    let scratch = tempfile::tempdir()?;
    let mut config = jukebox_handlers::media::PipelineConfig::new(tools.clone());
    config.allow_private_networks = true;
    let pipeline = jukebox_handlers::media::Pipeline::new(config);
    let system = System::start(concurrency).await?;
    // Warm-up: the first job also warms the page cache and the connections.
    let job = system.post(&url()).await?;
    system.wait(&job).await?;
    let (mut hand, mut alone, mut single) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let by_hand_url = url();
        hand.push(tokio::task::block_in_place(|| {
            by_hand(&tools, &by_hand_url, scratch.path())
        })?);
        let started = Instant::now();
        let prepared = pipeline.import_url(&url(), &mut |_| {}).await?;
        alone.push(started.elapsed());
        drop(prepared);
        let started = Instant::now();
        let job = system.post(&url()).await?;
        system.wait(&job).await?;
        single.push(started.elapsed());
        println!(
            "round {round}: by hand {:.2} s, pipeline alone {:.2} s, system {:.2} s ({:.3}x), load {}",
            hand[round - 1].as_secs_f64(),
            alone[round - 1].as_secs_f64(),
            single[round - 1].as_secs_f64(),
            single[round - 1].as_secs_f64() / hand[round - 1].as_secs_f64(),
            load()
        );
    }
    let ratios: Vec<f64> = single
        .iter()
        .zip(&hand)
        .map(|(s, h)| s.as_secs_f64() / h.as_secs_f64())
        .collect();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let (hand, alone, single) = (median(hand), median(alone), median(single));
    println!(
        "medians: by hand {:.2} s, Pipeline::import_url alone {:.2} s ({:.3}x), \
         through the system {:.2} s; median per-round ratio system/by hand {:.3}",
        hand.as_secs_f64(),
        alone.as_secs_f64(),
        alone.as_secs_f64() / hand.as_secs_f64(),
        single.as_secs_f64(),
        sorted[sorted.len() / 2]
    );

    // 3. A burst with `concurrency` download slots.
    let started = Instant::now();
    let mut jobs = Vec::new();
    for _ in 0..burst {
        jobs.push(system.post(&url()).await?);
    }
    // When each job started downloading and when it completed (seconds from the burst).
    let mut timeline: Vec<(Option<f64>, Option<f64>)> = vec![(None, None); jobs.len()];
    while timeline.iter().any(|(_, done)| done.is_none()) {
        for (job, times) in jobs.iter().zip(timeline.iter_mut()) {
            if times.1.is_some() {
                continue;
            }
            let status = system.status(job).await?;
            let now = started.elapsed().as_secs_f64();
            match status.as_str() {
                "downloading" | "transcoding" | "storing" if times.0.is_none() => {
                    times.0 = Some(now)
                }
                "completed" => times.1 = Some(now),
                "failed" => anyhow::bail!("import {job} failed"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = started.elapsed();
    let line: Vec<String> = timeline
        .iter()
        .map(|(start, done)| {
            format!(
                "{:.1}-{:.1}",
                start.unwrap_or(f64::NAN),
                done.unwrap_or(f64::NAN)
            )
        })
        .collect();
    println!("burst timeline (start-end, s): {}", line.join(" "));
    let serial = single * (burst as u32 / concurrency as u32);
    println!(
        "{burst} imports at once, concurrency {concurrency}: {:.2} s ({:.2} s per import); \
         {}x one import = {:.2} s; ratio {:.3}",
        total.as_secs_f64(),
        total.as_secs_f64() / burst as f64,
        burst / concurrency,
        serial.as_secs_f64(),
        total.as_secs_f64() / serial.as_secs_f64()
    );

    // The same single import right after the burst, for the load of the moment.
    let started = Instant::now();
    let job = system.post(&url()).await?;
    system.wait(&job).await?;
    println!(
        "one import right after the burst: {:.2} s, load {}",
        started.elapsed().as_secs_f64(),
        load()
    );

    // 4. Memory.
    println!(
        "downloader process: RSS now {} MiB, peak (VmHWM) {} MiB",
        rss_kib(system.downloader(), "VmRSS:") / 1024,
        rss_kib(system.downloader(), "VmHWM:") / 1024
    );
    system.stop().await?;
    Ok(())
}
