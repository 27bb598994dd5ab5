//! How far each read model and the relay are behind the head of the log.

use jukebox_nats::log;
use sqlx::PgPool;

use crate::position::Position;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Lag {
    pub name: String,
    pub transaction_id: u64,
    pub global_position: i64,
    /// Events in the log after this checkpoint.
    pub behind: i64,
}

/// Whether Postgres answers (health checks).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}

/// How far the relay has published the log to `EVENTS` (its checkpoint).
pub async fn relayed(pool: &PgPool) -> Result<Position, sqlx::Error> {
    let (transaction_id, global_position): (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM relay_checkpoint WHERE id = 1",
    )
    .fetch_one(pool)
    .await?;
    Ok(Position {
        transaction_id: transaction_id
            .parse()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        global_position,
    })
}

/// The relay first, then every projection.
pub async fn lags(pool: &PgPool) -> Result<Vec<Lag>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut checkpoints: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT 'relay', transaction_id::text, global_position FROM relay_checkpoint",
    )
    .fetch_all(&mut *conn)
    .await?;
    checkpoints.extend(
        sqlx::query_as::<_, (String, String, i64)>(
            "SELECT projection, transaction_id::text, global_position FROM projection_checkpoints
             ORDER BY projection",
        )
        .fetch_all(&mut *conn)
        .await?,
    );
    let mut lags = Vec::new();
    for (name, transaction_id, global_position) in checkpoints {
        let position = Position {
            transaction_id: transaction_id.parse().unwrap_or(0),
            global_position,
        };
        let behind = log::count_after(&mut *conn, position).await?;
        lags.push(Lag {
            name,
            transaction_id: position.transaction_id,
            global_position: position.global_position,
            behind,
        });
    }
    Ok(lags)
}

/// What the lag gauges on `/metrics` show for one checkpoint (the relay's or a
/// projection's).
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    pub name: String,
    /// Events in the log after the checkpoint, counted up to the cap.
    pub events: i64,
    /// Age of the oldest of them (0 when there are none).
    pub oldest_age_seconds: f64,
}

/// Per checkpoint, the relay first, then the projections by name.
pub async fn backlogs(pool: &PgPool, cap: i64) -> Result<Vec<Backlog>, sqlx::Error> {
    let checkpoints: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT name, transaction_id::text, global_position FROM (
             SELECT 0 AS sort, 'relay' AS name, transaction_id, global_position
             FROM relay_checkpoint
             UNION ALL
             SELECT 1, projection, transaction_id, global_position FROM projection_checkpoints
         ) c ORDER BY sort, name",
    )
    .fetch_all(pool)
    .await?;
    let positions: Vec<Position> = checkpoints
        .iter()
        .map(|(_, xid, global_position)| Position {
            transaction_id: xid.parse().unwrap_or(0),
            global_position: *global_position,
        })
        .collect();
    let backlogs = log::backlogs(pool, &positions, cap).await?;
    Ok(checkpoints
        .into_iter()
        .zip(backlogs)
        .map(|((name, _, _), backlog)| Backlog {
            name,
            events: backlog.events,
            oldest_age_seconds: backlog.oldest_age_seconds,
        })
        .collect())
}
