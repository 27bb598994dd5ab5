//! Aggregates stay small (issue 16). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench aggregates` (release build),
//! against the Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL.
//!
//! `jukebox serve processor` runs as its own process on a scratch database and NATS
//! namespace (dropped afterwards); commands go straight onto the command bus, as the edge
//! and the downloader send them, and the figures are command rates through the processor.
//! 1. `CompleteImport` for `--completes` (400) jobs, `--concurrency` (16) in flight, into
//!    a library already holding 0, 10,000 and 100,000 tracks (`--sizes 0,10000,100000`
//!    is the default; the history is inserted into the log with SQL first, as
//!    `library_entry` events, and once more as a library written before issue 16, as
//!    per-user `library` events, which an entry is seeded from). Rate and p50/p99.
//! 2. `SignIn` and `DisableUser` (then `EnableUser`) for a new user and for one with
//!    `--signins` (10,000) past sign-ins, made with the same `SignIn` command through the
//!    processor; `--rounds` (200) of each, one at a time. Rate and p50/p99.

use std::time::{Duration, Instant};

use futures::StreamExt;
use jukebox_domain::{Command as DomainCommand, SignInMethod, SourceRef, TokenHash, TrackId};
use jukebox_nats::{CommandBus, OutcomeStatus};
use jukebox_test_support::bench::{self, arg, percentile};
use jukebox_test_support::imports::stored_track;
use sqlx::PgPool;
use uuid::Uuid;

/// `jukebox serve processor` on a scratch database and namespace, and a bus to it.
struct Server {
    server: bench::Server,
    pool: PgPool,
    bus: CommandBus,
}

impl Server {
    async fn start() -> anyhow::Result<Self> {
        let server = bench::Server::start(
            env!("CARGO_BIN_EXE_jukebox"),
            "aggregates",
            &["processor"],
            &[],
        )
        .await?;
        let bus = server.bus().await?;
        let server = Self {
            pool: server.pool.clone(),
            server,
            bus,
        };
        // Ready once the processor answers (a command for no user is rejected): the
        // first run once failed on a command sent before the processor was up.
        for _ in 0..100 {
            let probe = DomainCommand::EnableUser {
                user_id: Uuid::nil(),
            };
            let answer = server.send(probe, None).await;
            if answer.is_err_and(|e| e.to_string().contains("Rejected")) {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.stop().await?;
        anyhow::bail!("the processor did not answer")
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }

    /// Sends one command and insists on `committed`; answers its latency.
    async fn send(
        &self,
        command: DomainCommand,
        issued_by: Option<Uuid>,
    ) -> anyhow::Result<Duration> {
        let envelope = bench::envelope(command, issued_by);
        let started = Instant::now();
        let outcome = self
            .bus
            .send(&envelope, Duration::from_secs(60))
            .await?
            .ok_or_else(|| anyhow::anyhow!("command not answered"))?;
        anyhow::ensure!(outcome.status == OutcomeStatus::Committed, "{outcome:?}");
        Ok(started.elapsed())
    }

    /// Sends every command, `concurrency` in flight: (wall time, sorted latencies).
    async fn send_all(
        &self,
        commands: Vec<(DomainCommand, Option<Uuid>)>,
        concurrency: usize,
    ) -> anyhow::Result<Figures> {
        let started = Instant::now();
        let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(commands)
            .map(|(command, issuer)| self.send(command, issuer))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed();
        let mut latencies = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        latencies.sort();
        Ok(Figures {
            count: latencies.len(),
            elapsed,
            latencies,
        })
    }
}

struct Figures {
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {:.2?} = {:.0}/s; p50 {:.2?}, p99 {:.2?}",
            self.count,
            self.elapsed,
            self.rate(),
            percentile(&self.latencies, 0.5),
            percentile(&self.latencies, 0.99)
        )
    }
}

fn track(i: usize, prefix: &str) -> TrackId {
    TrackId::parse(&format!("url:{prefix}{i:07}")).expect("a valid track id")
}

/// `tracks` tracks in `user_id`'s library, written straight into the log: as entries
/// (`library_entry`), or as a library written before issue 16 (`library`, one aggregate).
async fn history(pool: &PgPool, user_id: Uuid, tracks: usize, legacy: bool) -> anyhow::Result<()> {
    let (aggregate_type, aggregate_id, sequence) = if legacy {
        ("library", "$1::text", "s")
    } else {
        (
            "library_entry",
            "$1::text || '/url:old' || lpad(s::text, 7, '0')",
            "1",
        )
    };
    sqlx::query(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT '{aggregate_type}', {aggregate_id}, {sequence}, 'TrackAddedToLibrary', '1.0',
                json_build_object('TrackAddedToLibrary', json_build_object(
                    'user_id', $1::text, 'track_id', 'url:old' || lpad(s::text, 7, '0'),
                    'job_id', gen_random_uuid())),
                '{{}}'::json
         FROM generate_series(1, $2) AS s"
    ))
    .bind(user_id.to_string())
    .bind(tracks as i64)
    .execute(pool)
    .await?;
    Ok(())
}

async fn complete_imports(
    server: &Server,
    size: usize,
    legacy: bool,
    completes: usize,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let user_id = Uuid::now_v7();
    history(&server.pool, user_id, size, legacy).await?;
    sqlx::query("ANALYZE events").execute(&server.pool).await?;
    // New tracks each run: a track is stored once (a second `StoreTrack` is refused), and
    // the warm-up and every size store their own.
    let prefix = format!("new{}x", user_id.simple());
    let jobs: Vec<(Uuid, TrackId)> = (0..completes)
        .map(|i| (Uuid::now_v7(), track(i, &prefix)))
        .collect();
    let requests = jobs
        .iter()
        .enumerate()
        .map(|(i, (job_id, _))| {
            let source = SourceRef::url(&format!("https://example.com/bench/{i}"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let request = DomainCommand::RequestImport {
                job_id: *job_id,
                user_id,
                source,
            };
            Ok((request, Some(user_id)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    server.send_all(requests, 64).await?;
    // A job completes only into a stored track (ADR 42).
    let stores = jobs
        .iter()
        .map(|(_, track_id)| {
            (
                DomainCommand::StoreTrack {
                    track: stored_track(track_id),
                },
                None,
            )
        })
        .collect();
    server.send_all(stores, 64).await?;
    let completes = jobs
        .into_iter()
        .map(|(job_id, track_id)| {
            let complete = DomainCommand::CompleteImport {
                job_id,
                user_id,
                track_id,
            };
            (complete, Some(user_id))
        })
        .collect();
    server.send_all(completes, concurrency).await
}

fn sign_in(user_id: Uuid) -> DomainCommand {
    let session_id = Uuid::new_v4();
    DomainCommand::SignIn {
        user_id,
        session_id,
        method: SignInMethod::Password,
        require_verified: false,
        refresh_token_hash: TokenHash::of(&session_id.to_string()),
        session_expires_at: time::OffsetDateTime::now_utc() + time::Duration::days(30),
        rehash: None,
    }
}

/// Sign-in and disable/enable figures for a user with `past` sign-ins.
async fn accounts(server: &Server, past: usize, rounds: usize) -> anyhow::Result<()> {
    let user_id = Uuid::now_v7();
    let email = jukebox_domain::Email::parse(&format!("bench-{}@example.com", user_id.simple()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let password_hash = jukebox_domain::PasswordHash::parse(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sign_up = DomainCommand::SignUp {
        user_id,
        email,
        password_hash,
    };
    server.send(sign_up, None).await?;
    if past > 0 {
        let started = Instant::now();
        let history = (0..past)
            .map(|_| (sign_in(user_id), Some(user_id)))
            .collect();
        let made = server.send_all(history, 64).await?;
        println!(
            "  {past} past sign-ins made in {:.1?} ({:.0}/s)",
            started.elapsed(),
            made.rate()
        );
    }
    let sign_ins = (0..rounds)
        .map(|_| (sign_in(user_id), Some(user_id)))
        .collect();
    let figures = server.send_all(sign_ins, 1).await?;
    println!("  SignIn, {past} past sign-ins: {figures}");
    // Alternate, so each `DisableUser` disables (the operator issues them).
    let mut disables = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        disables.push(
            server
                .send(DomainCommand::DisableUser { user_id }, None)
                .await?,
        );
        server
            .send(DomainCommand::EnableUser { user_id }, None)
            .await?;
    }
    let elapsed = disables.iter().sum();
    disables.sort();
    let figures = Figures {
        count: disables.len(),
        elapsed,
        latencies: disables,
    };
    println!("  DisableUser, {past} past sign-ins (latency sum as time): {figures}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let completes = arg("--completes", 400);
    let concurrency = arg("--concurrency", 16);
    let signins = arg("--signins", 10_000);
    let rounds = arg("--rounds", 200);
    let sizes: Vec<usize> = std::env::args()
        .skip_while(|a| a != "--sizes")
        .nth(1)
        .unwrap_or_else(|| "0,10000,100000".into())
        .split(',')
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;

    let server = Server::start().await?;
    let result = async {
        // Warm up the processor and the pool.
        complete_imports(&server, 0, false, 50, concurrency).await?;
        println!("CompleteImport, {completes} jobs, {concurrency} in flight:");
        let mut base = None;
        for legacy in [false, true] {
            for &size in &sizes {
                let figures =
                    complete_imports(&server, size, legacy, completes, concurrency).await?;
                let base = *base.get_or_insert(figures.rate());
                println!(
                    "  library of {size:>6} tracks{}: {figures} ({:.2}x the empty library)",
                    if legacy {
                        " (written before issue 16)"
                    } else {
                        ""
                    },
                    figures.rate() / base
                );
            }
        }
        println!("Accounts, {rounds} rounds one at a time:");
        accounts(&server, 0, rounds).await?;
        accounts(&server, signins, rounds).await?;
        anyhow::Ok(())
    }
    .await;
    server.stop().await?;
    result
}
