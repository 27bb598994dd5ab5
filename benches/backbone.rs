//! Backbone benchmarks (issue: event backbone). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench backbone` (release build), against
//! the Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL.
//!
//! 1. command throughput: 16 clients send cheap commands (`RecordSignIn`) over the command
//!    bus to `jukebox serve processor relay projector` running as its own process; timed
//!    until committed, until on EVENTS, and until projected; beside pgbench's raw
//!    single-row INSERT + COMMIT rate with 16 clients on the same server;
//! 2. relay: a 200,000-event backlog, beside the raw pipelined JetStream publish rate;
//! 3. rebuild: 1,000,000 events into `admin_users`;
//! 4. peak RSS of the serving process, idle and after the throughput run.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use jukebox_domain::{Command as DomainCommand, Email, PasswordHash};
use jukebox_handlers::Relay;
use jukebox_nats::{CommandBus, OutcomeStatus, Topology};
use jukebox_test_support::bench::{arg, envelope, rss_kib, Scratch};
use jukebox_test_support::{free_port, nats_url};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const USERS: usize = 1_000;

/// Concurrent clients of the throughput run (`--clients`, default 16).
fn clients() -> usize {
    arg("--clients", 16)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let commands = arg("--commands", 20_000);
    let relay_events = arg("--relay-events", 200_000);
    let rebuild_events = arg("--rebuild-events", 1_000_000);
    let nats = async_nats::connect(nats_url()).await?;
    let js = jetstream::new(nats.clone());

    // 1. Command throughput, end to end, against the real binary.
    let (scratch, pool) = Scratch::create("cmd").await?;
    let mut server = spawn_server(&scratch)?;
    let topology = scratch.topology()?;
    topology.ensure_streams(&js).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_kib(server.id(), "VmRSS:");
    let bus = CommandBus::start(nats.clone(), topology.namespace.clone()).await?;
    let hash = PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")?;
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::now_v7()).collect();
    run_clients(&bus, USERS, |i| DomainCommand::SignUp {
        user_id: users[i],
        email: Email::parse(&format!("u{i}@bench.local")).unwrap(),
        password_hash: hash.clone(),
    })
    .await?;
    wait_projected(&pool, &js, &topology, 2 * USERS as i64).await?;

    let started = Instant::now();
    run_clients(&bus, commands, |i| DomainCommand::RecordSignIn {
        user_id: users[i % USERS],
    })
    .await?;
    let committed = started.elapsed();
    let (on_events, projected) =
        wait_projected(&pool, &js, &topology, (2 * USERS + commands) as i64).await?;
    let (on_events, projected) = (on_events + committed, projected + committed);
    let peak_rss = rss_kib(server.id(), "VmHWM:");
    let _ = server.kill();
    let _ = server.wait();
    let pgbench_tps = pgbench(&scratch.url)?;
    scratch.remove().await?;
    let rate = |d: Duration| commands as f64 / d.as_secs_f64();
    println!(
        "## command throughput ({commands} RecordSignIn commands, {} clients)",
        clients()
    );
    println!(
        "committed (outcome received): {:.0} commands/s",
        rate(committed)
    );
    println!(
        "on EVENTS:                    {:.0} commands/s",
        rate(on_events)
    );
    println!(
        "projected (admin_users):      {:.0} commands/s",
        rate(projected)
    );
    println!("pgbench single-row INSERT+COMMIT, 16 clients: {pgbench_tps:.0} tps");
    println!(
        "ratio projected / pgbench: {:.2}",
        rate(projected) / pgbench_tps
    );
    println!(
        "serve processor+relay+projector+api RSS: idle {} MiB, peak {} MiB",
        idle_rss / 1024,
        peak_rss / 1024
    );

    // 2. Relay from a backlog.
    let (scratch, pool) = Scratch::create("relay").await?;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'bench', 'a' || i, 1, 'Benched', '1.0',
                json_build_object('Benched', json_build_object('n', i, 'note', repeat('x', 64))),
                json_build_object('command_id', md5(i::text), 'correlation_id', md5(i::text))
         FROM generate_series(1, $1) AS i",
    )
    .bind(relay_events as i64)
    .execute(&pool)
    .await?;
    let topology = scratch.topology()?;
    topology.ensure_streams(&js).await?;
    let relay = Relay::new(pool.clone(), nats.clone(), topology.clone());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(relay.run(stop.clone()));
    let events_stream = js.get_stream(topology.namespace.events_stream()).await?;
    loop {
        let mut info = events_stream.clone();
        if info.info().await?.state.messages as usize >= relay_events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let relay_rate = relay_events as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    let _ = task.await;
    let raw_rate = raw_publish_rate(&js, &scratch.namespace, relay_events).await?;
    scratch.remove().await?;
    println!("## relay ({relay_events}-event backlog)");
    println!("relay: {relay_rate:.0} events/s; raw pipelined JetStream publish: {raw_rate:.0} msgs/s ({:.2}x)", relay_rate / raw_rate);

    // 3. Rebuild.
    let (scratch, pool) = Scratch::create("rebuild").await?;
    let users = (rebuild_events / 10).max(1) as i64;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'user', md5(u::text)::uuid::text, s,
                CASE WHEN s = 1 THEN 'UserSignedUp' ELSE 'UserSignedIn' END, '1.0',
                CASE WHEN s = 1 THEN json_build_object('UserSignedUp', json_build_object(
                        'user_id', md5(u::text)::uuid, 'email', 'u' || u || '@bench.local',
                        'password_hash', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA'))
                     ELSE to_json('UserSignedIn'::text) END,
                '{}'
         FROM generate_series(1, $1) AS u, generate_series(1, 10) AS s",
    )
    .bind(users)
    .execute(&pool)
    .await?;
    let before = rss_kib(std::process::id(), "VmRSS:");
    let report = jukebox::ops::rebuild_projection(&pool, "admin_users", false).await?;
    let peak = rss_kib(std::process::id(), "VmHWM:");
    scratch.remove().await?;
    println!(
        "## rebuild ({} events -> {} rows)",
        report.events, report.rows
    );
    println!(
        "rebuild: {:.0} events/s in {:.1?}; process RSS before {} MiB, peak {} MiB",
        report.events_per_second(),
        report.elapsed,
        before / 1024,
        peak / 1024
    );
    Ok(())
}

fn spawn_server(scratch: &Scratch) -> anyhow::Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_jukebox"))
        .args(["serve", "processor", "relay", "projector", "api"])
        .envs(scratch.env())
        .env("API_PORT", free_port().to_string())
        .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret-0123")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?)
}

/// `total` commands from `clients()` concurrent clients, each awaiting its outcome.
async fn run_clients(
    bus: &CommandBus,
    total: usize,
    make: impl Fn(usize) -> DomainCommand + Sync,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let clients = (0..clients()).map(|_| {
        let next = next.clone();
        let make = &make;
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let outcome = bus
                    .send(&envelope(make(i), None), Duration::from_secs(60))
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("command {i} not answered"))?;
                anyhow::ensure!(outcome.status == OutcomeStatus::Committed, "{outcome:?}");
            }
        }
    });
    futures::future::try_join_all(clients).await?;
    Ok(())
}

/// Waits until EVENTS holds `events` messages and admin_users has applied them; returns
/// both times from now.
async fn wait_projected(
    pool: &PgPool,
    js: &jetstream::Context,
    topology: &Topology,
    events: i64,
) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut stream = js.get_stream(topology.namespace.events_stream()).await?;
    let mut on_events = None;
    loop {
        if on_events.is_none() && stream.info().await?.state.messages as i64 >= events {
            on_events = Some(started.elapsed());
        }
        let lags = jukebox_projections::status::lags(pool).await?;
        if on_events.is_some() && lags.iter().all(|l| l.behind == 0) {
            return Ok((on_events.unwrap_or_default(), started.elapsed()));
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "not projected in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pgbench(url: &str) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join(format!("jukebox-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "INSERT INTO bench_insert (payload) VALUES ('x');\n",
    )?;
    let setup = Command::new("psql")
        .args([
            url,
            "-qc",
            "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, payload text)",
        ])
        .status()?;
    anyhow::ensure!(setup.success(), "psql failed");
    let pgbench = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path().join("bin/pgbench"))
        .filter(|p| p.exists())
        .map_or("pgbench".into(), |p| p.display().to_string());
    let output = Command::new(pgbench)
        .args(["-n", "-c", "16", "-j", "2", "-T", "10", "-f"])
        .arg(&script)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "pgbench printed no tps: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

async fn raw_publish_rate(
    js: &jetstream::Context,
    namespace: &str,
    count: usize,
) -> anyhow::Result<f64> {
    let name = format!("{namespace}_RAW");
    let subject = format!("{namespace}.raw");
    js.get_or_create_stream(jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 420]);
    let started = Instant::now();
    // A sliding window of acks in flight, below async-nats' cap of 5,000 (a publish past
    // the cap waits for an ack to be awaited, so collecting them all would deadlock).
    let mut acks = std::collections::VecDeque::with_capacity(4_000);
    for _ in 0..count {
        if acks.len() == 4_000 {
            let ack: jetstream::context::PublishAckFuture = acks.pop_front().expect("full");
            ack.await?;
        }
        acks.push_back(js.publish(subject.clone(), payload.clone()).await?);
    }
    for ack in acks {
        ack.await?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    Ok(rate)
}
