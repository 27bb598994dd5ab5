//! Read models built from the event log. One durable consumer on `EVENTS` feeds them all
//! (`projector`); each applies a batch and writes its checkpoint in one Postgres
//! transaction; events at or below the checkpoint are skipped, so redelivery changes
//! nothing.
//! `rebuild` replays the Postgres log into a shadow table and swaps it in.
//!
//! This crate is also the read side's API: typed query functions per read model
//! (`admin_users::page`, `jobs::get`, `tracks::catalog`, `library::playable`, ...), plus
//! the reads of the write-side access state (`access`) and the edge's idempotency records
//! (`idempotency`). The HTTP crate runs no SQL of its own (ADR 17).

pub mod access;
pub mod accounts;
pub mod admin_users;
pub mod app_credentials;
pub mod auth_sessions;
#[cfg(test)]
mod coverage;
pub mod devices;
pub mod export;
pub mod favourites;
pub mod freshness;
#[cfg(test)]
mod given;
pub mod idempotency;
pub mod imports;
pub mod library;
pub mod music;
pub mod now_playing;
pub mod play_queue;
pub mod playlists;
pub mod plays;
pub mod position;
pub mod projector;
pub mod rebuild;
pub mod runtime;
pub mod status;
pub mod subscriptions;
pub mod subsonic;

pub use accounts::Accounts;
pub use admin_users::AdminUsers;
pub use auth_sessions::AuthSessions;
pub use favourites::Favourites;
pub use freshness::{Freshness, ReadModel, WaitError};
pub use imports::{jobs, tracks, Jobs, Tracks};
pub use library::UserLibrary;
pub use music::{albums, artists, Music};
pub use play_queue::PlayQueues;
pub use playlists::{PlaylistEntries, Playlists};
pub use plays::Plays;
pub use position::Position;
pub use projector::{ProjectionRunner, ProjectorGroup};
pub use runtime::Projection;
pub use subscriptions::Subscriptions;

/// Every read model, by name (`jukebox projections rebuild NAME`).
pub const ALL: &[&str] = &[
    AdminUsers::NAME,
    Accounts::NAME,
    AuthSessions::NAME,
    Jobs::NAME,
    Tracks::NAME,
    UserLibrary::NAME,
    Music::NAME,
    Favourites::NAME,
    Plays::NAME,
    Playlists::NAME,
    PlaylistEntries::NAME,
    PlayQueues::NAME,
    Subscriptions::NAME,
];

/// Every read model, fed by the one consumer `proj-all` (ADR 39).
pub fn every_model() -> ProjectorGroup {
    ProjectorGroup::named(projector::EVERY_MODEL)
        .with::<AdminUsers>()
        .with::<Accounts>()
        .with::<AuthSessions>()
        .with::<Jobs>()
        .with::<Tracks>()
        .with::<UserLibrary>()
        .with::<Music>()
        .with::<Favourites>()
        .with::<Plays>()
        .with::<Playlists>()
        .with::<PlaylistEntries>()
        .with::<PlayQueues>()
        .with::<Subscriptions>()
}

/// Every read model as a read waits on it (`Freshness::wait_for`).
pub const MODELS: &[ReadModel] = &[
    ReadModel::of::<AdminUsers>(),
    ReadModel::of::<Accounts>(),
    ReadModel::of::<AuthSessions>(),
    ReadModel::of::<Jobs>(),
    ReadModel::of::<Tracks>(),
    ReadModel::of::<UserLibrary>(),
    ReadModel::of::<Music>(),
    ReadModel::of::<Favourites>(),
    ReadModel::of::<Plays>(),
    ReadModel::of::<Playlists>(),
    ReadModel::of::<PlaylistEntries>(),
    ReadModel::of::<PlayQueues>(),
    ReadModel::of::<Subscriptions>(),
];

#[cfg(test)]
mod tests {
    #[test]
    fn one_consumer_feeds_every_model() {
        assert_eq!(super::every_model().models(), super::ALL);
        let waited: Vec<&str> = super::MODELS.iter().map(|m| m.name).collect();
        assert_eq!(waited, super::ALL);
    }
}
