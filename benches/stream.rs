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

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jukebox_domain::{Command as DomainCommand, SourceRef, StoredTrack, TrackId};
use jukebox_handlers::storage::{self, ObjectKey, ObjectStore, S3Config, StoreConfig};
use jukebox_nats::{CommandBus, CommandEnvelope, Namespace, OutcomeStatus, Topology};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

mod support;
use support::{admin_url, arg, free_port, nats_url, percentile};

const PASSWORD: &str = "correct horse battery staple";
const TRACK_BYTES: usize = 20_000_000;
const RANGE_BYTES: u64 = 64 * 1024;
const MB: f64 = 1_000_000.0;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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

/// A folder for the object store or s3s-fs, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(label: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "jukebox-bench-stream-{label}-{}",
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `$JUKEBOX_TOOLS_DIR/bin/<name>` (default `~/.local/share/jukebox/tools/bin`) or PATH.
fn tool(name: &str) -> anyhow::Result<PathBuf> {
    jukebox_handlers::media::find_tool(name)
        .ok_or_else(|| anyhow::anyhow!("{name} is not installed (run scripts/install-deps.sh)"))
}

/// An s3s-fs server on a loopback port, stopped on drop.
struct S3sFs {
    child: Child,
    endpoint: String,
    access_key: String,
    secret_key: String,
    _root: ScratchDir,
}

impl S3sFs {
    fn start() -> anyhow::Result<Self> {
        let bin = tool("s3s-fs")?;
        let root = ScratchDir::new("s3")?;
        let access_key = format!("bench-{}", Uuid::new_v4().simple());
        let secret_key = Uuid::new_v4().simple().to_string();
        for _ in 0..5 {
            let port = free_port()?;
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(&root.0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Ok(Self {
                        child,
                        endpoint: format!("http://{addr}"),
                        access_key,
                        secret_key,
                        _root: root,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        anyhow::bail!("s3s-fs ({}) did not start listening", bin.display())
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One object store: how this process opens it, and how the server is told about it.
struct Backend {
    name: &'static str,
    config: StoreConfig,
    env: Vec<(&'static str, String)>,
    _folder: Option<ScratchDir>,
    _s3: Option<S3sFs>,
}

impl Backend {
    fn folder() -> anyhow::Result<Self> {
        let dir = ScratchDir::new("folder")?;
        Ok(Self {
            name: "folder",
            config: StoreConfig::Local { dir: dir.0.clone() },
            env: vec![("OBJECT_STORE_DIR", dir.0.display().to_string())],
            _folder: Some(dir),
            _s3: None,
        })
    }

    fn s3() -> anyhow::Result<Self> {
        let s3 = S3sFs::start()?;
        let bucket = "jukebox-bench".to_owned();
        Ok(Self {
            name: "S3 (s3s-fs)",
            config: StoreConfig::S3(S3Config {
                endpoint: s3.endpoint.clone(),
                bucket: bucket.clone(),
                region: "us-east-1".into(),
                access_key: SecretString::from(s3.access_key.clone()),
                secret_key: SecretString::from(s3.secret_key.clone()),
            }),
            env: vec![
                ("S3_ENDPOINT", s3.endpoint.clone()),
                ("S3_ACCESS_KEY", s3.access_key.clone()),
                ("S3_SECRET_KEY", s3.secret_key.clone()),
                ("S3_BUCKET", bucket),
            ],
            _folder: None,
            _s3: Some(s3),
        })
    }
}

/// `jukebox serve api stream processor relay projector` on a scratch database and NATS
/// namespace.
struct Server {
    child: Child,
    api: String,
    database: String,
    namespace: String,
    pool: PgPool,
}

impl Server {
    async fn start(backend: &Backend) -> anyhow::Result<Self> {
        let id = &Uuid::new_v4().simple().to_string()[..10];
        let database = format!("jukebox_bench_stream_{id}");
        let namespace = format!("bstr{id}");
        let mut url = url::Url::parse(&admin_url())?;
        url.set_path(&database);
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
        let pool = jukebox::ops::migrate(&config).await?;
        let (api_port, stream_port) = (free_port()?, free_port()?);
        let mut command = Command::new(env!("CARGO_BIN_EXE_jukebox"));
        command
            .args(["serve", "api", "stream", "processor", "relay", "projector"])
            .env("DATABASE_URL", url.as_str())
            .env("NATS_URL", nats_url())
            .env("NATS_NAMESPACE", &namespace)
            .env("API_PORT", api_port.to_string())
            .env("STREAM_PORT", stream_port.to_string())
            .env(
                "PUBLIC_STREAM_BASE_URL",
                format!("http://127.0.0.1:{stream_port}"),
            )
            .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret-0123")
            .env(
                "STREAM_SIGNING_SECRET",
                "bench-stream-secret-bench-stream-secret-0123",
            )
            .env("RATE_LIMIT_PER_ACCOUNT", "1000000")
            .env("RATE_LIMIT_PER_ADDRESS", "1000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        for (name, value) in &backend.env {
            command.env(name, value);
        }
        let server = Self {
            child: command.spawn()?,
            api: format!("http://127.0.0.1:{api_port}"),
            database,
            namespace,
            pool,
        };
        let http = reqwest::Client::new();
        let stream_addr = SocketAddr::from(([127, 0, 0, 1], stream_port));
        for _ in 0..200 {
            let api_ready = http
                .get(format!("{}/readyz", server.api))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if api_ready && TcpStream::connect(stream_addr).is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.stop().await?;
        anyhow::bail!("the server did not become ready")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.pool.close().await;
        let nats = async_nats::connect(nats_url()).await?;
        let namespace = Namespace::new(&self.namespace).map_err(anyhow::Error::msg)?;
        Topology::new(namespace)
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

fn envelope(command: DomainCommand, user_id: Uuid) -> CommandEnvelope {
    CommandEnvelope {
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        issued_by: Some(user_id),
        issued_at: time::OffsetDateTime::now_utc(),
        command,
    }
}

/// Signs a user up and in over HTTP: `(user_id, access_token)`.
async fn account(http: &reqwest::Client, server: &Server) -> anyhow::Result<(Uuid, String)> {
    let email = format!("bench-{}@example.com", Uuid::new_v4().simple());
    let body = serde_json::json!({ "email": email, "password": PASSWORD });
    let response = http
        .post(format!("{}/auth/signup", server.api))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "sign-up: {}",
        response.status()
    );
    let signed_up: serde_json::Value = response.json().await?;
    let user_id: Uuid = signed_up["user_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no user_id in {signed_up}"))?
        .parse()?;
    // The sign-in reads the accounts read model; give the projector a moment.
    for _ in 0..100 {
        let response = http
            .post(format!("{}/auth/signin", server.api))
            .json(&body)
            .send()
            .await?;
        if response.status().is_success() {
            let tokens: serde_json::Value = response.json().await?;
            let token = tokens["access_token"].as_str().unwrap_or_default();
            return Ok((user_id, token.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("could not sign in")
}

/// Puts the track into the user's library the way the downloader does, over the bus.
async fn import(
    server: &Server,
    user_id: Uuid,
    track_id: &TrackId,
    key: &ObjectKey,
) -> anyhow::Result<()> {
    let nats = async_nats::connect(nats_url()).await?;
    let namespace = Namespace::new(&server.namespace).map_err(anyhow::Error::msg)?;
    let bus = CommandBus::start(nats, namespace).await?;
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
    for command in commands {
        let outcome = bus
            .send(&envelope(command, user_id), Duration::from_secs(30))
            .await?
            .ok_or_else(|| anyhow::anyhow!("command not answered"))?;
        anyhow::ensure!(outcome.status == OutcomeStatus::Committed, "{outcome:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (found,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM library_entries WHERE user_id = $1 AND track_id = $2)
                AND EXISTS (SELECT 1 FROM tracks WHERE track_id = $2)",
        )
        .bind(user_id)
        .bind(track_id.as_str())
        .fetch_one(&server.pool)
        .await?;
        if found {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not in the library after 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

    let server = Server::start(&backend).await?;
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
    let (user_id, token) = account(&http, server).await?;
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
    let rss_before = kib(pid, "VmRSS:");
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
    let peak = kib(pid, "VmHWM:");
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
