//! Rebuild a read model from the Postgres log (the source of truth) without stopping
//! reads: fold the log in relay order in memory, COPY the rows into a bare shadow table,
//! build its indexes, then in one short transaction catch up, swap it in and move the
//! checkpoint. The live consumer waits on the checkpoint row during the swap and then
//! carries on after it, so no event is lost or applied twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use indicatif::ProgressBar;
use jukebox_domain::published;
use jukebox_nats::{log, sealed, user_keys};
use sqlx::{PgConnection, PgPool};
use tracing::info;

use crate::position::{Checkpoint, Position};
use crate::runtime::{apply_events, copy_in, erasure, forget_user, Projection};

#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub projection: &'static str,
    pub events: u64,
    pub rows: usize,
    pub elapsed: Duration,
    pub position: Position,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

const CATCH_UP_BATCH: i64 = 5_000;

pub async fn rebuild<P: Projection>(
    pool: &PgPool,
    progress: &ProgressBar,
) -> anyhow::Result<RebuildReport> {
    let started = Instant::now();
    let live = P::TABLE;
    let shadow = format!("{live}_rebuild");
    let mut conn = pool.acquire().await?;
    sqlx::query(&format!("DROP TABLE IF EXISTS {shadow}"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "CREATE TABLE {shadow} (LIKE {live} INCLUDING DEFAULTS)"
    ))
    .execute(&mut *conn)
    .await?;

    let total = log::count(&mut *conn).await?;
    progress.set_length(total.max(0) as u64);

    // 1. Fold the stable part of the log (below xmin: nothing can commit before it).
    let mut rows: HashMap<String, P::Row> = HashMap::new();
    let mut position = Position::default();
    let mut events = 0u64;
    {
        // Sealed personal fields open with the keys that exist now, as they do live
        // (ADR 34); an erased user's read as erased.
        let keys = user_keys::all(&mut *conn).await?;
        let mut stable = log::stable(&mut *conn);
        while let Some(mut event) = stable.try_next().await? {
            // The live projector folds what the relay published (ADR 33).
            published::withhold(&mut event.payload);
            keys.open_payload(&mut event.payload, sealed::ERASED);
            // An erasure deletes the user's rows where it stands, as live (ADR 42).
            if let Some(user) = erasure::<P>(&event) {
                forget_user::<P>(&mut rows, user);
            } else if P::consumes(&event) {
                P::apply(&mut rows, &event);
            }
            position = Position::of(&event);
            events += 1;
            if events.is_multiple_of(4096) {
                progress.set_position(events);
            }
        }
    }
    progress.set_position(events);

    // 2. Load it bare, then index it: far faster than maintaining indexes row by row.
    let row_count = rows.len();
    copy_in::<P>(&mut conn, &shadow, rows.into_values()).await?;
    let renames = copy_indexes(&mut conn, live, &shadow).await?;
    // A new table has no statistics until autovacuum gets to it, and without them the
    // planner can pick the wrong index of several that start alike (the music model's
    // first-track look-up scanned a user's every entry per album).
    sqlx::query(&format!("ANALYZE {shadow}"))
        .execute(&mut *conn)
        .await?;

    // 3. Catch up and swap, holding the checkpoint row so the live consumer waits.
    let mut tx = pool.begin().await?;
    let live_checkpoint = Position::checkpoint(&mut tx, P::NAME, true).await?;
    loop {
        // `apply_events` folds the published shape, opened, as the live projector does.
        let batch = log::stable_after(&mut *tx, position, CATCH_UP_BATCH).await?;
        let Some(last) = batch.last() else { break };
        position = Position::of(last);
        events += batch.len() as u64;
        apply_events::<P>(&mut tx, &shadow, &batch).await?;
    }
    sqlx::query(&format!("LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP TABLE {live}"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("ALTER TABLE {shadow} RENAME TO {live}"))
        .execute(&mut *tx)
        .await?;
    for rename in renames {
        sqlx::query(&rename).execute(&mut *tx).await?;
    }
    let checkpoint = position.max(live_checkpoint);
    checkpoint.store(&mut tx, P::NAME).await?;
    tx.commit().await?;
    // Readers waiting for a position re-read the checkpoints (best effort: they tick too).
    let _ = crate::freshness::notify(pool).await;
    progress.finish();

    let report = RebuildReport {
        projection: P::NAME,
        events,
        rows: row_count,
        elapsed: started.elapsed(),
        position: checkpoint,
    };
    info!(
        projection = P::NAME,
        events,
        rows = row_count,
        events_per_second = report.events_per_second() as u64,
        "rebuild swapped in"
    );
    Ok(report)
}

/// Gives `shadow` the live table's keys and indexes (under temporary names) and returns
/// the statements that give them the live names once the live table is gone.
async fn copy_indexes(
    conn: &mut PgConnection,
    live: &str,
    shadow: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let mut renames = Vec::new();
    let constraints: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = $1::regclass AND contype IN ('p', 'u')",
    )
    .bind(live)
    .fetch_all(&mut *conn)
    .await?;
    for (name, definition) in &constraints {
        sqlx::query(&format!(
            "ALTER TABLE {shadow} ADD CONSTRAINT {name}_rb {definition}"
        ))
        .execute(&mut *conn)
        .await?;
        renames.push(format!(
            "ALTER TABLE {live} RENAME CONSTRAINT {name}_rb TO {name}"
        ));
    }
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.relname::text, pg_get_indexdef(i.oid) FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         WHERE x.indrelid = $1::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
    )
    .bind(live)
    .fetch_all(&mut *conn)
    .await?;
    for (name, definition) in &indexes {
        let definition = definition
            .replacen(
                &format!("INDEX {name} ON "),
                &format!("INDEX {name}_rb ON "),
                1,
            )
            .replacen(&format!(".{live} USING"), &format!(".{shadow} USING"), 1);
        sqlx::query(&definition).execute(&mut *conn).await?;
        renames.push(format!("ALTER INDEX {name}_rb RENAME TO {name}"));
    }
    Ok(renames)
}
