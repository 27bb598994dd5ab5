//! The media pipeline: from a URL (or an uploaded file) to an AAC 256 kbps `.m4a` in a
//! job folder, ready for the object store.
//!
//! - [`source`]: is the URL safe to fetch (SECURITY.md item 16)?
//! - [`egress`]: the loopback proxy every connection of the media tools goes through,
//!   which checks the address it connects to (redirects, segments, DNS rebinding).
//! - [`ytdlp`]: what is at the URL ([`ytdlp::resolve`]), then fetch its best audio
//!   ([`ytdlp::download`]).
//! - [`listing`]: what a playlist, channel or feed lists (`--flat-playlist`).
//! - [`ffmpeg`]: is it audio ([`ffmpeg::probe`], SECURITY.md item 18), then
//!   [`ffmpeg::transcode`].
//! - [`Pipeline`] runs them in order inside a per-job temporary folder ([`JobDir`]) that
//!   is removed when the result is dropped, whatever happened.
//!
//! Every failure is a [`MediaError`]: permanent ones (the source is the problem: retrying
//! will not help) and transient ones (network, timeouts, the machine), each with a message
//! a person can read ([`error`]); [`Tools`] finds the programs, [`JobDir`] is the folder
//! ([`job_dir`]), [`pipeline`] holds the limits and the steps' order.

pub mod egress;
pub mod error;
pub mod ffmpeg;
pub mod job_dir;
pub mod listing;
pub mod pipeline;
mod process;
pub mod source;
mod tools;
pub mod ytdlp;

pub use egress::{EgressPolicy, EgressProxy};
pub use error::MediaError;
pub use ffmpeg::{MediaInfo, TrackTags};
pub use job_dir::JobDir;
pub use listing::Listing;
pub use pipeline::{Limits, Pipeline, PipelineConfig, PreparedTrack, Progress, Stage};
pub use source::{check_source_url, SourceUrl};
pub use tools::{find_tool, Tools};
pub use ytdlp::SourceInfo;
