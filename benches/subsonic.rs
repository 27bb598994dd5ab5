//! Subsonic API benchmark (issue 18). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench subsonic` (release build), against
//! the Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL.
//!
//! `jukebox serve api processor relay projector` on a scratch database and namespace. A
//! user signs up, signs in and creates an app credential. Their library gets `--tracks`
//! (10,000) tracks over the command bus as the downloader sends them (`RequestImport`
//! and `StoreTrack`, then `CompleteImport`), `--fill-concurrency` (256) in flight, with
//! 100 artists and 10 albums each. Once the `music` read model lists them all:
//! 1. a full `search3` sync as Symfonium does it (empty query, pages of `--page` (500)
//!    songs by `songOffset`), `--syncs` (3) times: total time and per-page p50/p99
//!    (every song seen once per sync is checked);
//! 2. `getAlbumList2?type=newest&size=50` and `getArtists` from `--clients` (64)
//!    keep-alive connections for `--seconds` (10) each, beside a trivial axum handler in
//!    this process (before and after): requests/s, p50/p99.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jukebox_domain::{Command as DomainCommand, SourceRef, StoredTrack, TrackId};
use jukebox_test_support::bench::{arg, load, percentile, send, trivial_server, Server};
use uuid::Uuid;

const ARTISTS: usize = 100;
const ALBUMS_PER_ARTIST: usize = 10;

fn stored(i: usize, track_id: &TrackId, origin: String) -> StoredTrack {
    let artist = format!("Band {:03}", i % ARTISTS);
    StoredTrack {
        track_id: track_id.clone(),
        object_key: format!("tracks/{}.m4a", track_id.as_str()),
        size: 5_000_000,
        duration_ms: 120_000 + (i as u64 * 7_919) % 240_000,
        codec: "aac".into(),
        bitrate: 256_000,
        title: Some(format!("Song {i:05}")),
        artist: Some(artist.clone()),
        album: Some(format!("Album {}", (i / ARTISTS) % ALBUMS_PER_ARTIST)),
        artists: vec![artist],
        year: Some(1970 + (i % 50) as i32),
        has_cover: false,
        origin,
        cover: None,
    }
}

/// Fills the library over the command bus, `concurrency` tracks in flight.
async fn fill(
    server: &Server,
    user_id: Uuid,
    tracks: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let bus = server.bus().await?;
    let started = Instant::now();
    let bus = &bus;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..tracks)
        .map(|i| async move {
            let job_id = Uuid::now_v7();
            let track_id =
                TrackId::parse(&format!("url:sub{i:06}")).map_err(|e| anyhow::anyhow!("{e}"))?;
            let origin = format!("https://example.com/subsonic/{i}");
            let request = DomainCommand::RequestImport {
                job_id,
                user_id,
                source: SourceRef::url(&origin).map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            let store = DomainCommand::StoreTrack {
                track: stored(i, &track_id, origin),
            };
            let (a, b) = tokio::join!(send(bus, request, user_id), send(bus, store, user_id));
            a.and(b)?;
            let complete = DomainCommand::CompleteImport {
                job_id,
                user_id,
                track_id,
            };
            send(bus, complete, user_id).await
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    println!(
        "fill: {tracks} tracks committed in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// One `search3` page: the song ids.
async fn page(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<String>> {
    let response = http.get(url).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "search3: {}",
        response.status()
    );
    let body: serde_json::Value = response.json().await?;
    let answer = &body["subsonic-response"];
    anyhow::ensure!(answer["status"] == "ok", "search3: {answer}");
    Ok(answer["searchResult3"]["song"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect())
}

fn rest(server: &Server, method: &str, key: &str, query: &str) -> String {
    format!(
        "{}/rest/{method}?apiKey={key}&f=json&c=bench&v=1.16.1{query}",
        server.api
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tracks = arg("--tracks", 10_000);
    let concurrency = arg("--fill-concurrency", 256);
    let page_size = arg("--page", 500);
    let syncs = arg("--syncs", 3);
    let clients = arg("--clients", 64);
    let seconds = arg("--seconds", 10) as u64;
    let server = Server::start(
        env!("CARGO_BIN_EXE_jukebox"),
        "subsonic",
        &["api", "processor", "relay", "projector"],
        &[],
    )
    .await?;
    let result = run(
        &server,
        tracks,
        concurrency,
        page_size,
        syncs,
        clients,
        seconds,
    )
    .await;
    server.stop().await?;
    result
}

async fn run(
    server: &Server,
    tracks: usize,
    concurrency: usize,
    page_size: usize,
    syncs: usize,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let (user_id, token) = server.account(&http).await?;
    let created: serde_json::Value = http
        .post(server.url("/me/app-credentials"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let key = created["secret"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no secret in {created}"))?
        .to_owned();
    fill(server, user_id, tracks, concurrency).await?;
    // The `music` model lists the last track (no position: apps cannot send one).
    let started = Instant::now();
    let last = rest(
        server,
        "search3",
        &key,
        &format!(
            "&query=&artistCount=0&albumCount=0&songCount=1&songOffset={}",
            tracks - 1
        ),
    );
    while page(&http, &last).await?.is_empty() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "music did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "fill: music read model listed every track {:.1?} after the last commit",
        started.elapsed()
    );
    // Postgres plans with the statistics autovacuum gathers within a minute or so of a
    // bulk load; this measures seconds after one, so it gathers them itself. Without them
    // `getAlbumList2` ran 21 req/s (the first-track look-up took the wrong index).
    sqlx::query("ANALYZE music").execute(&server.pool).await?;

    // 1. Full syncs.
    for _ in 0..syncs {
        let mut seen = HashSet::new();
        let mut latencies = Vec::new();
        let started = Instant::now();
        let mut offset = 0;
        loop {
            let url = rest(
                server,
                "search3",
                &key,
                &format!("&query=%22%22&artistCount=0&albumCount=0&songCount={page_size}&songOffset={offset}"),
            );
            let at = Instant::now();
            let ids = page(&http, &url).await?;
            latencies.push(at.elapsed());
            let n = ids.len();
            for id in ids {
                anyhow::ensure!(seen.insert(id), "a song was repeated while syncing");
            }
            offset += n;
            if n < page_size {
                break;
            }
        }
        let total = started.elapsed();
        anyhow::ensure!(
            seen.len() == tracks,
            "the sync saw {} of {tracks} songs",
            seen.len()
        );
        latencies.sort();
        println!(
            "search3 full sync of {tracks} songs in pages of {page_size}: {} pages in {total:.2?}; \
             per page p50 {:.1?}, p99 {:.1?}",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
        );
    }

    // 2. Album list and artists at 64 clients, beside the trivial handler.
    let trivial = trivial_server().await?;
    let albums = rest(server, "getAlbumList2", &key, "&type=newest&size=50");
    let artists = rest(server, "getArtists", &key, "");
    load(&http, &trivial, None, clients, 1).await?;
    load(&http, &albums, None, clients, 1).await?;
    load(&http, &artists, None, clients, 1).await?;
    let before = load(&http, &trivial, None, clients, seconds).await?;
    println!("trivial axum handler, {clients} keep-alive clients, {seconds} s: {before}");
    let list = load(&http, &albums, None, clients, seconds).await?;
    let albums_made = ARTISTS.min(tracks) * tracks.div_ceil(ARTISTS).min(ALBUMS_PER_ARTIST);
    println!(
        "getAlbumList2 newest size=50 ({tracks} tracks, {albums_made} albums), {clients} \
         clients, {seconds} s: {list}"
    );
    let index = load(&http, &artists, None, clients, seconds).await?;
    println!("getArtists ({ARTISTS} artists), {clients} clients, {seconds} s: {index}");
    let after = load(&http, &trivial, None, clients, seconds).await?;
    println!("trivial axum handler again: {after}");
    let trivial_rate = (before.rate + after.rate) / 2.0;
    println!(
        "ratio to trivial: getAlbumList2 {:.2}, getArtists {:.2}",
        list.rate / trivial_rate,
        index.rate / trivial_rate
    );
    Ok(())
}
