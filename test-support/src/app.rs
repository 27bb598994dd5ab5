//! `spawn_app`: a fresh database and NATS namespace, roles running in-process on port 0.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use jukebox::app::{self, Role, RoleOptions, Running, Services};
use jukebox::Config;
use jukebox_nats::{EventRecord, FailPoints};
use jukebox_projections::{Freshness, Position, ReadModel};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::eventually;

/// The header a command's answer carries its position in, and a read passes it back in.
pub const POSITION: &str = "jukebox-position";

/// How long a test waits for a read model to apply its own write.
const APPLIED_WAIT: Duration = Duration::from_secs(30);

pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into())
}

pub fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The browser origin tests send on cookie-authenticated requests.
pub const ORIGIN: &str = "http://jukebox.test";

pub struct TestApp {
    pub config: Config,
    pub services: Services,
    pub running: Option<Running>,
    pub database: String,
    pub http: reqwest::Client,
    /// The default object store folder (OBJECT_STORE_DIR), removed with the app.
    pub objects: tempfile::TempDir,
    /// The latest position this test's writes were answered with, as the web app keeps
    /// it: reads after them pass it back instead of waiting for the projections.
    latest: Mutex<Option<Position>>,
    /// `cleanup` ran: dropping the app has nothing left to remove.
    cleaned: bool,
}

impl TestApp {
    pub fn pool(&self) -> &PgPool {
        &self.services.pool
    }

    pub fn api(&self, path: &str) -> String {
        let addr = self
            .running
            .as_ref()
            .and_then(|r| r.api_addr)
            .expect("api role running");
        format!("http://{addr}{path}")
    }

    /// A URL on the web app (:3000 role), which serves the API under `/api`.
    pub fn web(&self, path: &str) -> String {
        let addr = self
            .running
            .as_ref()
            .and_then(|r| r.web_addr)
            .expect("web role running");
        format!("http://{addr}{path}")
    }

    /// A URL on the process' health port (`/healthz`, `/readyz`, `/metrics`).
    pub fn health(&self, path: &str) -> String {
        let addr = self.running.as_ref().expect("roles running").health_addr;
        format!("http://{addr}{path}")
    }

    pub fn js(&self) -> jetstream::Context {
        jetstream::new(self.services.nats.clone())
    }

    /// A command bus on this app's namespace, as the edge sends commands.
    pub async fn bus(&self) -> jukebox_nats::CommandBus {
        jukebox_nats::CommandBus::start(
            self.services.nats.clone(),
            self.services.topology.namespace.clone(),
        )
        .await
        .unwrap()
    }

    /// Starts (more) roles in this app; each call is its own set, stopped separately.
    pub async fn start(&self, roles: &[Role], fail_points: FailPoints) -> Running {
        let mut options = RoleOptions::from_config(&self.config, roles).unwrap();
        let any = "127.0.0.1:0".parse().unwrap();
        options.api = any;
        options.web = any;
        options.stream = any;
        options.health = any;
        options.fail_points = fail_points;
        options.ack_wait = Duration::from_secs(2);
        app::start(&self.services, options)
            .await
            .expect("roles start")
    }

    /// Stops the roles, deletes the NATS streams and drops the database.
    pub async fn cleanup(mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop().await;
        }
        self.services.topology.delete_streams(&self.js()).await;
        self.services.pool.close().await;
        let mut admin = PgConnection::connect(&admin_database_url()).await.unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.database
        ))
        .execute(&mut admin)
        .await
        .unwrap();
        self.cleaned = true;
    }

    /// Every message in this namespace's `EVENTS` stream, in stream order.
    pub async fn stream_events(&self) -> Vec<EventRecord> {
        let js = self.js();
        let stream = js
            .get_stream(self.services.topology.namespace.events_stream())
            .await
            .unwrap();
        let count = stream.get_info().await.unwrap().state.messages;
        let mut records = Vec::new();
        for sequence in 1..=count {
            if let Ok(message) = stream.get_raw_message(sequence).await {
                records.push(serde_json::from_slice(&message.payload).unwrap());
            }
        }
        records
    }

    /// Events in the Postgres log, in relay order.
    pub async fn log_events(&self) -> Vec<EventRecord> {
        sqlx::query_as(&format!(
            "SELECT {} FROM events ORDER BY events.transaction_id, events.global_position",
            EventRecord::COLUMNS
        ))
        .fetch_all(self.pool())
        .await
        .unwrap()
    }

    /// Signs up (remembering the answer's position when it has one).
    pub async fn sign_up(&self, email: &str) -> reqwest::Response {
        let response = self
            .http
            .post(self.api("/auth/signup"))
            .json(&serde_json::json!({ "email": email, "password": "correct horse battery" }))
            .send()
            .await
            .unwrap();
        self.saw(&response);
        response
    }

    /// Remembers the position in a write's answer, if it carries one; returns it.
    pub fn saw(&self, response: &reqwest::Response) -> Option<String> {
        let position = response.headers().get(POSITION)?.to_str().ok()?.to_owned();
        self.note(&position);
        Some(position)
    }

    /// The position a successful write's answer carries (remembered); panics without one.
    pub fn position_of(&self, response: &reqwest::Response) -> String {
        self.saw(response)
            .unwrap_or_else(|| panic!("{} answered without a position", response.url()))
    }

    /// Remembers a position (a command outcome's, a job's); the latest one is kept.
    pub fn note(&self, position: &str) {
        let position: Position = position
            .parse()
            .unwrap_or_else(|e| panic!("{position:?}: {e}"));
        let mut latest = self.latest.lock().unwrap();
        *latest = Some(latest.map_or(position, |l| l.max(position)));
    }

    /// The latest position this test's writes were answered with.
    pub fn latest(&self) -> String {
        self.try_latest()
            .expect("no write of this test answered with a position yet")
    }

    /// The latest position, if a write of this test had one yet.
    pub fn try_latest(&self) -> Option<String> {
        self.latest.lock().unwrap().map(|p| p.to_string())
    }

    /// Returns once `models` have applied `position`, by the edge's own wait (what a read
    /// with `?after=` does): for tests that read a read model's table directly.
    pub async fn applied(&self, position: &str, models: &[ReadModel]) {
        let after: Position = position
            .parse()
            .unwrap_or_else(|e| panic!("{position:?}: {e}"));
        let stop = CancellationToken::new();
        let freshness = Freshness::start(self.pool().clone(), APPLIED_WAIT, stop.clone());
        let waited = freshness.wait_for(after, models).await;
        stop.cancel();
        if let Err(error) = waited {
            panic!("the read models did not apply {position} in {APPLIED_WAIT:?}: {error}");
        }
    }

    /// [`applied`](Self::applied) with the latest position this test's writes had.
    pub async fn applied_latest(&self, models: &[ReadModel]) {
        self.applied(&self.latest(), models).await;
    }

    /// Waits until every projection has applied the whole log. Only for a check over the
    /// whole log after events no answer gave the test a position for (a downloader's
    /// outcome, say); after the test's own writes, pass their position instead.
    pub async fn projections_caught_up(&self) {
        eventually("projections caught up", || async {
            jukebox_projections::status::lags(self.pool())
                .await
                .unwrap()
                .iter()
                .all(|lag| lag.behind == 0)
        })
        .await;
    }

    /// Returns once the relay has published everything up to `position` to `EVENTS` (its
    /// checkpoint is there). The relay notifies no one, so this polls its checkpoint.
    pub async fn relayed(&self, position: &str) {
        let after: Position = position
            .parse()
            .unwrap_or_else(|e| panic!("{position:?}: {e}"));
        eventually(&format!("the relay publishes up to {position}"), || async {
            let (xid, global_position): (String, i64) = sqlx::query_as(
                "SELECT transaction_id::text, global_position FROM relay_checkpoint",
            )
            .fetch_one(self.pool())
            .await
            .unwrap();
            let at = Position {
                transaction_id: xid.parse().unwrap(),
                global_position,
            };
            at >= after
        })
        .await;
    }
}

/// A test that ends without `cleanup` (it forgot, or it failed) still leaves no database
/// or streams behind on the shared Postgres and NATS: they are removed here, from a
/// thread of its own, since a test's runtime cannot be blocked on from inside it.
impl Drop for TestApp {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let database = self.database.clone();
        let topology = self.services.topology.clone();
        let removed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                if let Ok(nats) = async_nats::connect(nats_url()).await {
                    topology.delete_streams(&jetstream::new(nats)).await;
                }
                let mut admin = PgConnection::connect(&admin_database_url())
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(())
            })
        })
        .join();
        if !matches!(removed, Ok(Ok(()))) {
            eprintln!(
                "test app dropped without cleanup: {} not removed: {removed:?}",
                self.database
            );
        }
    }
}

/// A fresh app with `roles` running.
pub async fn spawn_app(roles: &[Role]) -> TestApp {
    spawn_app_with(roles, &[]).await
}

/// The JWT secret every test app signs with.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

/// A fresh app with `roles` running and extra configuration (`NAME`, value).
pub async fn spawn_app_with(roles: &[Role], extra: &[(&str, String)]) -> TestApp {
    let database = format!("jukebox_test_{}", Uuid::new_v4().simple());
    let base = admin_database_url();
    let mut database_url = url::Url::parse(&base).expect("TEST_DATABASE_ADMIN_URL is a URL");
    database_url.set_path(&database);
    let database_url = database_url.to_string();
    let namespace = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
    let objects = tempfile::tempdir().expect("a temp folder for the object store");
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url),
        ("NATS_URL", nats_url()),
        ("NATS_NAMESPACE", namespace),
        ("COMMAND_WAIT_MS", "10000".into()),
        // Roles that open the object store (api, web, stream, downloader) get a private
        // folder, not the repository's .dev-data.
        ("OBJECT_STORE_DIR", objects.path().display().to_string()),
        ("JWT_SECRET", JWT_SECRET.into()),
        ("COOKIE_SECURE", "0".into()),
        ("ALLOWED_ORIGINS", ORIGIN.into()),
        // Every test client is 127.0.0.1: limits are set by the tests that test them.
        ("RATE_LIMIT_PER_ACCOUNT", "1000".into()),
        ("RATE_LIMIT_PER_ADDRESS", "1000".into()),
        // Postgres allows 100 connections to every test binary running at once.
        ("DATABASE_MAX_CONNECTIONS", "12".into()),
    ]);
    vars.extend(extra.iter().cloned());
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
    jukebox::ops::migrate(&config).await.expect("migrations");
    let services = Services::connect(&config).await.expect("services");
    let mut app = TestApp {
        config,
        services,
        running: None,
        database,
        http: reqwest::Client::new(),
        objects,
        latest: Mutex::new(None),
        cleaned: false,
    };
    if !roles.is_empty() {
        app.running = Some(app.start(roles, FailPoints::default()).await);
    }
    app
}

/// Reads the messages a subject filter currently holds (used to grep the streams).
pub async fn raw_stream_payloads(app: &TestApp, stream: &str) -> Vec<String> {
    let js = app.js();
    let stream = js.get_stream(stream).await.unwrap();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let pending = consumer.cached_info().num_pending as usize;
    if pending == 0 {
        return Vec::new();
    }
    let mut messages = consumer.messages().await.unwrap().take(pending);
    let mut payloads = Vec::new();
    while let Some(Ok(message)) = messages.next().await {
        payloads.push(String::from_utf8_lossy(&message.payload).into_owned());
    }
    payloads
}
