//! The fault suite (issue 9, SECURITY.md items 22-24): every role as its own process of
//! the real binary against the run's own nats-server(s) and PostgreSQL, under a bounded
//! load, while roles are killed at chosen fail points and from outside, and NATS and
//! Postgres are stopped and restarted. Afterwards it checks from the outside that every
//! accepted command had its effect exactly once, nothing is stuck, every read model equals
//! a rebuild from the log, and `EVENTS` holds the log exactly once; it prints a summary.
//!
//! Short by default (a few users, one fault of each kind); `JUKEBOX_LONG=1` runs the long
//! mode (more users, repeated faults, minutes of load). See docs/reliability.md.

mod checks;
mod infra;
mod load;
mod system;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use checks::Findings;
use load::{Client, Ledger};
use system::{RoleName, System, PASSWORD};

/// The two runs share two cores: one at a time.
static ONE_RUN_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A request made while a dependency is down must answer within this.
const FAIL_FAST: Duration = Duration::from_secs(5);

struct Mode {
    long: bool,
    users: usize,
    /// Imports per virtual user, at most.
    imports_each: usize,
    /// Rounds of the whole fault schedule.
    rounds: usize,
    /// Outside SIGKILLs of random roles per round.
    random_kills: usize,
    /// How long each infrastructure outage lasts.
    outage: Duration,
}

fn mode() -> Mode {
    if std::env::var("JUKEBOX_LONG").is_ok_and(|v| v == "1") {
        Mode {
            long: true,
            users: 24,
            // Each import, even of a stored source, runs `yt-dlp -J` (about a second
            // here) in one of two download slots: more would only queue.
            imports_each: 5,
            rounds: 3,
            random_kills: 4,
            outage: Duration::from_secs(8),
        }
    } else {
        Mode {
            long: false,
            users: 4,
            imports_each: 8,
            rounds: 1,
            random_kills: 1,
            outage: Duration::from_secs(3),
        }
    }
}

struct FaultRecord {
    what: String,
    /// From the fault to the first end-to-end success after it.
    recovered_after: Duration,
}

/// Drives the faults and measures recovery; its own requests go into the same ledger.
struct Driver {
    client: Client,
    token: String,
    email: String,
    probes: usize,
    fresh_sources: usize,
    faults: Vec<FaultRecord>,
    run_id: String,
    rng: u64,
}

impl Driver {
    fn random(&mut self, n: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % n as u64) as usize
    }

    /// End to end: a new sign-up is accepted and reaches the accounts read model (api,
    /// processor, relay and projector all work). Bounded.
    async fn probe(&mut self, system: &mut System) {
        self.probes += 1;
        let email = format!("probe{}-{}@faults.test", self.probes, self.run_id);
        assert!(
            self.client.sign_up(&email).await,
            "a sign-up is accepted again after the fault"
        );
        let pool = system.pool().await;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let rows: Result<i64, _> =
                sqlx::query_scalar("SELECT count(*) FROM accounts WHERE email = $1")
                    .bind(&email)
                    .fetch_one(&pool)
                    .await;
            if matches!(rows, Ok(1)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{email} never reached the accounts read model"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn record(&mut self, what: String, since: Instant) {
        let recovered_after = since.elapsed();
        eprintln!("fault: {what}: recovered after {recovered_after:.1?}");
        self.faults.push(FaultRecord {
            what,
            recovered_after,
        });
    }

    /// Kills a role from outside, restarts it armed with a fail point, lets the load (and
    /// a nudge) reach the point, restarts it clean, and measures recovery.
    async fn fail_point(&mut self, system: &mut System, role: RoleName, point: &str, nudge: bool) {
        system.kill_role(role);
        system.start_role(role, Some(point));
        if nudge {
            // Commands of our own so the point is reached even if the load is idle.
            for _ in 0..3 {
                self.probes += 1;
                let email = format!("nudge{}-{}@faults.test", self.probes, self.run_id);
                self.client.sign_up(&email).await;
                if system.role_exit(role).is_some() {
                    break;
                }
            }
        }
        let status = system.wait_role_death(role, Duration::from_secs(90)).await;
        let since = Instant::now();
        system.start_role(role, None);
        self.probe(system).await;
        self.record(
            format!("{} killed at fail point {point} ({status})", role.as_str()),
            since,
        );
    }

    /// The downloader dies mid-transcode of a source nobody imported before; the job
    /// completes after the restart.
    async fn downloader_mid_transcode(&mut self, system: &mut System) {
        self.fresh_sources += 1;
        let url = system.tone(
            &format!("fresh-{}-{}.mp3", self.run_id, self.fresh_sources),
            12,
        );
        system.kill_role(RoleName::Downloader);
        system.start_role(RoleName::Downloader, Some("downloader.transcoding=abort@1"));
        let job = self
            .client
            .import(&self.token, &self.email, &url)
            .await
            .expect("the import is accepted");
        let status = system
            .wait_role_death(RoleName::Downloader, Duration::from_secs(90))
            .await;
        let since = Instant::now();
        system.start_role(RoleName::Downloader, None);
        let pool = system.pool().await;
        // Bounded, but behind every import the load queued first.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let ended: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE aggregate_type = 'import' AND aggregate_id = $1
                 AND event_type IN ('ImportCompleted', 'ImportFailed')",
            )
            .bind(job.to_string())
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
            if ended > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the job cut off mid-transcode never ended"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.record(
            format!("downloader killed at fail point downloader.transcoding=abort@1 ({status})"),
            since,
        );
    }

    /// SIGKILL of a random role at a random moment, restarted after a random pause.
    async fn random_kill(&mut self, system: &mut System) {
        let role = RoleName::ALL[self.random(RoleName::ALL.len())];
        tokio::time::sleep(Duration::from_millis(300 + self.random(2_000) as u64)).await;
        system.kill_role(role);
        let since = Instant::now();
        tokio::time::sleep(Duration::from_millis(self.random(1_500) as u64)).await;
        system.start_role(role, None);
        if role == RoleName::Api {
            system.wait_api_up(Duration::from_secs(60)).await;
        }
        self.probe(system).await;
        self.record(format!("{} SIGKILLed from outside", role.as_str()), since);
    }

    /// A request while a dependency is down: 503 with a message, within `FAIL_FAST`.
    async fn fails_fast(&self, what: &str, request: reqwest::RequestBuilder) {
        let started = Instant::now();
        let response = request.send().await.expect("the api answers");
        let elapsed = started.elapsed();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what} while a dependency is down: {body}"
        );
        assert!(
            elapsed < FAIL_FAST,
            "{what} took {elapsed:?} to fail (bound {FAIL_FAST:?})"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: a message for people: {body}");
        eprintln!("  {what}: 503 in {elapsed:.2?}: {message}");
    }

    fn sign_in_request(&self) -> reqwest::RequestBuilder {
        self.client
            .http
            .post(format!("{}/auth/signin", self.client.api))
            .json(&json!({ "email": self.email, "password": PASSWORD }))
    }

    fn library_request(&self) -> reqwest::RequestBuilder {
        self.client
            .http
            .get(format!("{}/library", self.client.api))
            .bearer_auth(&self.token)
    }

    fn import_request(&self, url: &str) -> reqwest::RequestBuilder {
        self.client
            .http
            .post(format!("{}/songs/import", self.client.api))
            .bearer_auth(&self.token)
            .json(&json!({ "url": url }))
    }

    fn sign_up_request(&self) -> reqwest::RequestBuilder {
        self.client
            .http
            .post(format!("{}/auth/signup", self.client.api))
            .json(
                &json!({ "email": format!("refused-{}@faults.test", uuid::Uuid::new_v4()),
                           "password": PASSWORD }),
            )
    }

    /// Postgres stopped under load: requests that need it fail fast with 503, no role
    /// dies, and everything works again once it is back, without a restart.
    async fn postgres_outage(
        &mut self,
        system: &mut System,
        mode: &str,
        outage: Duration,
        url: &str,
    ) {
        system.postgres.stop(mode);
        let since = Instant::now();
        eprintln!("postgres stopped ({mode})");
        self.fails_fast("sign-in", self.sign_in_request()).await;
        self.fails_fast("GET /library", self.library_request())
            .await;
        self.fails_fast("POST /songs/import", self.import_request(url))
            .await;
        tokio::time::sleep(outage.saturating_sub(since.elapsed())).await;
        system.postgres.start();
        self.probe(system).await;
        let dead = system.dead_roles();
        assert!(
            dead.is_empty(),
            "roles died during the Postgres outage: {dead:?}"
        );
        self.record(format!("postgres stopped ({mode}) for {outage:?}"), since);
    }

    /// NATS stopped under load: commands fail fast with 503, reads keep working, no role
    /// dies, and commands work again once it is back.
    async fn nats_outage(&mut self, system: &mut System, outage: Duration, url: &str) {
        system.nats[0].stop();
        let since = Instant::now();
        eprintln!("nats stopped");
        self.fails_fast("sign-up", self.sign_up_request()).await;
        self.fails_fast("POST /songs/import", self.import_request(url))
            .await;
        let library = self.library_request().send().await.unwrap();
        assert_eq!(library.status(), StatusCode::OK, "reads need only Postgres");
        tokio::time::sleep(outage.saturating_sub(since.elapsed())).await;
        system.nats[0].start();
        self.probe(system).await;
        let dead = system.dead_roles();
        assert!(
            dead.is_empty(),
            "roles died during the NATS outage: {dead:?}"
        );
        self.record(format!("nats stopped for {outage:?}"), since);
    }

    /// One node of the three stopped under load: the cluster keeps a quorum, so commands
    /// keep working (the probe runs while it is down); then it comes back.
    async fn cluster_node_outage(&mut self, system: &mut System, node: usize, outage: Duration) {
        system.nats[node].stop();
        let since = Instant::now();
        eprintln!("{} stopped", system.nats[node].name);
        self.probe(system).await;
        let name = system.nats[node].name.clone();
        self.record(format!("{name} stopped (served by the other two)"), since);
        tokio::time::sleep(outage.saturating_sub(since.elapsed())).await;
        system.nats[node].start();
        // Let it catch up with the stream before the next node goes.
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.probe(system).await;
        let dead = system.dead_roles();
        assert!(
            dead.is_empty(),
            "roles died while {name} was down: {dead:?}"
        );
    }
}

struct Run {
    system: System,
    driver: Driver,
    ledger: Ledger,
    stop: Arc<AtomicBool>,
    users: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
    sources: Arc<Vec<String>>,
}

async fn start_run(cluster: bool, users: usize, imports_each: usize) -> Run {
    let started = Instant::now();
    let mut system = System::start(cluster).await;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    // A few short sources that many users share.
    let sources: Arc<Vec<String>> = Arc::new(
        (0..3)
            .map(|i| system.tone(&format!("shared-{i}.mp3"), 3 + i))
            .collect(),
    );
    let ledger = Ledger::default();
    let client = Client {
        http: system.http.clone(),
        api: system.api(""),
        ledger: ledger.clone(),
    };
    let email = format!("driver-{run_id}@faults.test");
    assert!(client.sign_up(&email).await, "the driver signs up");
    let token = client.sign_in(&email).await.expect("the driver signs in");
    let stop = Arc::new(AtomicBool::new(false));
    let handles = load::start(
        client.clone(),
        users,
        imports_each,
        sources.clone(),
        stop.clone(),
        &run_id,
    );
    let mut driver = Driver {
        client,
        token,
        email,
        probes: 0,
        fresh_sources: 0,
        faults: Vec::new(),
        rng: started.elapsed().as_nanos() as u64 | 1,
        run_id,
    };
    // The load gets going before the first fault.
    tokio::time::sleep(Duration::from_secs(3)).await;
    driver.probe(&mut system).await;
    Run {
        system,
        driver,
        ledger,
        stop,
        users: handles,
        started,
        sources,
    }
}

/// Stops the load, lets everything settle, runs the checks, prints the summary and
/// fails on any finding.
async fn finish(mut run: Run, title: &str) {
    run.stop.store(true, Ordering::Relaxed);
    for handle in run.users.drain(..) {
        tokio::time::timeout(Duration::from_secs(120), handle)
            .await
            .expect("a virtual user stops within its retry bound")
            .expect("a virtual user does not panic");
    }
    let dead = run.system.dead_roles();
    assert!(dead.is_empty(), "roles died on their own: {dead:?}");
    let mut findings = Findings::default();
    let settle = Instant::now();
    checks::quiesce(&mut run.system, Duration::from_secs(300), &mut findings).await;
    let settled_in = settle.elapsed();
    checks::accepted_effects(&mut run.system, &run.ledger, &mut findings).await;
    let events = checks::events_stream_equals_log(&mut run.system, &mut findings).await;
    let rows = checks::read_models_equal_rebuild(&mut run.system, &mut findings).await;
    let refed = refeed_events(&mut run.system, &mut findings).await;

    let (signups, imports, streamed, statuses, server_errors) = run.ledger.with(|l| {
        (
            l.signups.len(),
            l.imports.len(),
            l.streamed,
            l.statuses.clone(),
            l.server_errors.clone(),
        )
    });
    let distinct_sources: std::collections::HashSet<String> = run
        .ledger
        .with(|l| l.imports.iter().map(|i| i.source.clone()).collect());
    eprintln!("\n===== fault suite summary: {title} =====");
    eprintln!(
        "run time {:.0?}; settled {:.1?} after the load stopped",
        run.started.elapsed(),
        settled_in
    );
    eprintln!(
        "commands accepted: {} ({signups} sign-ups, {imports} imports of {} sources; {} shared loopback sources); streams read: {streamed}",
        signups + imports,
        distinct_sources.len(),
        run.sources.len()
    );
    let (stars, plays, playlists, playlist_commands) = run.ledger.with(|l| {
        (
            l.stars.len(),
            l.plays.len(),
            l.playlists.len(),
            l.playlists.values().map(|p| p.commands).sum::<u64>(),
        )
    });
    eprintln!(
        "stars answered: {stars} (user, track) pairs; plays answered: {plays}; \
         playlists: {playlists}, {playlist_commands} playlist commands answered"
    );
    eprintln!("events in the log: {events}; read-model rows rebuilt and compared: {rows}");
    eprintln!("EVENTS deleted and re-fed from the log in {refed:.1?}");
    eprintln!("answers by request and status (0 = no answer):");
    for ((kind, status), n) in &statuses {
        eprintln!("  {kind:<10} {status:>3}: {n}");
    }
    eprintln!("faults injected: {}", run.driver.faults.len());
    for fault in &run.driver.faults {
        eprintln!(
            "  {:<80} recovered after {:>6.1?}",
            fault.what, fault.recovered_after
        );
    }
    eprintln!(
        "lost: {}, duplicated: {}, stuck: {}, mismatched: {}, 5xx other than 503: {}",
        findings.lost.len(),
        findings.duplicated.len(),
        findings.stuck.len(),
        findings.mismatched.len(),
        server_errors.len()
    );
    for line in findings
        .lost
        .iter()
        .chain(&findings.duplicated)
        .chain(&findings.stuck)
        .chain(&findings.mismatched)
        .chain(&server_errors)
    {
        eprintln!("  - {line}");
    }
    for line in &findings.out_of_order {
        eprintln!("  - out of relay order: {line}");
    }
    assert!(
        findings.is_clean() && findings.out_of_order.is_empty() && server_errors.is_empty(),
        "the fault suite found problems (listed above)"
    );
    assert!(imports > 0 && signups > 0, "the load did run");
}

/// SECURITY.md item 24: `EVENTS` is deleted and re-fed from the log by the relay (its
/// checkpoint reset, as docs/operations.md tells an operator after a restore). The
/// stream must equal the log again; the projectors and the downloader, on fresh
/// consumers, must change nothing: no new event, the same read models.
async fn refeed_events(system: &mut System, findings: &mut Findings) -> Duration {
    let started = Instant::now();
    let pool = system.pool().await;
    let log_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut live = Vec::new();
    for name in jukebox_projections::ALL {
        live.push(checks::table(&pool, name).await);
    }
    for role in [RoleName::Relay, RoleName::Projector, RoleName::Downloader] {
        system.kill_role(role);
    }
    let js = async_nats::jetstream::new(system.nats_client().await);
    js.delete_stream("EVENTS").await.expect("EVENTS deleted");
    sqlx::query("UPDATE relay_checkpoint SET transaction_id = '0', global_position = 0")
        .execute(&pool)
        .await
        .unwrap();
    // `jukebox migrate` makes the streams (ADR 07).
    system.jukebox(&["migrate"], Duration::from_secs(60));
    for role in [RoleName::Relay, RoleName::Projector, RoleName::Downloader] {
        system.start_role(role, None);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let messages = match js.get_stream("EVENTS").await {
            Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        };
        if messages as i64 >= log_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "EVENTS re-fed {messages} of {log_before} events"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    checks::quiesce(system, Duration::from_secs(300), findings).await;
    checks::events_stream_equals_log(system, findings).await;
    let log_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    if log_after != log_before {
        findings.duplicated.push(format!(
            "re-feeding EVENTS added {} events to the log",
            log_after - log_before
        ));
    }
    for (name, before) in jukebox_projections::ALL.iter().zip(live) {
        if checks::table(&pool, name).await != before {
            findings
                .mismatched
                .push(format!("read model {name} changed when EVENTS was re-fed"));
        }
    }
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_when_roles_die_and_dependencies_restart() {
    let _one = ONE_RUN_AT_A_TIME.lock().await;
    let mode = mode();
    let mut run = start_run(false, mode.users, mode.imports_each).await;
    let url = run.sources[0].clone();
    for round in 0..mode.rounds {
        eprintln!("--- round {} ---", round + 1);
        let (system, driver) = (&mut run.system, &mut run.driver);
        // The N-th hit, so it lands in the middle of the load rather than at start.
        let nth = 2 + round;
        driver
            .fail_point(
                system,
                RoleName::Processor,
                &format!("processor.after_commit=abort@{nth}"),
                true,
            )
            .await;
        driver
            .fail_point(
                system,
                RoleName::Relay,
                &format!("relay.mid_batch=abort@{nth}"),
                true,
            )
            .await;
        driver
            .fail_point(
                system,
                RoleName::Projector,
                &format!("projector.mid_batch=abort@{}", 3 * nth),
                true,
            )
            .await;
        driver.downloader_mid_transcode(system).await;
        for _ in 0..mode.random_kills {
            driver.random_kill(system).await;
        }
        driver.nats_outage(system, mode.outage, &url).await;
        let pg_mode = if round % 2 == 0 { "fast" } else { "immediate" };
        driver
            .postgres_outage(system, pg_mode, mode.outage, &url)
            .await;
    }
    if mode.long {
        // Minutes of load with everything up, on top of the faults.
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    finish(
        run,
        if mode.long {
            "long, one NATS node"
        } else {
            "short, one NATS node"
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_when_nats_cluster_nodes_stop_in_turn() {
    let _one = ONE_RUN_AT_A_TIME.lock().await;
    let mode = mode();
    let mut run = start_run(true, mode.users.min(8), mode.imports_each).await;
    let js = async_nats::jetstream::new(run.system.nats_client().await);
    for name in ["COMMANDS", "EVENTS"] {
        let mut stream = js.get_stream(name).await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(
            info.config.num_replicas, 3,
            "{name} is replicated on all three nodes"
        );
    }
    for round in 0..mode.rounds {
        let (system, driver) = (&mut run.system, &mut run.driver);
        driver
            .cluster_node_outage(system, round % 3, mode.outage)
            .await;
        driver
            .cluster_node_outage(system, (round + 1) % 3, mode.outage)
            .await;
    }
    finish(
        run,
        if mode.long {
            "long, three-node NATS cluster"
        } else {
            "short, three-node NATS cluster"
        },
    )
    .await;
}
