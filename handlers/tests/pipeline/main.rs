//! The media pipeline against real components: yt-dlp, ffprobe and ffmpeg on media
//! served from loopback. (The object-store contract is in `storage/tests/contract.rs`.)
//!
//! Needs yt-dlp and ffmpeg: `scripts/install-deps.sh` installs them.

mod egress;
mod media;
