//! The process' Postgres pools: the shared one, and the processor's own (ADR 48).

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::config::Config;

/// How every pool of the process connects: at most `max` connections, closed after a
/// minute idle.
pub(crate) fn pool_options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .idle_timeout(Duration::from_secs(60))
        // Fail fast while Postgres is down: callers answer 503 rather than hang.
        .acquire_timeout(Duration::from_secs(3))
        // sqlx pings every connection it hands out by default: a round trip per
        // query. Ping only those idle long enough to have been dropped.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > Duration::from_secs(10) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// The processor's own connections (ADR 48): its statements are keyed lookups and
/// appends whose plans do not depend on their values, but Postgres keeps planning the
/// group commit's statement on every execution (its generic plan's estimate never wins),
/// which cost more than running it. Here every statement keeps its first generic plan.
/// That plan is made at a connection's first execution, costed on the tables as they
/// are then: on a new database, an empty `events` table made hash joins over sequential
/// scans look cheapest, and the plan kept them while the log grew (each commit parsed
/// the metadata of every event: 336 commands/s). So these sessions also turn sequential
/// scans, hash and merge joins off: the generic plan is the index plan at any size.
/// A third of `DATABASE_MAX_CONNECTIONS` (at least 4): the commands in flight queue
/// for them, and a statement's work, not the number of connections, is the limit.
pub(crate) fn processor_pool(config: &Config) -> anyhow::Result<PgPool> {
    pool_options((config.database_max_connections / 3).max(4))
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query(
                    "SELECT set_config('plan_cache_mode', 'force_generic_plan', false),
                            set_config('enable_seqscan', 'off', false),
                            set_config('enable_hashjoin', 'off', false),
                            set_config('enable_mergejoin', 'off', false)",
                )
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .connect_lazy(config.database_url.expose_secret())
        .context("DATABASE_URL")
}
