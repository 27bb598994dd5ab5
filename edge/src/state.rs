//! State shared by every handler.

use std::time::Duration;

use jukebox_nats::CommandBus;
use sqlx::PgPool;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub bus: CommandBus,
    /// How long a request waits for its command's outcome before answering 202.
    pub command_wait: Duration,
}
