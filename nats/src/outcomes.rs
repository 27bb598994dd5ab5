//! Reads of `command_outcomes`, the processor's record of each command's answer (written
//! in the same statement as the command's events, so an outcome and its events are
//! committed together). Beside the log reader: the edge answers `GET /commands/{id}` and a
//! late command from it, and the workers look up the outcome of a command they sent.

use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::envelope::CommandOutcome;

/// The stored outcome of `command_id`, once the processor has stored one.
pub async fn get<'e, E: PgExecutor<'e>>(
    executor: E,
    command_id: Uuid,
) -> Result<Option<CommandOutcome>, sqlx::Error> {
    let row: Option<(Json<CommandOutcome>,)> =
        sqlx::query_as("SELECT outcome FROM command_outcomes WHERE command_id = $1")
            .bind(command_id)
            .fetch_optional(executor)
            .await?;
    Ok(row.map(|(Json(outcome),)| outcome))
}

/// The stored outcome of `command_id` if nobody signed in issued it (a sign-up).
pub async fn anonymous<'e, E: PgExecutor<'e>>(
    executor: E,
    command_id: Uuid,
) -> Result<Option<CommandOutcome>, sqlx::Error> {
    let row: Option<(Json<CommandOutcome>,)> = sqlx::query_as(
        "SELECT outcome FROM command_outcomes WHERE command_id = $1 AND issued_by IS NULL",
    )
    .bind(command_id)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(Json(outcome),)| outcome))
}
