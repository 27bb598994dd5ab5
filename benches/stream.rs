//! Streaming benchmark (issue 6). Not a test: it prints figures for `docs/benchmarks.md`.
//! Run with `cargo bench --bench stream` (release build), against the Postgres and NATS at
//! TEST_DATABASE_ADMIN_URL / TEST_NATS_URL, and an `s3s-fs` it starts itself (from
//! `$JUKEBOX_TOOLS_DIR/bin`, default `~/.local/share/jukebox/tools/bin`, or PATH).
//!
//! Once per object store (folder, then S3), `jukebox serve api stream processor relay
//! projector` runs as its own process on a scratch database and NATS namespace (dropped
//! afterwards). A 20 MB object of random bytes is written to the store under
//! `tracks/<track_id>.m4a`; a user signs up and in over HTTP; `RequestImport`, `StoreTrack`
//! and `CompleteImport` go over the command bus so the track is in the user's library;
//! then a signed URL is asked for (`GET /stream/{song}`, `Accept: application/json`).
//! 1. throughput: `--rounds` (7) full GETs of the track through the stream role,
//!    interleaved with as many direct reads of the same object from the store by this
//!    process (`LocalStore`/`S3Store` `get`); MB/s of each and the ratio. Beside them, as
//!    many GETs from a plain loopback HTTP server in this process that streams the same
//!    object with no checks: what loopback HTTP costs by itself;
//! 2. `--concurrent` (200) concurrent requests for random 64 KiB ranges: time to first
//!    byte (response headers received), p50/p99, on fresh connections and then again
//!    (`--warm-rounds`, 5) on the kept-alive ones, then the same requests one at a time;
//!    and the serving process's RSS growth (VmHWM after, reset through `clear_refs`
//!    before, minus VmRSS before). `--store folder|s3` runs one backend only.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jukebox_domain::{Command as DomainCommand, SourceRef, StoredTrack, TrackId};
use jukebox_handlers::storage::{self, ObjectKey, ObjectStore, StoreConfig};
use jukebox_test_support::bench::{arg, percentile, rss_kib, send_outcome, Server};
use jukebox_test_support::S3sFs;
use uuid::Uuid;

const TRACK_BYTES: usize = 20_000_000;
const RANGE_BYTES: u64 = 64 * 1024;
const MB: f64 = 1_000_000.0;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Resets the process's peak RSS (VmHWM) to its current RSS (Linux `clear_refs` 5).
fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// xorshift64*: random enough bytes (and ranges) without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// One object store: how this process opens it, and how the server is told about it.
struct Backend {
    name: &'static str,
    config: StoreConfig,
    env: Vec<(&'static str, String)>,
    _folder: Option<tempfile::TempDir>,
    _s3: Option<S3sFs>,
}

impl Backend {
    fn folder() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("jukebox-bench-stream-")
            .tempdir()?;
        Ok(Self {
            name: "folder",
            config: StoreConfig::Local {
                dir: dir.path().to_owned(),
            },
            env: vec![("OBJECT_STORE_DIR", dir.path().display().to_string())],
            _folder: Some(dir),
            _s3: None,
        })
    }

    fn s3() -> anyhow::Result<Self> {
        let s3 = S3sFs::start();
        let bucket = "jukebox-bench";
        Ok(Self {
            name: "S3 (s3s-fs)",
            config: StoreConfig::S3(s3.store_config(bucket)),
            env: s3.env(bucket),
            _folder: None,
            _s3: Some(s3),
        })
    }
}

/// Puts the track into the user's library the way the downloader does, over the bus.
async fn import(
    server: &Server,
    user_id: Uuid,
    track_id: &TrackId,
    key: &ObjectKey,
) -> anyhow::Result<()> {
    let bus = server.bus().await?;
    let job_id = Uuid::now_v7();
    let commands = [
        DomainCommand::RequestImport {
            job_id,
            user_id,
            source: SourceRef::url("https://example.com/bench/track")
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        },
        DomainCommand::StoreTrack {
            track: StoredTrack {
                track_id: track_id.clone(),
                object_key: key.as_str().to_owned(),
                size: TRACK_BYTES as u64,
                duration_ms: 625_000,
                codec: "aac".into(),
                bitrate: 256_000,
                title: Some("Benchmark".into()),
                artist: Some("Jukebox".into()),
                album: None,
                artists: Vec::new(),
                year: None,
                has_cover: false,
                origin: "https://example.com/bench/track".into(),
                cover: None,
            },
        },
        DomainCommand::CompleteImport {
            job_id,
            user_id,
            track_id: track_id.clone(),
        },
    ];
    let mut position = None;
    for command in commands {
        position = send_outcome(&bus, command, user_id).await?.position;
    }
    // The library read model (what the stream role reads) has the track once it has
    // applied the last command's position.
    let position: jukebox_projections::Position = position
        .ok_or_else(|| anyhow::anyhow!("CompleteImport wrote nothing"))?
        .parse()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let freshness = jukebox_projections::Freshness::start(
        server.pool.clone(),
        Duration::from_secs(30),
        stop.clone(),
    );
    let library = jukebox_projections::ReadModel::of::<jukebox_projections::UserLibrary>();
    let waited = freshness.wait_for(position, &[library]).await;
    stop.cancel();
    waited.map_err(|e| anyhow::anyhow!("not in the library after 30 s: {e}"))
}

/// A signed URL for the song (`GET /stream/{song}` as JSON).
async fn signed_url(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    song: &str,
) -> anyhow::Result<String> {
    let song: String = url::form_urlencoded::byte_serialize(song.as_bytes()).collect();
    let response = http
        .get(format!("{}/stream/{song}", server.api))
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET /stream: {}",
        response.status()
    );
    let body: serde_json::Value = response.json().await?;
    body["url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no url in {body}"))
}

/// A full GET through the stream role, counting the bytes (not keeping them).
async fn http_read(http: &reqwest::Client, url: &str) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let mut response = http.get(url).send().await?;
    anyhow::ensure!(
        response.status().as_u16() == 200,
        "GET: {}",
        response.status()
    );
    let mut read = 0;
    while let Some(chunk) = response.chunk().await? {
        read += chunk.len();
    }
    Ok((read, started.elapsed()))
}

/// A full read of the object straight from the store, counting the bytes.
async fn direct_read(
    store: &dyn ObjectStore,
    key: &ObjectKey,
) -> anyhow::Result<(usize, Duration)> {
    use futures::TryStreamExt;
    let started = Instant::now();
    let mut body = store.get(key, None).await?;
    let mut read = 0;
    while let Some(chunk) = body.stream.try_next().await? {
        read += chunk.len();
    }
    Ok((read, started.elapsed()))
}

/// A plain loopback HTTP server that answers every request with the whole object from
/// the same store (`Body::from_stream`, no checks): what HTTP on loopback costs by itself.
/// It runs on its own two-worker runtime, like the server's.
fn plain_http(store: Arc<dyn ObjectStore>, key: ObjectKey) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/object",
                axum::routing::get(move || {
                    let (store, key) = (store.clone(), key.clone());
                    async move {
                        let body = store.get(&key, None).await.expect("the object");
                        axum::body::Body::from_stream(body.stream)
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    Ok(format!("http://{addr}/object"))
}

/// `count` concurrent requests for random 64 KiB ranges, released together; the time to
/// the response headers of each.
async fn ranges(
    http: &reqwest::Client,
    url: &str,
    count: usize,
    rng: &mut Rng,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(count));
    let started = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let start = rng.next() % (TRACK_BYTES as u64 - RANGE_BYTES);
            let (http, url, barrier) = (http.clone(), url.to_owned(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let sent = Instant::now();
                let response = http
                    .get(&url)
                    .header(
                        reqwest::header::RANGE,
                        format!("bytes={start}-{}", start + RANGE_BYTES - 1),
                    )
                    .send()
                    .await?;
                let first_byte = sent.elapsed();
                anyhow::ensure!(
                    response.status().as_u16() == 206,
                    "range: {}",
                    response.status()
                );
                let body = response.bytes().await?;
                anyhow::ensure!(body.len() as u64 == RANGE_BYTES, "short range body");
                anyhow::Ok(first_byte)
            })
        })
        .collect();
    let mut times = Vec::with_capacity(count);
    for task in tasks {
        times.push(task.await??);
    }
    let elapsed = started.elapsed();
    times.sort();
    Ok((times, elapsed))
}

async fn bench(
    backend: Backend,
    rounds: usize,
    concurrent: usize,
    warm: usize,
) -> anyhow::Result<()> {
    println!("## {} store", backend.name);
    let store = storage::open(&backend.config).await?;
    let track_id = TrackId::parse(&format!("bench:{}", Uuid::new_v4().simple()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = ObjectKey::parse(&format!("tracks/{track_id}.m4a"))?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));
    let data = rng.bytes(TRACK_BYTES);
    let stored = store.put_stream(&key, &mut &data[..]).await?;
    anyhow::ensure!(stored.size == TRACK_BYTES as u64, "stored {stored:?}");
    drop(data);

    let server = Server::start(
        env!("CARGO_BIN_EXE_jukebox"),
        "stream",
        &["api", "stream", "processor", "relay", "projector"],
        &backend.env,
    )
    .await?;
    let result = measure(&server, &store, &track_id, &key, rounds, concurrent, warm).await;
    server.stop().await?;
    result
}

async fn measure(
    server: &Server,
    store: &Arc<dyn ObjectStore>,
    track_id: &TrackId,
    key: &ObjectKey,
    rounds: usize,
    concurrent: usize,
    warm: usize,
) -> anyhow::Result<()> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ u64::from(std::process::id()));
    let http = reqwest::Client::new();
    let (user_id, token) = server.account(&http).await?;
    import(server, user_id, track_id, key).await?;
    let url = signed_url(&http, server, &token, track_id.as_str()).await?;

    // 1. Throughput: warm-up once each, then interleaved rounds.
    let (read, _) = http_read(&http, &url).await?;
    anyhow::ensure!(read == TRACK_BYTES, "the stream served {read} bytes");
    direct_read(store.as_ref(), key).await?;
    let plain = plain_http(store.clone(), key.clone())?;
    http_read(&http, &plain).await?;
    let (mut through_stream, mut direct, mut through_plain) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (read, took) = direct_read(store.as_ref(), key).await?;
        anyhow::ensure!(read == TRACK_BYTES, "the store gave {read} bytes");
        direct.push(read as f64 / MB / took.as_secs_f64());
        let (read, took) = http_read(&http, &url).await?;
        anyhow::ensure!(read == TRACK_BYTES, "the stream served {read} bytes");
        through_stream.push(read as f64 / MB / took.as_secs_f64());
        let (read, took) = http_read(&http, &plain).await?;
        anyhow::ensure!(read == TRACK_BYTES, "plain HTTP served {read} bytes");
        through_plain.push(read as f64 / MB / took.as_secs_f64());
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("throughput, 20 MB track, {rounds} full GETs each:");
    println!("  stream endpoint: {} MB/s", fmt(&through_stream));
    println!("  direct store get: {} MB/s", fmt(&direct));
    println!(
        "  plain loopback HTTP of the same store object (no checks): {} MB/s",
        fmt(&through_plain)
    );
    let (stream_median, direct_median) = (median(&mut through_stream), median(&mut direct));
    let plain_median = median(&mut through_plain);
    println!(
        "  median: stream {stream_median:.0} MB/s, direct {direct_median:.0} MB/s, ratio {:.2}x; \
         plain HTTP {plain_median:.0} MB/s (stream = {:.2}x of it)",
        stream_median / direct_median,
        stream_median / plain_median
    );

    // 2. Concurrent ranges: fresh connections, then kept-alive ones.
    let pid = server.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reset = reset_peak_rss(pid);
    let rss_before = rss_kib(pid, "VmRSS:");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrent * 2)
        .build()?;
    let (cold, cold_elapsed) = ranges(&http, &url, concurrent, &mut rng).await?;
    let mut warm_times = Vec::new();
    let mut warm_elapsed = Duration::ZERO;
    for _ in 0..warm {
        let (times, elapsed) = ranges(&http, &url, concurrent, &mut rng).await?;
        warm_times.extend(times);
        warm_elapsed += elapsed;
    }
    warm_times.sort();
    let peak = rss_kib(pid, "VmHWM:");
    // The same requests one at a time: the cost of a request without queueing.
    let mut alone = Vec::with_capacity(concurrent);
    for _ in 0..concurrent {
        let (times, _) = ranges(&http, &url, 1, &mut rng).await?;
        alone.extend(times);
    }
    alone.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{concurrent} concurrent 64 KiB range requests, time to first byte:");
    println!(
        "  new connections:        p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (all done in {:.0} ms)",
        ms(percentile(&cold, 0.5)),
        ms(percentile(&cold, 0.99)),
        ms(percentile(&cold, 1.0)),
        ms(cold_elapsed)
    );
    if warm > 0 {
        println!(
            "  kept-alive, {warm} rounds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({:.0} ms per round)",
            ms(percentile(&warm_times, 0.5)),
            ms(percentile(&warm_times, 0.99)),
            ms(percentile(&warm_times, 1.0)),
            ms(warm_elapsed) / warm as f64
        );
    }
    println!(
        "  one at a time ({concurrent}):   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&alone, 0.5)),
        ms(percentile(&alone, 0.99)),
        ms(percentile(&alone, 1.0)),
    );
    println!(
        "  server RSS: before {:.1} MiB, peak after {:.1} MiB, growth {:.1} MiB{}",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(rss_before) as f64 / 1024.0,
        if reset {
            ""
        } else {
            " (peak not reset: it includes the throughput run)"
        }
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds = arg("--rounds", 7);
    let concurrent = arg("--concurrent", 200);
    let warm = arg("--warm-rounds", 5);
    let only: Option<String> = std::env::args()
        .position(|a| a == "--store")
        .and_then(|i| std::env::args().nth(i + 1));
    if only.as_deref().is_none_or(|s| s == "folder") {
        bench(Backend::folder()?, rounds, concurrent, warm).await?;
    }
    if only.as_deref().is_none_or(|s| s == "s3") {
        bench(Backend::s3()?, rounds, concurrent, warm).await?;
    }
    Ok(())
}
