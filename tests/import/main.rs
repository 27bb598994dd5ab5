//! Import integration tests (issue 4) against the real Postgres, NATS JetStream,
//! yt-dlp, ffmpeg and s3s-fs, with test tones served from loopback. The only fake is the
//! YouTube Data API (a loopback axum server). Every test gets its own database, NATS
//! namespace, object store and work folder.

mod admin;
mod collections;
mod crash;
mod erasure;
mod export;
mod failures;
mod flow;
mod library;
mod long_lists;
mod music;
mod playlists;
mod quotas;
mod read_your_writes;
mod search;
mod shared;
mod stream;
mod subscriptions;

use jukebox_test_support::{imports as helpers, media};
