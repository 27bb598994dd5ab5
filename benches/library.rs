//! Library read-model benchmark (issue 5). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench library` (release build), against
//! the Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL.
//!
//! `jukebox serve api processor relay projector` runs as its own process on a scratch
//! database and NATS namespace (dropped afterwards), with a temporary `OBJECT_STORE_DIR`.
//! A user signs up and in over HTTP. Their library is filled with `--tracks` (10,000)
//! distinct tracks through the command bus, as the downloader would: `RequestImport` and
//! `StoreTrack` per track (pipelined, `--fill-concurrency` 256 in flight), then
//! `CompleteImport` per track, `--complete-concurrency` (16) in flight: each one is its
//! own `LibraryEntry` aggregate since issue 16, so they do not conflict (before it, all
//! appended to one `Library` and ran one at a time). Then the benchmark waits until the
//! `library` read model has a row per track for the user. Then:
//! 1. `GET /library?limit=50` (bearer token, default sort) from `--clients` (64)
//!    keep-alive connections for `--seconds` (10): requests/s, p50/p99. Before and after
//!    it, the same load against a trivial axum handler in this process (a small static
//!    JSON body): the machine's ceiling for HTTP on loopback with this load generator;
//! 2. walking the whole library page by page with `cursor` (limit 50), one client,
//!    `--walks` (3) times: pages/s (every track seen once per walk is checked);
//! 3. `GET /library?limit=50&q=<artist>` (a filter matching 1 % of the tracks) with the
//!    same load as 1.

use std::time::{Duration, Instant};

use futures::StreamExt;
use jukebox_domain::{Command as DomainCommand, SourceRef, StoredTrack, TrackId};
use jukebox_test_support::bench::{arg, load, send, trivial_server, Server};
use uuid::Uuid;

const PAGE: usize = 50;
/// Tracks get the artist `Band <i % ARTISTS>`: a `q` for one artist matches 1 %.
const ARTISTS: usize = 100;

/// Fills the user's library with `tracks` distinct tracks over the command bus.
async fn fill(
    server: &Server,
    user_id: Uuid,
    tracks: usize,
    fill_concurrency: usize,
    complete_concurrency: usize,
) -> anyhow::Result<()> {
    let bus = server.bus().await?;
    let jobs: Vec<(Uuid, TrackId)> = (0..tracks)
        .map(|i| {
            let track_id =
                TrackId::parse(&format!("url:bench{i:06}")).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((Uuid::now_v7(), track_id))
        })
        .collect::<anyhow::Result<_>>()?;

    let fill_started = Instant::now();
    let started = Instant::now();
    let bus_ref = &bus;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(jobs.iter().enumerate())
        .map(|(i, (job_id, track_id))| async move {
            let origin = format!("https://example.com/bench/{i}");
            let request = DomainCommand::RequestImport {
                job_id: *job_id,
                user_id,
                source: SourceRef::url(&origin).map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            let store = DomainCommand::StoreTrack {
                track: StoredTrack {
                    track_id: track_id.clone(),
                    object_key: format!("tracks/{}.m4a", track_id.as_str()),
                    size: 5_000_000,
                    duration_ms: 120_000 + (i as u64 * 7_919) % 240_000,
                    codec: "aac".into(),
                    bitrate: 256_000,
                    title: Some(format!("Song {i:05}")),
                    artist: Some(format!("Band {}", i % ARTISTS)),
                    album: None,
                    has_cover: i % 3 == 0,
                    origin,
                    cover: None,
                },
            };
            let (a, b) = tokio::join!(
                send(bus_ref, request, user_id),
                send(bus_ref, store, user_id)
            );
            a.and(b)
        })
        .buffer_unordered(fill_concurrency)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let requested = started.elapsed();
    println!(
        "fill: {tracks} RequestImport + {tracks} StoreTrack in {requested:.1?} = {:.0} commands/s",
        (2 * tracks) as f64 / requested.as_secs_f64()
    );

    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(jobs.iter())
        .map(|(job_id, track_id)| async move {
            let complete = DomainCommand::CompleteImport {
                job_id: *job_id,
                user_id,
                track_id: track_id.clone(),
            };
            send(bus_ref, complete, user_id).await
        })
        .buffer_unordered(complete_concurrency)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let completed = started.elapsed();
    println!(
        "fill: {tracks} CompleteImport (one LibraryEntry each) in {completed:.1?} = {:.0} commands/s",
        tracks as f64 / completed.as_secs_f64()
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM library WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&server.pool)
            .await?;
        if rows as usize >= tracks {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "library has {rows} of {tracks} rows after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "fill: library read model caught up {:.1?} after the last outcome",
        started.elapsed()
    );
    println!(
        "fill: {tracks} tracks imported and listed in {:.1?} in all",
        fill_started.elapsed()
    );
    Ok(())
}

/// Walks the whole library with `cursor`: `(pages, items)`.
async fn walk(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
) -> anyhow::Result<(usize, usize)> {
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/library?limit={PAGE}", server.api);
        if let Some(cursor) = &cursor {
            url.push_str("&cursor=");
            url.extend(url::form_urlencoded::byte_serialize(cursor.as_bytes()));
        }
        let response = http.get(&url).bearer_auth(token).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET /library: {}",
            response.status()
        );
        let body: serde_json::Value = response.json().await?;
        pages += 1;
        for item in body["items"].as_array().into_iter().flatten() {
            let id = item["track_id"].as_str().unwrap_or_default().to_owned();
            anyhow::ensure!(seen.insert(id), "a track was repeated while paging");
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok((pages, seen.len())),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tracks = arg("--tracks", 10_000);
    let fill_concurrency = arg("--fill-concurrency", 256);
    let complete_concurrency = arg("--complete-concurrency", 16);
    let clients = arg("--clients", 64);
    let seconds = arg("--seconds", 10) as u64;
    let walks = arg("--walks", 3);

    let server = Server::start(
        env!("CARGO_BIN_EXE_jukebox"),
        "library",
        &["api", "processor", "relay", "projector"],
        &[],
    )
    .await?;
    let result = run(
        &server,
        tracks,
        fill_concurrency,
        complete_concurrency,
        clients,
        seconds,
        walks,
    )
    .await;
    server.stop().await?;
    result
}

async fn run(
    server: &Server,
    tracks: usize,
    fill_concurrency: usize,
    complete_concurrency: usize,
    clients: usize,
    seconds: u64,
    walks: usize,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let (user_id, token) = server.account(&http).await?;
    fill(
        server,
        user_id,
        tracks,
        fill_concurrency,
        complete_concurrency,
    )
    .await?;

    let trivial = trivial_server().await?;
    let library = format!("{}/library?limit={PAGE}", server.api);
    // Warm-up: connections, the auth check, the page in Postgres' cache.
    load(&http, &trivial, None, clients, 1).await?;
    load(&http, &library, Some(&token), clients, 1).await?;

    // 1. One page, 64 clients, beside the trivial handler.
    let before = load(&http, &trivial, None, clients, seconds).await?;
    println!("trivial axum handler, {clients} keep-alive clients, {seconds} s: {before}");
    let page = load(&http, &library, Some(&token), clients, seconds).await?;
    println!("GET /library?limit={PAGE} ({tracks} tracks), {clients} clients, {seconds} s: {page}");
    let after = load(&http, &trivial, None, clients, seconds).await?;
    println!("trivial axum handler again: {after}");
    println!(
        "ratio /library / trivial (mean of before and after): {:.2}",
        page.rate / ((before.rate + after.rate) / 2.0)
    );

    // 2. Walking every page with the cursor, one client.
    for _ in 0..walks {
        let started = Instant::now();
        let (pages, items) = walk(&http, server, &token).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(items == tracks, "the walk saw {items} of {tracks} tracks");
        println!(
            "walk with cursor, one client: {pages} pages ({items} tracks) in {elapsed:.2?} = \
             {:.0} pages/s",
            pages as f64 / elapsed.as_secs_f64()
        );
    }

    // 3. A text filter (one artist, 1 % of the tracks), same load as 1.
    let filtered = format!("{library}&q=band%2042");
    let response = http.get(&filtered).bearer_auth(&token).send().await?;
    let body: serde_json::Value = response.json().await?;
    let first = body["items"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        first == PAGE.min(tracks / ARTISTS),
        "q page had {first} items"
    );
    let q = load(&http, &filtered, Some(&token), clients, seconds).await?;
    println!("GET /library?limit={PAGE}&q=band 42, {clients} clients, {seconds} s: {q}");
    Ok(())
}
