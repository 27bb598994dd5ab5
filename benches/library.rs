//! Library read-model benchmark (issue 5). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench library` (release build), against
//! the Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL.
//!
//! `jukebox serve api processor relay projector` runs as its own process on a scratch
//! database and NATS namespace (dropped afterwards), with a temporary `OBJECT_STORE_DIR`.
//! A user signs up and in over HTTP. Their library is filled with `--tracks` (10,000)
//! distinct tracks through the command bus, as the downloader would: per track
//! `RequestImport` and `StoreTrack`, then `CompleteImport` once both are committed,
//! `--fill-concurrency` (256) tracks in flight. Each `CompleteImport` is its own
//! `LibraryEntry` aggregate since issue 16, so they do not conflict (before it, all
//! appended to one `Library` and ran one at a time, in a second phase). Then the benchmark
//! waits until the `library` read model has a row per track for the user. Then:
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
use jukebox_test_support::bench::{
    arg, load, percentile, send, trivial_server, write_library, Server,
};
use uuid::Uuid;

const PAGE: usize = 50;
/// Tracks get the artist `Band <i % ARTISTS>`: a `q` for one artist matches 1 %.
const ARTISTS: usize = 100;

/// How the library gets its tracks.
#[derive(Clone, Copy)]
enum Fill {
    /// By command, this many tracks in flight.
    Commands(usize),
    Log,
}

/// What `StoreTrack` stores for track `i`.
fn stored(i: usize, track_id: &TrackId, origin: String) -> StoredTrack {
    StoredTrack {
        track_id: track_id.clone(),
        object_key: format!("tracks/{}.m4a", track_id.as_str()),
        size: 5_000_000,
        duration_ms: 120_000 + (i as u64 * 7_919) % 240_000,
        codec: "aac".into(),
        bitrate: 256_000,
        title: Some(format!("Song {i:05}")),
        artist: Some(format!("Band {}", i % ARTISTS)),
        album: None,
        artists: Vec::new(),
        year: None,
        has_cover: i.is_multiple_of(3),
        origin,
        cover: None,
    }
}

fn track_id(i: usize) -> anyhow::Result<TrackId> {
    TrackId::parse(&format!("url:bench{i:06}")).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Waits until the relay and every projection have caught up with the log (for at most
/// five minutes, as `jukebox projections status` reads them); returns how many were
/// behind when it started.
async fn every_projection_caught_up(server: &Server) -> anyhow::Result<usize> {
    let behind = || async {
        let lags = jukebox_projections::status::lags(&server.pool).await?;
        anyhow::Ok(lags.iter().filter(|lag| lag.behind > 0).count())
    };
    let first = behind().await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let behind = behind().await?;
        if behind == 0 {
            return Ok(first);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{behind} read models still behind the log after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fills the user's library with `tracks` distinct tracks over the command bus: per
/// track what the downloader sends, in its order (`RequestImport`, which the import route
/// sends, and `StoreTrack` at once, then `CompleteImport` once both are committed),
/// `concurrency` tracks in flight.
async fn fill_commands(
    server: &Server,
    user_id: Uuid,
    tracks: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let bus = server.bus().await?;
    let jobs: Vec<(Uuid, TrackId)> = (0..tracks)
        .map(|i| Ok((Uuid::now_v7(), track_id(i)?)))
        .collect::<anyhow::Result<_>>()?;

    let fill_started = Instant::now();
    let bus_ref = &bus;
    let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(jobs.iter().enumerate())
        .map(|(i, (job_id, track_id))| async move {
            let origin = format!("https://example.com/bench/{i}");
            let request = DomainCommand::RequestImport {
                job_id: *job_id,
                user_id,
                source: SourceRef::url(&origin).map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            let store = DomainCommand::StoreTrack {
                track: stored(i, track_id, origin),
            };
            let (a, b) = tokio::join!(
                send(bus_ref, request, user_id),
                send(bus_ref, store, user_id)
            );
            a.and(b)?;
            let complete = DomainCommand::CompleteImport {
                job_id: *job_id,
                user_id,
                track_id: track_id.clone(),
            };
            let at = Instant::now();
            send(bus_ref, complete, user_id).await?;
            Ok(at.elapsed())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut completes = results
        .into_iter()
        .collect::<anyhow::Result<Vec<Duration>>>()?;
    completes.sort();
    let committed = fill_started.elapsed();
    println!(
        "fill: {tracks} x (RequestImport + StoreTrack, then CompleteImport), {concurrency} tracks \
         in flight: {committed:.1?} = {:.0} commands/s; CompleteImport p50 {:.1?}, p99 {:.1?}",
        (3 * tracks) as f64 / committed.as_secs_f64(),
        percentile(&completes, 0.5),
        percentile(&completes, 0.99),
    );

    listed(server, user_id, tracks).await?;
    println!(
        "fill: {tracks} tracks imported and listed in {:.1?} in all",
        fill_started.elapsed()
    );
    Ok(())
}

/// `TrackStored` and `TrackAddedToLibrary` (a `LibraryEntry` each) for `tracks` tracks,
/// written straight into the log in batches (as `benches/aggregates.rs` writes a
/// history): the relay and the projector build the read model as they would from
/// commands, in a fraction of the time. For libraries too big to fill by command here.
async fn fill_log(server: &Server, user_id: Uuid, tracks: usize) -> anyhow::Result<()> {
    const BATCH: usize = 5_000;
    let started = Instant::now();
    for first in (0..tracks).step_by(BATCH) {
        let batch = first..(first + BATCH).min(tracks);
        let written = batch
            .map(|i| {
                Ok(stored(
                    i,
                    &track_id(i)?,
                    format!("https://example.com/bench/{i}"),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        write_library(&server.pool, user_id, written).await?;
    }
    println!(
        "fill: {tracks} TrackStored + {tracks} TrackAddedToLibrary written into the log in {:.1?}",
        started.elapsed()
    );
    listed(server, user_id, tracks).await?;
    println!(
        "fill: {tracks} tracks written and listed in {:.1?} in all",
        started.elapsed()
    );
    Ok(())
}

/// Waits until the `library` read model lists `tracks` tracks for the user.
async fn listed(server: &Server, user_id: Uuid, tracks: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
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
            "library has {rows} of {tracks} rows after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "fill: library read model caught up {:.1?} after the last write",
        started.elapsed()
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
    // `--fill-log 1` writes the library's events into the log instead (see `fill_log`).
    let fill = match arg("--fill-log", 0) {
        0 => Fill::Commands(fill_concurrency),
        _ => Fill::Log,
    };
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
    let result = run(&server, tracks, fill, clients, seconds, walks).await;
    server.stop().await?;
    result
}

async fn run(
    server: &Server,
    tracks: usize,
    fill: Fill,
    clients: usize,
    seconds: u64,
    walks: usize,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let (user_id, token) = server.account(&http).await?;
    match fill {
        Fill::Commands(concurrency) => fill_commands(server, user_id, tracks, concurrency).await?,
        Fill::Log => fill_log(server, user_id, tracks).await?,
    }
    // Autovacuum gets to a table within a minute or so of a bulk load and then works on
    // it for a while; this measures seconds after one, so it does that work first and
    // measures the library a user meets afterwards (the 100,000-track run's own trivial
    // handler was 25-30 % slower without it).
    let vacuumed = Instant::now();
    sqlx::query("VACUUM ANALYZE library, events")
        .execute(&server.pool)
        .await?;
    println!(
        "fill: VACUUM ANALYZE library, events in {:.1?}",
        vacuumed.elapsed()
    );
    // Every other read model consumes the fill's events too: measuring while they catch
    // up would measure their work as the page's.
    let settled = Instant::now();
    let behind = every_projection_caught_up(server).await?;
    println!(
        "fill: every read model caught up in {:.1?} ({behind} were behind the log)",
        settled.elapsed()
    );

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
