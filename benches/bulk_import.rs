//! Bulk import benchmark (issue 20). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench bulk_import` (release build),
//! against the Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL, with yt-dlp
//! installed (it lists the feed).
//!
//! A feed of N (default 200, `--entries N`) already-stored sources: every entry's track is
//! stored beforehand (`StoreTrack` on the bus, never fetched), so the import is the
//! system's own work: the listing, one `ImportCollection` (collection, playlist, N jobs),
//! and N jobs the downloader completes without running any media tool. Timed from
//! `POST /imports/collections/confirm` until the progress says nothing remains and the
//! playlist lists all N; reported as time and entries/s (target >= 50/s).
//!
//! Then a feed of N (default 200, `--new-entries N`) NEW sources: loopback tones (one
//! file's bytes under N names, so N tracks), each fetched by yt-dlp and transcoded by
//! ffmpeg, at `DOWNLOAD_CONCURRENCY=2`. Its total time is set beside N/2 times one
//! import's time measured in the same run (the mean of K sequential single imports,
//! default 10, `--singles K` or `BULK_IMPORT_SINGLES`): for N = 200, 100 x one import
//! (target <= 1.1x). With K < 100 the reference is scaled from the mean, not timed whole.
//! The processor's conflict retries and exhausted retries are read from its `/metrics`
//! (`jukebox_processor_conflicts_total`) before and after (target 0 exhausted, 0 failed
//! jobs). `--stored 0` or `--new-entries 0` skips a part; a smoke run:
//! `cargo bench --bench bulk_import -- --stored 0 --new-entries 6 --singles 2`.

use std::time::{Duration, Instant};

use jukebox_domain::{Command, StoredTrack, TrackId};
use jukebox_test_support::bench::{arg, send, Server};
use jukebox_test_support::media::{make_tone, MediaServer, Tone};
use serde_json::{json, Value};

/// Serves one RSS feed of `urls` at `/feed.xml`.
async fn feed_server(urls: Vec<String>) -> anyhow::Result<String> {
    let items: String = urls
        .iter()
        .enumerate()
        .map(|(n, url)| {
            format!(
                "<item><title>Stored {n}</title><guid>s{n}</guid>\
                 <enclosure url=\"{url}\" type=\"audio/mpeg\" length=\"1\"/></item>"
            )
        })
        .collect();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
         <title>Stored tones</title><link>http://127.0.0.1/</link><description>d</description>\
         {items}</channel></rss>"
    );
    let app = axum::Router::new().route(
        "/feed.xml",
        axum::routing::get(move || {
            let xml = xml.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/rss+xml")],
                    xml,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("{base}/feed.xml"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let entries = arg("--stored", arg("--entries", 200));
    let new_entries = arg("--new-entries", 200);
    let singles = arg(
        "--singles",
        std::env::var("BULK_IMPORT_SINGLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    let work = tempfile::tempdir()?;
    let vars = [
        ("COOKIE_SECURE", "0".into()),
        ("IMPORT_ALLOW_PRIVATE_NETWORKS", "1".into()),
        ("IMPORT_WORK_DIR", work.path().display().to_string()),
        ("DOWNLOAD_CONCURRENCY", "2".into()),
    ];
    let mut server = Server::start(
        env!("CARGO_BIN_EXE_jukebox"),
        "bulk_import",
        &["api", "processor", "relay", "projector"],
        &vars,
    )
    .await?;
    if let Err(e) = server.spawn(&["downloader"]) {
        server.stop().await?;
        return Err(e);
    }
    let result = async {
        let http = reqwest::Client::new();
        let (user_id, token) = server.account(&http).await?;
        if entries > 0 {
            stored(&server, &http, user_id, &token, entries).await?;
        }
        if new_entries > 0 {
            new_sources(&server, &http, &token, new_entries, singles.max(1)).await?;
        }
        anyhow::Ok(())
    }
    .await;
    server.stop().await?;
    result
}

async fn stored(
    server: &Server,
    http: &reqwest::Client,
    user_id: uuid::Uuid,
    token: &str,
    entries: usize,
) -> anyhow::Result<()> {
    // Stored sources: tracks named as the downloader names a direct link, never fetched.
    let urls: Vec<String> = (0..entries)
        .map(|n| format!("http://127.0.0.1:9/stored-{n}.mp3"))
        .collect();
    let bus = server.bus().await?;
    for url in &urls {
        let track_id = TrackId::of_direct_link(url);
        let track = StoredTrack {
            object_key: format!("tracks/{track_id}.m4a"),
            track_id,
            size: 1000,
            duration_ms: 1000,
            codec: "aac".into(),
            bitrate: 256_000,
            title: Some("Stored".into()),
            artist: None,
            album: None,
            artists: Vec::new(),
            year: None,
            has_cover: false,
            origin: url.clone(),
            cover: None,
        };
        send(&bus, Command::StoreTrack { track }, user_id).await?;
    }
    let feed = feed_server(urls).await?;

    let started = Instant::now();
    let confirmed: Value = http
        .post(format!("{}/imports/collections/confirm", server.api))
        .bearer_auth(token)
        .json(&json!({ "url": feed }))
        .send()
        .await?
        .json()
        .await?;
    let answered = started.elapsed();
    let collection = confirmed["collection_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("confirm answered {confirmed}"))?
        .to_owned();
    let playlist = confirmed["playlist_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not done in 10 min"
        );
        let progress: Value = http
            .get(format!("{}/imports/collections/{collection}", server.api))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if progress["remaining"] == 0 && progress["total"] == entries {
            anyhow::ensure!(progress["failed"] == 0, "failures: {progress}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed: Value = http
        .get(format!("{}/playlists/{playlist}?limit=500", server.api))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let in_playlist = listed["entries"].as_array().map_or(0, Vec::len);
    let took = started.elapsed();
    println!(
        "bulk import of {entries} stored sources: confirm answered in {:.2} s, all done in {:.2} s \
         ({:.1} entries/s); playlist lists {in_playlist}",
        answered.as_secs_f64(),
        took.as_secs_f64(),
        entries as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// Follows `GET /imports/collections/{id}` until nothing remains; answers its body.
async fn finished(
    server: &Server,
    http: &reqwest::Client,
    token: &str,
    collection: &str,
    started: Instant,
    limit: Duration,
) -> anyhow::Result<Value> {
    loop {
        anyhow::ensure!(started.elapsed() < limit, "not done in {limit:?}");
        let progress: Value = http
            .get(format!("{}/imports/collections/{collection}", server.api))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if progress["remaining"] == 0 && progress["total"].as_u64() > Some(0) {
            return Ok(progress);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One `POST /songs/import` until its job completes, timed.
async fn single(
    server: &Server,
    http: &reqwest::Client,
    token: &str,
    url: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let accepted: Value = http
        .post(format!("{}/songs/import", server.api))
        .bearer_auth(token)
        .json(&json!({ "url": url }))
        .send()
        .await?
        .json()
        .await?;
    let job = accepted["job_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("import answered {accepted}"))?
        .to_owned();
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "job {job} not done in 2 min"
        );
        let response = http
            .get(format!("{}/jobs/{job}", server.api))
            .bearer_auth(token)
            .send()
            .await?;
        if response.status().is_success() {
            let body: Value = response.json().await?;
            match body["status"].as_str() {
                Some("completed") => return Ok(started.elapsed()),
                Some("failed") => anyhow::bail!("single import failed: {body}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `name{labels} value` from Prometheus text (0 when absent).
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// (retried, exhausted) conflicts of the processor (the first process).
async fn conflicts(server: &Server) -> anyhow::Result<(u64, u64)> {
    let text = server.metrics(0).await?;
    Ok((
        metric(
            &text,
            "jukebox_processor_conflicts_total{outcome=\"retried\"}",
        ),
        metric(
            &text,
            "jukebox_processor_conflicts_total{outcome=\"exhausted\"}",
        ),
    ))
}

async fn new_sources(
    server: &Server,
    http: &reqwest::Client,
    token: &str,
    entries: usize,
    singles: usize,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let media = MediaServer::start(dir.path()).await;
    let model = dir.path().join("model.mp3");
    make_tone(
        &model,
        &Tone {
            seconds: arg("--tone-seconds", 5) as u32,
            title: "Bench Tone",
            artist: "The Test Tones",
            cover: false,
        },
    );
    let bytes = std::fs::read(&model)?;
    let url =
        |name: String| std::fs::write(dir.path().join(&name), &bytes).map(|()| media.url(&name));
    let single_urls = (0..singles)
        .map(|n| url(format!("single-{n}.mp3")))
        .collect::<Result<Vec<_>, _>>()?;
    let feed_urls = (0..entries)
        .map(|n| url(format!("new-{n}.mp3")))
        .collect::<Result<Vec<_>, _>>()?;
    let items: Vec<(String, &str, Option<u32>)> = feed_urls
        .iter()
        .enumerate()
        .map(|(n, u)| (format!("New {n}"), u.as_str(), None))
        .collect();
    let items: Vec<(&str, &str, Option<u32>)> =
        items.iter().map(|(t, u, d)| (t.as_str(), *u, *d)).collect();
    let feed = media.feed("new.xml", "New tones", &items);

    // One import's time, one after the other (the first also warms the tools' caches).
    let mut times = Vec::with_capacity(singles);
    for url in &single_urls {
        times.push(single(server, http, token, url).await?);
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let (min, max) = (
        times.iter().min().copied().unwrap_or_default(),
        times.iter().max().copied().unwrap_or_default(),
    );

    let (retried_before, exhausted_before) = conflicts(server).await?;
    let started = Instant::now();
    let confirmed: Value = http
        .post(format!("{}/imports/collections/confirm", server.api))
        .bearer_auth(token)
        .json(&json!({ "url": feed }))
        .send()
        .await?
        .json()
        .await?;
    let collection = confirmed["collection_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("confirm answered {confirmed}"))?
        .to_owned();
    let limit = Duration::from_secs(60 + 30 * entries as u64);
    let progress = finished(server, http, token, &collection, started, limit).await?;
    let took = started.elapsed();
    let (retried_after, exhausted_after) = conflicts(server).await?;
    let failed = progress["failed"].as_u64().unwrap_or(0);
    // DOWNLOAD_CONCURRENCY=2: the ideal is N/2 rounds of one import each.
    let reference = mean * (entries as u32).div_ceil(2);
    println!(
        "bulk import of {entries} new sources at DOWNLOAD_CONCURRENCY=2: all done in {:.2} s \
         ({:.2} entries/s), {failed} failed; one import {:.2} s (mean of {singles}, min {:.2}, \
         max {:.2}), {} x one = {:.2} s; ratio {:.2}x (target <= 1.1x); processor conflicts \
         retried {}, exhausted {} (target 0)",
        took.as_secs_f64(),
        entries as f64 / took.as_secs_f64(),
        mean.as_secs_f64(),
        min.as_secs_f64(),
        max.as_secs_f64(),
        entries.div_ceil(2),
        reference.as_secs_f64(),
        took.as_secs_f64() / reference.as_secs_f64(),
        retried_after - retried_before,
        exhausted_after - exhausted_before,
    );
    anyhow::ensure!(failed == 0, "failures: {progress}");
    Ok(())
}
