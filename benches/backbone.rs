//! Backbone benchmarks (issue: event backbone). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench backbone` (release build), against
//! the Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL.
//!
//! 1. command throughput: 16 clients send `RequestImport` (what `POST /songs/import` sends)
//!    over the command bus to `jukebox serve processor relay projector api` running as its
//!    own process; timed until committed, until on EVENTS, and until projected; beside
//!    pgbench's single-row INSERT + COMMIT rate with 16 clients on the same server, in the
//!    same run;
//! 2. relay: a 200,000-event backlog, beside the raw pipelined JetStream publish rate;
//! 3. rebuild: 1,000,000 events into `admin_users`;
//! 4. peak RSS of the serving process, idle and after the throughput run.
//!
//! `--only commands|relay|rebuild` runs one part.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use jukebox_domain::{Command as DomainCommand, Email, PasswordHash, SourceRef};
use jukebox_handlers::Relay;
use jukebox_nats::{CommandBus, CommandEnvelope, OutcomeStatus, Topology};
use jukebox_test_support::bench::{arg, envelope, rss_kib, Scratch};
use jukebox_test_support::{free_port, nats_url};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The relay runs in this process (part 2): with the allocator of the `jukebox` binary
/// (`src/main.rs`), so that it is measured as `jukebox serve relay` runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: usize = 1_000;

/// Concurrent clients of the throughput run (`--clients`, default 16).
fn clients() -> usize {
    arg("--clients", 16)
}

/// The part `--only` names, or every part.
fn runs(part: &str) -> bool {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--only") {
        Some(i) => args.get(i + 1).is_some_and(|only| only == part),
        None => true,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `RUST_LOG=jukebox_handlers=debug LOG_SPANS=close`: the in-process relay's spans with
    // their times (relay.read, relay.publish, relay.await_acks, relay.checkpoint).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let spans = if std::env::var("LOG_SPANS").as_deref() == Ok("close") {
            tracing_subscriber::fmt::format::FmtSpan::CLOSE
        } else {
            tracing_subscriber::fmt::format::FmtSpan::NONE
        };
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_span_events(spans)
            .with_writer(std::io::stderr)
            .init();
    }
    let nats = async_nats::connect(nats_url()).await?;
    let js = jetstream::new(nats.clone());
    if runs("commands") {
        command_throughput(&nats, &js, arg("--commands", 20_000)).await?;
    }
    if runs("relay") {
        relay_backlog(&nats, &js, arg("--relay-events", 200_000)).await?;
    }
    if runs("rebuild") {
        rebuild(arg("--rebuild-events", 1_000_000)).await?;
    }
    Ok(())
}

/// 1. Command throughput, end to end, against the real binary, beside pgbench.
async fn command_throughput(
    nats: &async_nats::Client,
    js: &jetstream::Context,
    commands: usize,
) -> anyhow::Result<()> {
    let pgbench_bin = pgbench_binary()?;
    let (scratch, pool) = Scratch::create("cmd").await?;
    let mut server = spawn_server(&scratch)?;
    let topology = scratch.topology()?;
    topology.ensure_streams(js).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_kib(server.id(), "VmRSS:");
    let bus = CommandBus::start(nats.clone(), topology.namespace.clone()).await?;
    let hash = PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")?;
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::now_v7()).collect();
    run_clients(&bus, USERS, |i| {
        let command = DomainCommand::SignUp {
            user_id: users[i],
            email: Email::parse(&format!("u{i}@bench.local")).unwrap(),
            password_hash: hash.clone(),
        };
        envelope(command, None)
    })
    .await?;
    wait_projected(&pool, js, &topology, 2 * USERS as i64).await?;

    // What `POST /songs/import` sends: a new job (one aggregate, one event) per request.
    let started = Instant::now();
    run_clients(&bus, commands, |i| {
        let user_id = users[i % USERS];
        let command = DomainCommand::RequestImport {
            job_id: Uuid::now_v7(),
            user_id,
            source: SourceRef::video(&format!("bench{i:06}")).expect("an 11-character id"),
        };
        envelope(command, Some(user_id))
    })
    .await?;
    let committed = started.elapsed();
    let (on_events, projected) =
        wait_projected(&pool, js, &topology, (2 * USERS + commands) as i64).await?;
    let (on_events, projected) = (on_events + committed, projected + committed);
    let peak_rss = rss_kib(server.id(), "VmHWM:");
    let _ = server.kill();
    let _ = server.wait();
    // Right after, on the same server, so both figures see the same machine.
    let pgbench_tps = pgbench(&pgbench_bin, &scratch.url)?;
    scratch.remove().await?;
    let rate = |d: Duration| commands as f64 / d.as_secs_f64();
    println!(
        "## command throughput ({commands} RequestImport commands, {} clients)",
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
        "projected (every read model): {:.0} commands/s",
        rate(projected)
    );
    println!("pgbench single-row INSERT+COMMIT, 16 clients: {pgbench_tps:.0} tps");
    println!(
        "ratio committed / pgbench: {:.3}; projected / pgbench: {:.3}",
        rate(committed) / pgbench_tps,
        rate(projected) / pgbench_tps
    );
    println!(
        "serve processor+relay+projector+api RSS: idle {} MiB, peak {} MiB",
        idle_rss / 1024,
        peak_rss / 1024
    );
    Ok(())
}

/// 2. Relay from a backlog, beside raw pipelined publishing in the same run.
async fn relay_backlog(
    nats: &async_nats::Client,
    js: &jetstream::Context,
    relay_events: usize,
) -> anyhow::Result<()> {
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
    topology.ensure_streams(js).await?;
    let relay = Relay::new(pool.clone(), nats.clone(), topology.clone());
    let batch = relay.batch_size as usize;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(relay.run(stop.clone()));
    let events_stream = js.get_stream(topology.namespace.events_stream()).await?;
    loop {
        let mut info = events_stream.clone();
        if info.info().await?.state.messages as usize >= relay_events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let relay_rate = relay_events as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    let _ = task.await;
    // The relay's own messages (subject, headers, body), published again without the relay.
    let relayed: Vec<jetstream::message::StreamMessage> = {
        let events_stream = js.get_stream(topology.namespace.events_stream()).await?;
        let mut messages = Vec::with_capacity(relay_events);
        for sequence in 1..=relay_events as u64 {
            messages.push(events_stream.get_raw_message(sequence).await?);
        }
        messages
    };
    let raw_rate =
        raw_publish_rate(js, &scratch.namespace, relay_events, Shape::OneSubject).await?;
    let per_subject = raw_publish_rate(
        js,
        &scratch.namespace,
        relay_events,
        Shape::SubjectPerMessage,
    )
    .await?;
    let same_messages = raw_publish_rate(
        js,
        &scratch.namespace,
        relay_events,
        Shape::TheRelays(&relayed, batch),
    )
    .await?;
    scratch.remove().await?;
    println!("## relay ({relay_events}-event backlog)");
    println!(
        "relay: {relay_rate:.0} events/s; raw pipelined JetStream publish: {raw_rate:.0} msgs/s ({:.2}x)",
        relay_rate / raw_rate
    );
    // The relay's messages each go to a subject of their own (`evt.<type>.<id>.<event>`),
    // which JetStream indexes: the same raw publish with a new subject per message says
    // how much of the gap is the subjects' and not the relay's.
    println!(
        "raw publish, a subject per message as the relay's: {per_subject:.0} msgs/s (relay = {:.2}x)",
        relay_rate / per_subject
    );
    // The same with the relay's headers and bodies too: what nats-server's work per message
    // allows, so the rest of the gap is the relay's (reading, ordering, checkpoints).
    println!(
        "raw publish of the relay's own messages (subjects, headers, bodies): {same_messages:.0} msgs/s (relay = {:.2}x)",
        relay_rate / same_messages
    );
    Ok(())
}

/// 3. Rebuild of `admin_users` from a log of `rebuild_events`.
async fn rebuild(rebuild_events: usize) -> anyhow::Result<()> {
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
        // `BENCH_SERVER_LOG=jukebox_handlers=debug,jukebox_nats=debug LOG_SPANS=close`:
        // the server's spans per hop (processor.load, processor.commit, ...) on stderr.
        .env(
            "RUST_LOG",
            std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::null())
        .spawn()?)
}

/// `total` commands from `clients()` concurrent clients, each awaiting its outcome.
async fn run_clients(
    bus: &CommandBus,
    total: usize,
    make: impl Fn(usize) -> CommandEnvelope + Sync,
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
                    .send(&make(i), Duration::from_secs(60))
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

/// pgbench from PATH or the newest PostgreSQL's bin folder; installed from Debian when
/// missing (postgresql-contrib, and postgresql-client where the client package ships it).
fn pgbench_binary() -> anyhow::Result<String> {
    let find = || -> Option<String> {
        let on_path = Command::new("pgbench")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if on_path {
            return Some("pgbench".into());
        }
        let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        // Newest version first ("9.6" < "15" numerically).
        dirs.sort_by_key(|d| {
            let name = d
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            std::cmp::Reverse(name.split('.').next().and_then(|v| v.parse::<u32>().ok()))
        });
        dirs.into_iter()
            .map(|d| d.join("bin/pgbench"))
            .find(|p| p.exists())
            .map(|p| p.display().to_string())
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    eprintln!("pgbench is missing: installing postgresql-contrib and postgresql-client (apt-get)");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        let status = command
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(args)
            .status()?;
        anyhow::ensure!(status.success(), "apt-get {} failed", args.join(" "));
        Ok(())
    };
    apt(&["update", "-q"])?;
    apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "postgresql-contrib",
        "postgresql-client",
    ])?;
    find().ok_or_else(|| anyhow::anyhow!("pgbench still missing after installing"))
}

fn pgbench(pgbench: &str, url: &str) -> anyhow::Result<f64> {
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
    let output = Command::new(pgbench)
        .args(["-n", "-c", "16", "-j", "2", "-T", "10", "-f"])
        .arg(&script)
        .arg(url)
        .output()?;
    let _ = std::fs::remove_file(&script);
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

/// What the raw publish sends.
enum Shape<'a> {
    /// 420 bytes to one subject, no headers.
    OneSubject,
    /// 420 bytes, each to a subject of its own, no headers.
    SubjectPerMessage,
    /// The relay's messages as `EVENTS` stored them: each to its own subject (the same
    /// but for `evt`), with its headers and body, and as the relay sends them: only each
    /// batch's last (of the relay's batch size) asks for an ack (ADR 54).
    TheRelays(&'a [jetstream::message::StreamMessage], usize),
}

async fn raw_publish_rate(
    js: &jetstream::Context,
    namespace: &str,
    count: usize,
    shape: Shape<'_>,
) -> anyhow::Result<f64> {
    let name = format!("{namespace}_RAW");
    let subject = format!("{namespace}.raw");
    js.get_or_create_stream(jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone(), format!("{subject}.>")],
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 420]);
    let started = Instant::now();
    // A sliding window of acks in flight, below async-nats' cap of 5,000 (a publish past
    // the cap waits for an ack to be awaited, so collecting them all would deadlock).
    // The relay's shape keeps as many batches in flight as the relay does.
    let window = match shape {
        Shape::TheRelays(..) => jukebox_handlers::relay::BATCHES_IN_FLIGHT,
        _ => 4_000,
    };
    let mut acks = std::collections::VecDeque::with_capacity(window);
    for i in 0..count {
        if acks.len() == window {
            let ack: jetstream::context::PublishAckFuture = acks.pop_front().expect("full");
            ack.await?;
        }
        let ack = match &shape {
            Shape::OneSubject => js.publish(subject.clone(), payload.clone()).await?,
            Shape::SubjectPerMessage => {
                js.publish(format!("{subject}.{i}"), payload.clone())
                    .await?
            }
            Shape::TheRelays(messages, batch) => {
                let message = &messages[i];
                // The conditional publish names the raw stream's last sequence.
                let mut headers = message.headers.clone();
                headers.insert("Nats-Expected-Last-Sequence", i.to_string().as_str());
                // `<ns>.evt.<type>.<id>.<Event>` as `<ns>.raw.<type>.<id>.<Event>`.
                let subject = message.subject.replacen(".evt.", ".raw.", 1);
                let payload = message.payload.clone();
                if (i + 1) % batch != 0 && i + 1 != count {
                    js.client()
                        .publish_with_headers(subject, headers, payload)
                        .await?;
                    continue;
                }
                js.publish_with_headers(subject, headers, payload).await?
            }
        };
        acks.push_back(ack);
    }
    for ack in acks {
        ack.await?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    Ok(rate)
}
