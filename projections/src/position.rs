//! A place in the log, in relay order: `(transaction_id, global_position)`.

use jukebox_nats::EventRecord;
use sqlx::PgConnection;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub transaction_id: u64,
    pub global_position: i64,
}

impl Position {
    pub fn of(event: &EventRecord) -> Self {
        let (transaction_id, global_position) = event.position();
        Self {
            transaction_id,
            global_position,
        }
    }

    /// Reads a projection's checkpoint; `lock` holds its row until the transaction ends,
    /// which is how the live consumer and a rebuild's swap take turns.
    pub async fn checkpoint(
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

    pub async fn store(self, conn: &mut PgConnection, projection: &str) -> Result<(), sqlx::Error> {
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
