//! What the benchmarks share: arguments, figures, a scratch database and NATS namespace,
//! and `Server`, the real `jukebox` binary serving roles as its own process on them.
//! Benchmarks print figures; a failure is an `Err`, not a panic.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jukebox::Config;
use jukebox_domain::Command as DomainCommand;
use jukebox_nats::{CommandBus, CommandEnvelope, Namespace, OutcomeStatus, Topology};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::{admin_database_url, free_port, nats_url};

/// The password of the accounts benchmarks create.
pub const PASSWORD: &str = "correct horse battery staple";
const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";
const STREAM_SECRET: &str = "bench-stream-secret-bench-stream-secret-0123";

/// The value after `name` on the command line (`--commands 20000`), or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0.0..=1.0) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS:`, `VmHWM:`), 0 when unreadable.
pub fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What a closed-loop load run measured.
pub struct Load {
    pub requests: usize,
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests = {:.0} req/s; p50 {:.2?}, p99 {:.2?}",
            self.requests, self.rate, self.p50, self.p99
        )
    }
}

/// `clients` keep-alive clients GET `url` (with `token` as bearer, if any) in a loop for
/// `seconds`; every answer must be a 200 and is read whole.
pub async fn load(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Load> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let http = http.clone();
            let url = url.to_owned();
            let token = token.map(str::to_owned);
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    let mut request = http.get(&url);
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let response = request.send().await?;
                    anyhow::ensure!(response.status().is_success(), "{}", response.status());
                    response.bytes().await?;
                    latencies.push(at.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Load {
        requests: latencies.len(),
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    })
}

/// A trivial axum handler (a small static JSON body) on a loopback port in this process:
/// the machine's ceiling for HTTP on loopback with `load`, to print beside a route.
pub async fn trivial_server() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                r#"{"items":[],"next_cursor":null}"#,
            )
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/"))
}

/// A command as the bus carries it, with fresh command and correlation ids.
pub fn envelope(command: DomainCommand, issued_by: Option<Uuid>) -> CommandEnvelope {
    CommandEnvelope {
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        issued_by,
        issued_at: time::OffsetDateTime::now_utc(),
        command,
    }
}

/// Writes `TrackStored` and `TrackAddedToLibrary` (a `LibraryEntry` each) for `tracks`
/// straight into the log, in one statement per event type: the relay and the projectors
/// build the read models from them as they would from commands, in a fraction of the
/// time. Tracks go first, in their own transaction, so relay order puts them before the
/// entries.
pub async fn write_library(
    pool: &PgPool,
    user_id: Uuid,
    tracks: Vec<jukebox_domain::StoredTrack>,
) -> anyhow::Result<()> {
    use jukebox_domain::{LibraryEntry, LibraryEvent, TrackEvent};
    let mut stores = Vec::with_capacity(tracks.len());
    let mut adds = Vec::with_capacity(tracks.len());
    for track in tracks {
        let track_id = track.track_id.clone();
        let add = LibraryEvent::TrackAddedToLibrary {
            user_id,
            track_id: track_id.clone(),
            job_id: Uuid::now_v7(),
        };
        adds.push((
            LibraryEntry::id(user_id, &track_id),
            serde_json::to_value(add)?,
        ));
        let store = TrackEvent::TrackStored(track);
        stores.push((track_id.as_str().to_owned(), serde_json::to_value(store)?));
    }
    for (aggregate_type, event_type, events) in [
        ("track", "TrackStored", stores),
        ("library_entry", "TrackAddedToLibrary", adds),
    ] {
        let (ids, payloads): (Vec<String>, Vec<serde_json::Value>) = events.into_iter().unzip();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             SELECT $1, e.id, 1, $2, $3, e.payload, '{}'::json
             FROM UNNEST($4::text[], $5::json[]) AS e(id, payload)",
        )
        .bind(aggregate_type)
        .bind(event_type)
        .bind(jukebox_domain::EVENT_VERSION)
        .bind(ids)
        .bind(payloads)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Sends one command for `user_id` and insists on `committed`.
pub async fn send(bus: &CommandBus, command: DomainCommand, user_id: Uuid) -> anyhow::Result<()> {
    send_outcome(bus, command, user_id).await.map(drop)
}

/// [`send`], answering the outcome (its `position` for reads after it).
pub async fn send_outcome(
    bus: &CommandBus,
    command: DomainCommand,
    user_id: Uuid,
) -> anyhow::Result<jukebox_nats::CommandOutcome> {
    let outcome = bus
        .send(&envelope(command, Some(user_id)), Duration::from_secs(60))
        .await?
        .ok_or_else(|| anyhow::anyhow!("command not answered"))?;
    anyhow::ensure!(outcome.status == OutcomeStatus::Committed, "{outcome:?}");
    Ok(outcome)
}

/// A free port not in `used`, added to it.
fn unused_port(used: &mut Vec<u16>) -> u16 {
    loop {
        let port = free_port();
        if !used.contains(&port) {
            used.push(port);
            return port;
        }
    }
}

/// A migrated database and a NATS namespace of their own, for one benchmark run.
pub struct Scratch {
    pub database: String,
    pub url: String,
    pub namespace: String,
}

impl Scratch {
    /// `jukebox_bench_<label>_<id>` and namespace `b<label><id>`, migrated.
    pub async fn create(label: &str) -> anyhow::Result<(Self, PgPool)> {
        let id = &Uuid::new_v4().simple().to_string()[..10];
        let database = format!("jukebox_bench_{label}_{id}");
        let mut url = url::Url::parse(&admin_database_url())?;
        url.set_path(&database);
        let scratch = Self {
            database,
            url: url.to_string(),
            namespace: format!("b{label}{id}"),
        };
        let pool = jukebox::ops::migrate(&scratch.config()?).await?;
        Ok((scratch, pool))
    }

    /// The settings that point a `jukebox` process here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.url.clone()),
            ("NATS_URL", nats_url()),
            ("NATS_NAMESPACE", self.namespace.clone()),
        ]
    }

    pub fn config(&self) -> anyhow::Result<Config> {
        let vars = self.env();
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
    }

    pub fn topology(&self) -> anyhow::Result<Topology> {
        Ok(Topology::new(
            Namespace::new(&self.namespace).map_err(anyhow::Error::msg)?,
        ))
    }

    /// Deletes the namespace's streams and drops the database.
    pub async fn remove(self) -> anyhow::Result<()> {
        let nats = async_nats::connect(nats_url()).await?;
        self.topology()?
            .delete_streams(&async_nats::jetstream::new(nats))
            .await;
        let mut admin = PgConnection::connect(&admin_database_url()).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.database
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}

/// `jukebox serve <roles>` as its own process (or several, `spawn`) on a scratch database
/// and namespace, with an object-store folder of its own, free ports, limits out of the
/// way and `RUST_LOG=warn`.
pub struct Server {
    children: Vec<Child>,
    bin: PathBuf,
    env: Vec<(&'static str, String)>,
    /// Ports handed out so far: a port is free when picked, and the next pick could
    /// return it again before the server binds it.
    ports: Vec<u16>,
    /// Each process' health port (`/metrics`), in the order they were started.
    health: Vec<u16>,
    /// `http://127.0.0.1:<API_PORT>`.
    pub api: String,
    /// `http://127.0.0.1:<STREAM_PORT>`, when the stream role runs.
    pub stream: Option<String>,
    pub pool: PgPool,
    pub scratch: Scratch,
    _store: tempfile::TempDir,
}

impl Server {
    /// Starts `bin` (`env!("CARGO_BIN_EXE_jukebox")`) serving `roles` with `extra` settings
    /// on top of the defaults, and waits until the API (and the stream port) answers.
    pub async fn start(
        bin: &str,
        label: &str,
        roles: &[&str],
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Self> {
        let (scratch, pool) = Scratch::create(label).await?;
        let store = tempfile::tempdir()?;
        let mut ports = Vec::new();
        let api_port = unused_port(&mut ports);
        let stream_port = roles.contains(&"stream").then(|| unused_port(&mut ports));
        let mut env = scratch.env();
        env.extend([
            ("API_PORT", api_port.to_string()),
            ("OBJECT_STORE_DIR", store.path().display().to_string()),
            ("JWT_SECRET", JWT_SECRET.into()),
            ("RATE_LIMIT_PER_ACCOUNT", "1000000".into()),
            ("RATE_LIMIT_PER_ADDRESS", "1000000".into()),
            ("RUST_LOG", "warn".into()),
        ]);
        if let Some(port) = stream_port {
            env.extend([
                ("STREAM_PORT", port.to_string()),
                ("PUBLIC_STREAM_BASE_URL", format!("http://127.0.0.1:{port}")),
                ("STREAM_SIGNING_SECRET", STREAM_SECRET.into()),
            ]);
        }
        env.extend(extra.iter().cloned());
        let mut server = Self {
            children: Vec::new(),
            bin: bin.into(),
            env,
            ports,
            health: Vec::new(),
            api: format!("http://127.0.0.1:{api_port}"),
            stream: stream_port.map(|port| format!("http://127.0.0.1:{port}")),
            pool,
            scratch,
            _store: store,
        };
        if let Err(e) = server.spawn(roles) {
            server.stop().await?;
            return Err(e);
        }
        if roles.iter().any(|r| matches!(*r, "api" | "all")) && !server.ready().await {
            server.stop().await?;
            anyhow::bail!("the server did not become ready");
        }
        Ok(server)
    }

    /// One more process serving `roles` with the same settings.
    pub fn spawn(&mut self, roles: &[&str]) -> anyhow::Result<()> {
        let mut command = Command::new(&self.bin);
        // Each process its own health port, unless the caller chose one.
        let health = unused_port(&mut self.ports);
        self.health.push(health);
        command.env("HEALTH_PORT", health.to_string());
        let child = command
            .arg("serve")
            .args(roles)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .spawn()?;
        self.children.push(child);
        Ok(())
    }

    /// `/readyz` answers 200 on the API and the stream port takes connections, within 20 s.
    async fn ready(&self) -> bool {
        let http = reqwest::Client::new();
        let stream = self
            .stream
            .as_ref()
            .map(|s| s.trim_start_matches("http://").to_owned());
        for _ in 0..200 {
            let api = http
                .get(format!("{}/readyz", self.api))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            let stream = stream
                .as_ref()
                .is_none_or(|addr| std::net::TcpStream::connect(addr).is_ok());
            if api && stream {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// The Prometheus text of the `index`th process started (its health port's
    /// `/metrics`).
    pub async fn metrics(&self, index: usize) -> anyhow::Result<String> {
        let port = self
            .health
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("no process {index}"))?;
        Ok(reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// The first process' id.
    pub fn pid(&self) -> u32 {
        self.children.first().map_or(0, Child::id)
    }

    /// Every process' id, in the order they were started.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// A command bus on the server's namespace.
    pub async fn bus(&self) -> anyhow::Result<CommandBus> {
        let nats = async_nats::connect(nats_url()).await?;
        Ok(CommandBus::start(nats, self.scratch.topology()?.namespace).await?)
    }

    /// Signs a fresh user up and in over HTTP: `(user_id, access_token)`.
    pub async fn account(&self, http: &reqwest::Client) -> anyhow::Result<(Uuid, String)> {
        let email = format!("bench-{}@example.com", Uuid::new_v4().simple());
        let body = serde_json::json!({ "email": email, "password": PASSWORD });
        let response = http
            .post(self.url("/auth/signup"))
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
                .post(self.url("/auth/signin"))
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

    /// Kills the processes, then removes the scratch database and streams.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.pool.close().await;
        self.scratch.remove().await
    }
}
