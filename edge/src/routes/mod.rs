//! The API gateway's routes, one module per resource. Each has its `routes()` and its
//! `Doc` (its operations in the OpenAPI document); `crate::api` assembles them.

pub mod account;
pub mod admin;
pub mod app_credentials;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod erase;
pub mod export;
pub mod favourites;
pub mod identities;
pub mod imports;
pub mod library;
pub mod oidc;
pub mod ops;
pub mod play_queue;
pub mod playlists;
pub mod plays;
pub mod stream;
pub mod subscriptions;
