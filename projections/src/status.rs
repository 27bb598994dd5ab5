//! How far each read model and the relay are behind the head of the log.

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
        let (behind,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM events
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2)",
        )
        .bind(&transaction_id)
        .bind(global_position)
        .fetch_one(&mut *conn)
        .await?;
        let position = Position {
            transaction_id: transaction_id.parse().unwrap_or(0),
            global_position,
        };
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

/// Per checkpoint, the relay first: cheap enough for every scrape, since both subqueries
/// walk the relay-order index from the checkpoint on and stop at `cap` rows or at one.
pub async fn backlogs(pool: &PgPool, cap: i64) -> Result<Vec<Backlog>, sqlx::Error> {
    let rows: Vec<(String, i64, f64)> = sqlx::query_as(
        "WITH checkpoints AS (
             SELECT 0 AS sort, 'relay' AS name, transaction_id, global_position
             FROM relay_checkpoint
             UNION ALL
             SELECT 1, projection, transaction_id, global_position FROM projection_checkpoints
         )
         SELECT c.name,
             (SELECT count(*) FROM (
                 SELECT 1 FROM events e
                 WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
                 LIMIT $1) AS after),
             COALESCE(EXTRACT(EPOCH FROM now() - (
                 SELECT e.recorded_at FROM events e
                 WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
                 ORDER BY e.transaction_id, e.global_position LIMIT 1)), 0)::float8
         FROM checkpoints c ORDER BY c.sort, c.name",
    )
    .bind(cap)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, events, oldest_age_seconds)| Backlog {
            name,
            events,
            oldest_age_seconds: oldest_age_seconds.max(0.0),
        })
        .collect())
}
