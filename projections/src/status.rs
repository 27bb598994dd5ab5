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
