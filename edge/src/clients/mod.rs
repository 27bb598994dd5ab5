//! Clients of services outside Jukebox.

pub mod youtube;
