//! A place in the log, in relay order (`jukebox_nats::Position`), and the projections'
//! checkpoints, which are positions.

use std::future::Future;

pub use jukebox_nats::position::{MalformedPosition, Position};
use sqlx::PgConnection;

/// A projection's checkpoint in `projection_checkpoints`.
pub trait Checkpoint: Sized {
    /// Reads a projection's checkpoint; `lock` holds its row until the transaction ends,
    /// which is how the live consumer and a rebuild's swap take turns.
    fn checkpoint(
        conn: &mut PgConnection,
        projection: &str,
        lock: bool,
    ) -> impl Future<Output = Result<Self, sqlx::Error>> + Send;

    fn store(
        self,
        conn: &mut PgConnection,
        projection: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl Checkpoint for Position {
    async fn checkpoint(
        conn: &mut PgConnection,
        projection: &str,
        lock: bool,
    ) -> Result<Self, sqlx::Error> {
        let sql = format!(
            "SELECT transaction_id::text, global_position FROM projection_checkpoints
             WHERE projection = $1 {}",
            if lock { "FOR UPDATE" } else { "" }
        );
        let row: Option<(String, i64)> = sqlx::query_as(&sql)
            .bind(projection)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.map_or(Self::default(), |(xid, global_position)| Self {
            transaction_id: xid.parse().unwrap_or(0),
            global_position,
        }))
    }

    async fn store(self, conn: &mut PgConnection, projection: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO projection_checkpoints (projection, transaction_id, global_position, updated_at)
             VALUES ($1, $2::text::xid8, $3, now())
             ON CONFLICT (projection) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
                 global_position = EXCLUDED.global_position, updated_at = now()",
        )
        .bind(projection)
        .bind(self.transaction_id.to_string())
        .bind(self.global_position)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Moves the checkpoints of `projections` to `to` in one statement, each only forward,
/// for models that had nothing to apply before it (ADR 51). A checkpoint's row lock is
/// taken as `Checkpoint::checkpoint` takes it, so a rebuild's swap still takes turns
/// with it; the names are sorted so that two such statements lock rows in one order.
/// Returns how many checkpoints moved.
pub async fn advance_checkpoints(
    pool: &sqlx::PgPool,
    projections: &[&str],
    to: Position,
) -> Result<u64, sqlx::Error> {
    let mut names: Vec<&str> = projections.to_vec();
    names.sort_unstable();
    names.dedup();
    let moved = sqlx::query(
        "INSERT INTO projection_checkpoints (projection, transaction_id, global_position, updated_at)
         SELECT projection, $2::text::xid8, $3, now() FROM unnest($1::text[]) AS projection
         ON CONFLICT (projection) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
             global_position = EXCLUDED.global_position, updated_at = now()
         WHERE (projection_checkpoints.transaction_id, projection_checkpoints.global_position)
             < (EXCLUDED.transaction_id, EXCLUDED.global_position)",
    )
    .bind(&names)
    .bind(to.transaction_id.to_string())
    .bind(to.global_position)
    .execute(pool)
    .await?;
    Ok(moved.rows_affected())
}
