//! Operator commands: migrate, event history, projection rebuild and status.

use std::io::Write;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use jukebox_projections::rebuild::{rebuild, RebuildReport};
use jukebox_projections::{AdminUsers, Projection};
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
#[derive(Debug, serde::Serialize, sqlx::FromRow)]
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
    let events: Vec<AuditEvent> = sqlx::query_as(
        "SELECT sequence, event_type, recorded_at, payload, metadata FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2
           AND ($3::timestamptz IS NULL OR recorded_at <= $3)
         ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(as_of)
    .fetch_all(pool)
    .await
    .context("reading the event log")?;
    Ok(events
        .into_iter()
        .map(|e| AuditEvent {
            payload: jukebox_domain::audit::redact(&e.payload),
            ..e
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
        other => anyhow::bail!(
            "no projection named {other:?}; known: {}",
            jukebox_projections::ALL.join(", ")
        ),
    }
}
