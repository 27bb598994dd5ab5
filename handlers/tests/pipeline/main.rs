//! The import pipeline's building blocks against real components: the object store
//! contract on a local folder and on a real S3 server (s3s-fs), and the media pipeline
//! with real yt-dlp, ffprobe and ffmpeg on media served from loopback.
//!
//! Needs s3s-fs, yt-dlp and ffmpeg: `scripts/install-deps.sh` installs them.

mod media;
mod store;
mod support;
