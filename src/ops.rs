//! Operator commands: migrate, event history, projection rebuild and status.

use std::io::Write;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use jukebox_nats::log;
use jukebox_projections::rebuild::{rebuild, RebuildReport};
use jukebox_projections::{
    Accounts, AdminUsers, AuthSessions, Favourites, Jobs, Music, PlayQueues, PlaylistEntries,
    Playlists, Plays, Projection, Subscriptions, Tracks, UserLibrary,
};
use secrecy::ExposeSecret;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::Config;

/// Creates the database if it is missing and applies every migration.
pub async fn migrate(config: &Config) -> anyhow::Result<PgPool> {
    let url = config.database_url.expose_secret();
    if !Postgres::database_exists(url)
        .await
        .context("connecting to Postgres (DATABASE_URL)")?
    {
        Postgres::create_database(url)
            .await
            .context("creating the database")?;
    }
    let pool = PgPool::connect(url)
        .await
        .context("connecting to Postgres")?;
    crate::MIGRATOR
        .run(&pool)
        .await
        .context("applying migrations")?;
    Ok(pool)
}

/// One event as `jukebox events show` prints it; credentials are redacted.
#[derive(Debug, serde::Serialize)]
pub struct AuditEvent {
    pub sequence: i64,
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
}

/// An aggregate's history from the Postgres log, up to `as_of` when given.
pub async fn history(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    as_of: Option<OffsetDateTime>,
) -> anyhow::Result<Vec<AuditEvent>> {
    // A claim is asked for by its address or identity; it is stored keyed (ADR 43).
    let aggregate_id = &jukebox_nats::claim_ids::ClaimIds::new(pool.clone())
        .id(aggregate_type, aggregate_id)
        .await
        .context("reading the claim key")?;
    let mut events = log::aggregate(pool, aggregate_type, aggregate_id, as_of, None)
        .await
        .context("reading the event log")?;
    // Personal fields sealed per user (ADR 34) open with the keys that exist.
    jukebox_nats::user_keys::open_records(pool, &mut events, jukebox_nats::sealed::ERASED)
        .await
        .context("reading the users' keys")?;
    Ok(events
        .into_iter()
        .map(|e| AuditEvent {
            sequence: e.sequence,
            event_type: e.event_type,
            recorded_at: e.recorded_at,
            payload: jukebox_domain::audit::redact(&e.payload),
            metadata: e.metadata,
        })
        .collect())
}

pub fn print_history(
    events: &[AuditEvent],
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, events)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>4}  {:<25}  {:<22}  {:<36}  payload",
        "seq", "recorded at", "event", "command"
    )?;
    for e in events {
        let command = e
            .metadata
            .get("command_id")
            .and_then(|v| v.as_str())
            .unwrap_or("-");
        writeln!(
            out,
            "{:>4}  {:<25}  {:<22}  {:<36}  {}",
            e.sequence,
            e.recorded_at.format(&Rfc3339)?,
            e.event_type,
            command,
            e.payload
        )?;
    }
    Ok(())
}

/// Rebuilds one read model with a progress bar (events/s and time left).
pub async fn rebuild_projection(
    pool: &PgPool,
    name: &str,
    show_progress: bool,
) -> anyhow::Result<RebuildReport> {
    let progress = if show_progress {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {pos}/{len} events  {per_sec}  eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        )
    } else {
        ProgressBar::hidden()
    };
    progress.set_message(name.to_owned());
    match name {
        AdminUsers::NAME => rebuild::<AdminUsers>(pool, &progress).await,
        Accounts::NAME => rebuild::<Accounts>(pool, &progress).await,
        AuthSessions::NAME => rebuild::<AuthSessions>(pool, &progress).await,
        Jobs::NAME => rebuild::<Jobs>(pool, &progress).await,
        Tracks::NAME => rebuild::<Tracks>(pool, &progress).await,
        UserLibrary::NAME => rebuild::<UserLibrary>(pool, &progress).await,
        Music::NAME => rebuild::<Music>(pool, &progress).await,
        Favourites::NAME => rebuild::<Favourites>(pool, &progress).await,
        Plays::NAME => rebuild::<Plays>(pool, &progress).await,
        Playlists::NAME => rebuild::<Playlists>(pool, &progress).await,
        PlaylistEntries::NAME => rebuild::<PlaylistEntries>(pool, &progress).await,
        PlayQueues::NAME => rebuild::<PlayQueues>(pool, &progress).await,
        Subscriptions::NAME => rebuild::<Subscriptions>(pool, &progress).await,
        other => anyhow::bail!(
            "no projection named {other:?}; known: {}",
            jukebox_projections::ALL.join(", ")
        ),
    }
}

/// `jukebox admin grant|revoke <email>`: sends `GrantRole`/`RevokeRole` for the account
/// that holds this address, through the command bus (a processor must be running).
pub async fn set_admin(config: &Config, email: &str, grant: bool) -> anyhow::Result<String> {
    use jukebox_domain::{Command, Email, EmailClaim, EmailClaimEvent, Role};
    use jukebox_nats::{CommandBus, CommandEnvelope, OutcomeStatus};

    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{email:?}: {e}"))?;
    let services = crate::Services::connect(config).await?;
    let claim_id = jukebox_nats::claim_ids::ClaimIds::new(services.pool.clone())
        .id("email_claim", email.as_str())
        .await
        .context("reading the claim key")?;
    // The claim's whole history: an address released (erasure, an address change) and
    // claimed again belongs to whoever claimed it last.
    let events = log::aggregate(&services.pool, "email_claim", &claim_id, None, None)
        .await
        .context("reading the event log")?;
    let history: Vec<EmailClaimEvent> = events
        .iter()
        .map(|event| event.decode())
        .collect::<Result<_, _>>()
        .context("reading the email claim")?;
    let Some(user_id) = EmailClaim::from_events(history).claimed_by() else {
        anyhow::bail!("no account has the address {email}");
    };
    let command = if grant {
        Command::GrantRole {
            user_id,
            role: Role::Admin,
        }
    } else {
        Command::RevokeRole {
            user_id,
            role: Role::Admin,
        }
    };
    let envelope = CommandEnvelope {
        command_id: uuid::Uuid::now_v7(),
        correlation_id: uuid::Uuid::now_v7(),
        issued_by: None,
        issued_at: OffsetDateTime::now_utc(),
        command,
    };
    let bus = CommandBus::start(services.nats.clone(), services.topology.namespace.clone())
        .await
        .context("subscribing to command replies")?;
    let outcome = bus
        .send(&envelope, std::time::Duration::from_secs(15))
        .await?
        .context("the command was accepted but not answered in 15 s: is a processor running?")?;
    match outcome.status {
        OutcomeStatus::Committed if outcome.events.is_empty() => Ok(format!(
            "{email} ({user_id}) {} admin already",
            if grant { "is" } else { "is not" }
        )),
        OutcomeStatus::Committed => Ok(format!(
            "{email} ({user_id}) {}",
            if grant {
                "is now an admin"
            } else {
                "is no longer an admin"
            }
        )),
        OutcomeStatus::Rejected => anyhow::bail!(
            "refused: {}",
            outcome.error.map(|e| e.message).unwrap_or_default()
        ),
    }
}
