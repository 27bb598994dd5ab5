//! The composition root: configuration, wiring of the roles, and the operator commands.
//! `src/main.rs` is the CLI over this library; integration tests use it directly.

pub mod app;
pub mod config;
pub mod dev_infra;
pub mod imports;
pub mod ops;
mod pools;
pub mod settings;
pub mod subscriptions;

pub use app::{Role, RoleOptions, Running, Services};
pub use config::Config;

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
