//! `jukebox`: one binary, roles chosen at start, plus the operator commands.

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jukebox::app::{self, Role, RoleOptions, Services};
use jukebox::dev_infra::DevInfra;
use jukebox::{ops, Config};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jukebox",
    version,
    about = "A self-hosted, multi-user music service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one or more roles in this process.
    Serve {
        /// Roles to run: api web stream processor relay projector downloader, or all.
        #[arg(required = true, value_enum)]
        roles: Vec<Role>,
    },
    /// Start local Postgres and NATS if none answer, migrate, and serve every role.
    Dev,
    /// Create the database if needed, apply migrations, and create or update the JetStream
    /// streams (replicas from NATS_STREAM_REPLICAS); run it as the admin NATS user.
    Migrate,
    /// Read models: rebuild from the event log, or show how far behind they are.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// The event log, for audit.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Operator tasks on accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give the admin role to the account with this email address.
    Grant {
        /// The account's email address.
        email: String,
    },
    /// Take the admin role away from the account with this email address.
    Revoke {
        /// The account's email address.
        email: String,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Replay the Postgres log into fresh tables and swap them in; reads keep working.
    Rebuild {
        /// Projection to rebuild.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
    },
    /// Checkpoint and lag of the relay and of every projection.
    Status,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// An aggregate's event history (credentials redacted).
    Show {
        /// Aggregate type, e.g. `user` or `email_claim`.
        aggregate_type: String,
        /// Aggregate id.
        id: String,
        /// Only events recorded at or before this RFC 3339 time.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<time::OffsetDateTime>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Seals the personal fields and typed text of events written before they were
    /// sealed, and moves claim streams to keyed ids (ADR 43). Idempotent; run it with the
    /// roles stopped, then re-feed EVENTS from the log (docs/operations.md).
    EncryptLegacy,
}

fn parse_time(raw: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve { roles } => serve(&config, &roles).await,
        Command::Dev => dev(config).await,
        Command::Migrate => {
            ops::migrate(&config).await?;
            println!("migrations applied");
            // The streams, here once and as a user allowed to make them: roles only read them.
            Services::connect(&config).await?;
            println!(
                "JetStream streams ready ({} replica(s))",
                config.nats_stream_replicas
            );
            Ok(())
        }
        Command::Projections { command } => {
            let pool = ops::migrate(&config).await?;
            match command {
                ProjectionsCommand::Rebuild { name, all } => {
                    let names: Vec<String> = if all {
                        jukebox_projections::ALL
                            .iter()
                            .map(|s| s.to_string())
                            .collect()
                    } else {
                        name.into_iter().collect()
                    };
                    let show = std::io::stderr().is_terminal();
                    for name in names {
                        let report = ops::rebuild_projection(&pool, &name, show).await?;
                        println!(
                            "{}: {} events -> {} rows in {:.2?} ({:.0} events/s)",
                            report.projection,
                            report.events,
                            report.rows,
                            report.elapsed,
                            report.events_per_second()
                        );
                    }
                }
                ProjectionsCommand::Status => {
                    println!(
                        "{:<16} {:>14} {:>16} {:>10}",
                        "name", "transaction", "global position", "behind"
                    );
                    for lag in jukebox_projections::status::lags(&pool).await? {
                        println!(
                            "{:<16} {:>14} {:>16} {:>10}",
                            lag.name, lag.transaction_id, lag.global_position, lag.behind
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Admin { command } => {
            ops::migrate(&config).await?;
            let message = match command {
                AdminCommand::Grant { email } => ops::set_admin(&config, &email, true).await?,
                AdminCommand::Revoke { email } => ops::set_admin(&config, &email, false).await?,
            };
            println!("{message}");
            Ok(())
        }
        Command::Events {
            command:
                EventsCommand::Show {
                    aggregate_type,
                    id,
                    as_of,
                    json,
                },
        } => {
            let pool = ops::migrate(&config).await?;
            let events = ops::history(&pool, &aggregate_type, &id, as_of).await?;
            if events.is_empty() {
                anyhow::bail!("no events for {aggregate_type} {id}");
            }
            ops::print_history(&events, json, &mut std::io::stdout().lock())
        }
        Command::Events {
            command: EventsCommand::EncryptLegacy,
        } => {
            let pool = ops::migrate(&config).await?;
            let report = jukebox_handlers::legacy::encrypt_legacy(&pool).await?;
            println!(
                "{} claim streams moved to keyed ids, {} events sealed",
                report.claims_rekeyed, report.events_sealed
            );
            Ok(())
        }
    }
}

async fn serve(config: &Config, roles: &[Role]) -> anyhow::Result<()> {
    let services = Services::connect(config).await?;
    let running = app::start(&services, RoleOptions::from_config(config, roles)?).await?;
    let shutdown = running.shutdown.clone();
    tokio::spawn(stop_on_signal(shutdown));
    running.wait().await
}

async fn dev(mut config: Config) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let infra = DevInfra::ensure(
        config.database_url.expose_secret(),
        &config.nats_url,
        &config.dev_data_dir,
    )
    .await
    .context("starting local infrastructure")?;
    for line in infra.summary() {
        println!("{line}");
    }
    if std::env::var_os("COOKIE_SECURE").is_none() {
        // Plain-http dev: a `Secure` cookie would not come back over http.
        config.cookie_secure = false;
    }
    if config.jwt_secret.is_none() {
        // Dev only: a fresh secret per run (sessions do not survive a restart).
        config.jwt_secret = Some(uuid::Uuid::new_v4().simple().to_string().into());
    }
    if config.stream_signing_secret.is_none() {
        // Dev only, likewise: stream URLs issued before a restart stop working.
        config.stream_signing_secret = Some(uuid::Uuid::new_v4().simple().to_string().into());
    }
    ops::migrate(&config).await?;
    let services = Services::connect(&config).await?;
    let running = app::start(&services, RoleOptions::from_config(&config, &[Role::All])?).await?;
    for (name, addr) in [
        ("web app", running.web_addr),
        ("api", running.api_addr),
        ("stream", running.stream_addr),
        ("health", Some(running.health_addr)),
    ] {
        if let Some(addr) = addr {
            println!("{name:>8}: http://{addr}");
        }
    }
    println!("Press Ctrl-C to stop.");
    tokio::spawn(stop_on_signal(running.shutdown.clone()));
    let result = running.wait().await;
    drop(infra);
    result
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

fn init_tracing() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // `LOG_SPANS=close` logs every span's busy and idle time as it closes: where a
    // command's time goes, hop by hop (docs/benchmarks.md).
    let spans = if std::env::var("LOG_SPANS").as_deref() == Ok("close") {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
