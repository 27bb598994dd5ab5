//! Playlist benchmark (issue 19). Not a test: it prints figures for `docs/benchmarks.md`.
//! Run with `cargo bench --bench playlists` (release build) against the Postgres and NATS
//! at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL; `-- --tracks 50 --seconds 1 --moves 20`
//! makes a quick run (also in a debug build: `cargo test --bench playlists -- ...`).
//!
//! `jukebox serve api processor relay projector` runs as its own process on a scratch
//! database and NATS namespace. A user signs up and in over HTTP; `--tracks` (5,000)
//! tracks go into their library through the log (`TrackStored` and `TrackAddedToLibrary`,
//! as `benches/library.rs --fill-log` writes them); then one playlist of all of them is
//! made over HTTP (`POST /playlists` and `POST /playlists/{id}/tracks`, 1,000 ids a
//! request). Then:
//! 1. opening it, `GET /playlists/{id}` (the first page, 100 entries with their songs),
//!    from `--clients` (64) keep-alive connections for `--seconds` (10), beside a trivial
//!    axum handler in this process before and after: requests/s, p50/p99;
//! 2. reordering one entry, `POST /playlists/{id}/entries/{entry}/move` of a random entry
//!    to a random place, `--moves` (500) times from one client (moves of one playlist
//!    are serialized by its aggregate, ADR 27): p50/p99 of the answer, which comes once
//!    the move is committed; then the order the read model holds is checked against the
//!    same moves applied to a plain list.

use std::time::{Duration, Instant};

use jukebox_domain::{StoredTrack, TrackId};
use jukebox_test_support::bench::{arg, load, percentile, trivial_server, write_library, Server};
use jukebox_test_support::POSITION;
use serde_json::{json, Value};
use uuid::Uuid;

const CHUNK: usize = 1_000;

fn track_id(i: usize) -> anyhow::Result<TrackId> {
    TrackId::parse(&format!("url:plbench{i:06}")).map_err(|e| anyhow::anyhow!("{e}"))
}

fn stored(i: usize, track_id: &TrackId) -> StoredTrack {
    StoredTrack {
        track_id: track_id.clone(),
        object_key: format!("tracks/{}.m4a", track_id.as_str()),
        size: 5_000_000,
        duration_ms: 120_000 + (i as u64 * 7_919) % 240_000,
        codec: "aac".into(),
        bitrate: 256_000,
        title: Some(format!("Song {i:05}")),
        artist: Some(format!("Band {}", i % 100)),
        album: Some(format!("Album {}", i % 500)),
        artists: Vec::new(),
        year: None,
        has_cover: false,
        origin: format!("https://example.com/plbench/{i}"),
        cover: None,
    }
}

/// The user's library of `tracks` tracks, written straight into the log; waits until the
/// `library` and `music` read models hold them.
async fn fill(server: &Server, user_id: Uuid, tracks: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let library = (0..tracks)
        .map(|i| Ok(stored(i, &track_id(i)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    write_library(&server.pool, user_id, library).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (library, music): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM library WHERE user_id = $1),
                    (SELECT count(*) FROM music WHERE key LIKE $1::text || '/t/%' AND kind = 'entry')",
        )
        .bind(user_id)
        .fetch_one(&server.pool)
        .await?;
        if library as usize >= tracks && music as usize >= tracks {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{library} library and {music} music rows of {tracks} after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "fill: {tracks} tracks written into the log and listed in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// Sends a playlist command over HTTP; answers its body and position.
async fn command(request: reqwest::RequestBuilder) -> anyhow::Result<(Value, String)> {
    let response = request.send().await?;
    let status = response.status();
    let position = response
        .headers()
        .get(POSITION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok((body, position))
}

/// The playlist's track ids in order, read after `position` (read-your-writes).
async fn order(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    id: &str,
    position: &str,
) -> anyhow::Result<Vec<String>> {
    let mut all = Vec::new();
    loop {
        let url = server.url(&format!("/playlists/{id}?limit=500&offset={}", all.len()));
        let response = http
            .get(url)
            .bearer_auth(token)
            .header(POSITION, position)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.status());
        let body: Value = response.json().await?;
        let page: Vec<String> = body["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["track_id"].as_str().map(str::to_owned))
            .collect();
        let done = page.len() < 500;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// A tiny xorshift generator: the moves need variety, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tracks = arg("--tracks", 5_000);
    let clients = arg("--clients", 64);
    let seconds = arg("--seconds", 10) as u64;
    let moves = arg("--moves", 500);
    let server = Server::start(
        env!("CARGO_BIN_EXE_jukebox"),
        "playlists",
        &["api", "processor", "relay", "projector"],
        &[],
    )
    .await?;
    let result = run(&server, tracks, clients, seconds, moves).await;
    server.stop().await?;
    result
}

async fn run(
    server: &Server,
    tracks: usize,
    clients: usize,
    seconds: u64,
    moves: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(tracks >= 2, "--tracks is at least 2");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let (user_id, token) = server.account(&http).await?;
    fill(server, user_id, tracks).await?;

    // One playlist of every track, 1,000 ids a request.
    let ids: Vec<String> = (0..tracks)
        .map(|i| Ok(track_id(i)?.as_str().to_owned()))
        .collect::<anyhow::Result<_>>()?;
    let made = Instant::now();
    let mut chunks = ids.chunks(CHUNK);
    let first = chunks.next().unwrap_or_default();
    let (created, mut position) = command(
        http.post(server.url("/playlists"))
            .bearer_auth(&token)
            .json(&json!({ "name": "Bench", "track_ids": first })),
    )
    .await?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no id in {created}"))?
        .to_owned();
    for chunk in chunks {
        (_, position) = command(
            http.post(server.url(&format!("/playlists/{id}/tracks")))
                .bearer_auth(&token)
                .json(&json!({ "track_ids": chunk })),
        )
        .await?;
    }
    let listed = order(&http, server, &token, &id, &position).await?;
    anyhow::ensure!(listed == ids, "the playlist lists {} tracks", listed.len());
    println!(
        "a playlist of {tracks} tracks made ({} requests) and read whole in {:.1?}",
        ids.len().div_ceil(CHUNK),
        made.elapsed()
    );
    sqlx::query("VACUUM ANALYZE playlist_entries, playlists, music, library")
        .execute(&server.pool)
        .await?;

    // 1. Open it (the first page), beside the trivial handler.
    let trivial = trivial_server().await?;
    let open = server.url(&format!("/playlists/{id}"));
    load(&http, &trivial, None, clients, 1).await?;
    load(&http, &open, Some(&token), clients, 1).await?;
    let before = load(&http, &trivial, None, clients, seconds).await?;
    println!("trivial axum handler, {clients} keep-alive clients, {seconds} s: {before}");
    let page = load(&http, &open, Some(&token), clients, seconds).await?;
    println!(
        "GET /playlists/{{id}} (first page of {tracks}), {clients} clients, {seconds} s: {page}"
    );
    let after = load(&http, &trivial, None, clients, seconds).await?;
    println!("trivial axum handler again: {after}");
    println!(
        "ratio open / trivial (mean of before and after): {:.2}",
        page.rate / ((before.rate + after.rate) / 2.0)
    );

    // 2. Reorder one entry at a time (entry numbers are 1..=tracks, in order).
    let mut expected: Vec<(u64, String)> = (1..).zip(ids.iter().cloned()).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut latencies = Vec::with_capacity(moves);
    let started = Instant::now();
    for _ in 0..moves {
        let (from, to) = (rng.below(tracks), rng.below(tracks));
        let entry = expected[from].0;
        let at = Instant::now();
        (_, position) = command(
            http.post(server.url(&format!("/playlists/{id}/entries/{entry}/move")))
                .bearer_auth(&token)
                .json(&json!({ "to": to })),
        )
        .await?;
        latencies.push(at.elapsed());
        let moved = expected.remove(from);
        expected.insert(to, moved);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "move one entry of {tracks}, one client: {moves} moves in {elapsed:.1?} = {:.0}/s; \
         p50 {:.2?}, p99 {:.2?}",
        moves as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    let held = order(&http, server, &token, &id, &position).await?;
    let expected: Vec<String> = expected.into_iter().map(|(_, t)| t).collect();
    anyhow::ensure!(held == expected, "the order after the moves differs");
    println!("order after {moves} moves: as applied to a plain list");
    Ok(())
}
