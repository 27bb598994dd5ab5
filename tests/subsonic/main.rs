//! The Subsonic side of Jukebox (issue 18): app credentials (`/me/app-credentials`) and
//! the OpenSubsonic API under `/rest`, against the real system (Postgres, NATS, ffmpeg,
//! the object store) and real third-party clients from PyPI (`clients.py`).

mod annotation;
mod api;
mod credentials;
mod playlists;
mod queue;
mod rest;
mod spec;

use jukebox_test_support::imports as helpers;
