//! The media pipeline: from a URL (or an uploaded file) to an AAC 256 kbps `.m4a` in a
//! job folder, ready for the object store.
//!
//! - [`source`]: is the URL safe to fetch (SECURITY.md item 16)?
//! - [`ytdlp`]: what is at the URL ([`ytdlp::resolve`]), then fetch its best audio
//!   ([`ytdlp::download`]).
//! - [`ffmpeg`]: is it audio ([`ffmpeg::probe`], SECURITY.md item 18), then
//!   [`ffmpeg::transcode`].
//! - [`Pipeline`] runs them in order inside a per-job temporary folder ([`JobDir`]) that
//!   is removed when the result is dropped, whatever happened.
//!
//! Every failure is a [`MediaError`]: permanent ones (the source is the problem: retrying
//! will not help) and transient ones (network, timeouts, the machine), each with a message
//! a person can read.

pub mod ffmpeg;
mod process;
pub mod source;
pub mod ytdlp;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ffmpeg::{MediaInfo, TrackTags};
pub use source::{check_source_url, SourceUrl};
pub use ytdlp::SourceInfo;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    // Permanent: the request or the source is the problem.
    #[error("this link cannot be imported: {reason}")]
    UnsupportedUrl { reason: String },
    #[error(
        "this link points to {kind} ({}), which is not allowed",
        host_is(host, addr)
    )]
    PrivateAddress {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
    #[error("the source is not available: {reason}")]
    Unavailable { reason: String },
    #[error("the track is too long: {} (the limit is {})", hms(*duration), hms(*max))]
    TooLong { duration: Duration, max: Duration },
    #[error("the file is too big{} (the limit is {})", size.map(|s| format!(": {}", mib(s))).unwrap_or_default(), mib(*max))]
    TooBig { size: Option<u64>, max: u64 },
    #[error("the file is not usable audio: {reason}")]
    CorruptMedia { reason: String },
    // Transient: worth another try later.
    #[error("network problem while fetching the source: {reason}")]
    Network { reason: String },
    #[error("the {stage} step took longer than {}s and was stopped", after.as_secs())]
    Timeout {
        stage: &'static str,
        after: Duration,
    },
    #[error("{tool} failed: {reason}")]
    Tool { tool: &'static str, reason: String },
}

fn host_is(host: &str, addr: &IpAddr) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare == addr.to_string() {
        bare.to_owned()
    } else {
        format!("{host} is {addr}")
    }
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

impl MediaError {
    /// Retrying cannot help: fail the job now with this message.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedUrl { .. }
                | Self::PrivateAddress { .. }
                | Self::Unavailable { .. }
                | Self::TooLong { .. }
                | Self::TooBig { .. }
                | Self::CorruptMedia { .. }
        )
    }

    /// A stable machine-readable name (for API error codes and metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedUrl { .. } => "unsupported_url",
            Self::PrivateAddress { .. } => "private_address",
            Self::Unavailable { .. } => "unavailable",
            Self::TooLong { .. } => "too_long",
            Self::TooBig { .. } => "too_big",
            Self::CorruptMedia { .. } => "corrupt_media",
            Self::Network { .. } => "network",
            Self::Timeout { .. } => "timeout",
            Self::Tool { .. } => "tool_failed",
        }
    }
}

/// What an import may be.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `IMPORT_MAX_DURATION_S`.
    pub max_duration: Duration,
    /// Largest download (or upload) accepted.
    pub max_download_bytes: u64,
    /// yt-dlp's `--socket-timeout`.
    pub socket_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_duration: Duration::from_secs(60 * 60),
            max_download_bytes: 300 << 20,
            socket_timeout: Duration::from_secs(30),
        }
    }
}

impl Limits {
    pub fn check_duration(&self, duration: Duration) -> Result<(), MediaError> {
        if duration > self.max_duration {
            return Err(MediaError::TooLong {
                duration,
                max: self.max_duration,
            });
        }
        Ok(())
    }

    pub fn check_size(&self, size: u64) -> Result<(), MediaError> {
        if size > self.max_download_bytes {
            return Err(MediaError::TooBig {
                size: Some(size),
                max: self.max_download_bytes,
            });
        }
        Ok(())
    }
}

/// Where yt-dlp, ffmpeg and ffprobe are.
#[derive(Clone, Debug)]
pub struct Tools {
    pub yt_dlp: PathBuf,
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Tools {
    /// Finds each tool: the folder of scripts/install-deps.sh first
    /// (`$JUKEBOX_TOOLS_DIR/bin`, default `~/.local/share/jukebox/tools/bin`, where a
    /// current yt-dlp lives), then `PATH`.
    pub fn discover() -> Result<Self, MediaError> {
        let find = |name: &'static str| {
            find_tool(name).ok_or_else(|| MediaError::Tool {
                tool: name,
                reason: format!(
                    "{name} was not found in the tools folder or on PATH; run scripts/install-deps.sh"
                ),
            })
        };
        Ok(Self {
            yt_dlp: find("yt-dlp")?,
            ffmpeg: find("ffmpeg")?,
            ffprobe: find("ffprobe")?,
        })
    }
}

/// `$JUKEBOX_TOOLS_DIR/bin/<name>` (default `~/.local/share/jukebox/tools/bin/<name>`),
/// else the first `<name>` on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let tools = std::env::var_os("JUKEBOX_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share/jukebox/tools"))
        });
    tools
        .map(|dir| dir.join("bin").join(name))
        .filter(|p| p.is_file())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Resolving,
    Downloading,
    Transcoding,
}

/// Live progress: a stage and how far it is, 0 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub stage: Stage,
    pub percent: u8,
}

/// A job's own temporary folder, removed when dropped (on success, on error, on panic,
/// and when the job's future is cancelled). Only a killed process leaves one behind:
/// [`JobDir::sweep`] removes those at start-up.
#[derive(Debug)]
pub struct JobDir(tempfile::TempDir);

impl JobDir {
    const PREFIX: &'static str = "jukebox-job-";

    /// A new folder under `base` (the system temp folder when `None`).
    pub fn new(base: Option<&Path>) -> Result<Self, MediaError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(Self::PREFIX);
        let dir = match base {
            Some(base) => std::fs::create_dir_all(base).and_then(|()| builder.tempdir_in(base)),
            None => builder.tempdir(),
        };
        dir.map(Self).map_err(|e| MediaError::Tool {
            tool: "pipeline",
            reason: format!("creating a job folder: {e}"),
        })
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Removes job folders under `base` left by a process that was killed, if they are
    /// older than `older_than` (so a running job of another process is left alone).
    /// Returns how many were removed.
    pub fn sweep(base: &Path, older_than: Duration) -> std::io::Result<usize> {
        let mut removed = 0;
        let entries = match std::fs::read_dir(base) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let stale = entry
                .file_name()
                .to_string_lossy()
                .starts_with(Self::PREFIX)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > older_than);
            if stale && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub tools: Tools,
    pub limits: Limits,
    /// `IMPORT_ALLOW_PRIVATE_NETWORKS`: skip the address check (tests, home networks).
    pub allow_private_networks: bool,
    /// Parent of the job folders (the system temp folder when `None`).
    pub work_dir: Option<PathBuf>,
    pub resolve_timeout: Duration,
    pub download_timeout: Duration,
    pub probe_timeout: Duration,
    pub transcode_timeout: Duration,
}

impl PipelineConfig {
    pub fn new(tools: Tools) -> Self {
        Self {
            tools,
            limits: Limits::default(),
            allow_private_networks: false,
            work_dir: None,
            resolve_timeout: Duration::from_secs(60),
            download_timeout: Duration::from_secs(30 * 60),
            probe_timeout: Duration::from_secs(30),
            transcode_timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// A transcoded track waiting in its job folder. Dropping it removes the folder.
#[derive(Debug)]
pub struct PreparedTrack {
    /// The `.m4a`, inside [`dir`](Self::dir).
    pub path: PathBuf,
    /// ffprobe's view of the output.
    pub output: MediaInfo,
    /// ffprobe's view of what was downloaded or uploaded.
    pub input: MediaInfo,
    /// The tags written into the output.
    pub tags: TrackTags,
    /// The cover as a JPEG of its own (at most [`ffmpeg::COVER_MAX_SIDE`] px), inside
    /// [`dir`](Self::dir), when the output has one.
    pub cover: Option<PathBuf>,
    /// What yt-dlp said about the source (`None` for uploads).
    pub source: Option<SourceInfo>,
    pub dir: JobDir,
}

/// yt-dlp + ffprobe + ffmpeg, in a per-job folder.
#[derive(Clone, Debug)]
pub struct Pipeline {
    config: PipelineConfig,
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Checks `url` and asks yt-dlp what it is, without downloading it.
    pub async fn resolve(&self, url: &str) -> Result<SourceInfo, MediaError> {
        let url = check_source_url(url, self.config.allow_private_networks).await?;
        ytdlp::resolve(
            &self.config.tools.yt_dlp,
            &url,
            &self.config.limits,
            self.config.resolve_timeout,
        )
        .await
    }

    /// URL -> AAC 256 kbps `.m4a`: check, resolve, download, probe, transcode, probe the
    /// result.
    pub async fn import_url(
        &self,
        url: &str,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PreparedTrack, MediaError> {
        progress(Progress {
            stage: Stage::Resolving,
            percent: 0,
        });
        let source = self.resolve(url).await?;
        self.import_resolved(source, progress).await
    }

    /// [`import_url`](Self::import_url) for a source already resolved.
    pub async fn import_resolved(
        &self,
        source: SourceInfo,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PreparedTrack, MediaError> {
        let dir = JobDir::new(self.config.work_dir.as_deref())?;
        progress(Progress {
            stage: Stage::Downloading,
            percent: 0,
        });
        // A site's thumbnail is one more fetch of a URL the page chose. For direct links
        // (the generic extractor) that URL comes from whoever serves the page, so only
        // known sites get one; a direct file keeps the cover embedded in it.
        let fetch_thumbnail = !source.extractor.eq_ignore_ascii_case("generic");
        let downloaded = ytdlp::download(
            &self.config.tools.yt_dlp,
            Some(&self.config.tools.ffmpeg),
            &source,
            dir.path(),
            &self.config.limits,
            fetch_thumbnail,
            self.config.download_timeout,
            progress,
        )
        .await?;
        let input = self.probe(&downloaded.audio).await?;
        let tags = TrackTags {
            // Tags in the file first (a direct link's title is only its file name),
            // then what the site says.
            title: input
                .tag("title")
                .map(str::to_owned)
                .or_else(|| source.title.clone()),
            artist: input
                .tag("artist")
                .or(input.tag("album_artist"))
                .map(str::to_owned)
                .or_else(|| source.artist.clone()),
            album: input
                .tag("album")
                .map(str::to_owned)
                .or_else(|| source.album.clone()),
        };
        let cover = match (&input.cover_stream, &downloaded.thumbnail) {
            (Some(stream), _) => Some(ffmpeg::Cover::Embedded(stream)),
            (None, Some(image)) => Some(ffmpeg::Cover::File(image)),
            (None, None) => None,
        };
        let (path, output) = self
            .transcode(&downloaded.audio, &input, &tags, cover, &dir, progress)
            .await?;
        let cover = self.cover_image(&path, &output, &dir).await;
        Ok(PreparedTrack {
            path,
            output,
            input,
            tags,
            cover,
            source: Some(source),
            dir,
        })
    }

    /// An uploaded file -> AAC 256 kbps `.m4a`. The file is probed first; anything that is
    /// not audio is refused with [`MediaError::CorruptMedia`].
    pub async fn import_file(
        &self,
        file: &Path,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PreparedTrack, MediaError> {
        let size = tokio::fs::metadata(file)
            .await
            .map_err(|e| MediaError::Tool {
                tool: "pipeline",
                reason: format!("reading the upload: {e}"),
            })?
            .len();
        self.config.limits.check_size(size)?;
        let dir = JobDir::new(self.config.work_dir.as_deref())?;
        let input = self.probe(file).await?;
        let tags = TrackTags {
            title: input.tag("title").map(str::to_owned),
            artist: input
                .tag("artist")
                .or(input.tag("album_artist"))
                .map(str::to_owned),
            album: input.tag("album").map(str::to_owned),
        };
        let cover = input.cover_stream.as_ref().map(ffmpeg::Cover::Embedded);
        let (path, output) = self
            .transcode(file, &input, &tags, cover, &dir, progress)
            .await?;
        let cover = self.cover_image(&path, &output, &dir).await;
        Ok(PreparedTrack {
            path,
            output,
            input,
            tags,
            cover,
            source: None,
            dir,
        })
    }

    /// ffprobe, and the duration limit.
    pub async fn probe(&self, file: &Path) -> Result<MediaInfo, MediaError> {
        let info =
            ffmpeg::probe(&self.config.tools.ffprobe, file, self.config.probe_timeout).await?;
        self.config.limits.check_duration(info.duration)?;
        Ok(info)
    }

    /// The transcoded track's cover as a JPEG file in the job folder. A picture that
    /// will not convert costs the track its cover image, not the import: the audio is
    /// what was asked for.
    async fn cover_image(&self, track: &Path, output: &MediaInfo, dir: &JobDir) -> Option<PathBuf> {
        let stream = output.cover_stream.as_ref()?;
        let path = dir.path().join("cover.jpg");
        match ffmpeg::extract_cover(
            &self.config.tools.ffmpeg,
            track,
            stream,
            &path,
            self.config.probe_timeout,
        )
        .await
        {
            Ok(()) => Some(path),
            Err(error) => {
                tracing::warn!(%error, "the cover could not be stored as an image");
                None
            }
        }
    }

    async fn transcode(
        &self,
        input_path: &Path,
        input: &MediaInfo,
        tags: &TrackTags,
        cover: Option<ffmpeg::Cover<'_>>,
        dir: &JobDir,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(PathBuf, MediaInfo), MediaError> {
        progress(Progress {
            stage: Stage::Transcoding,
            percent: 0,
        });
        let path = dir.path().join("track.m4a");
        ffmpeg::transcode(
            &self.config.tools.ffmpeg,
            input_path,
            input,
            &path,
            tags,
            cover,
            self.config.transcode_timeout,
            progress,
        )
        .await?;
        let output = ffmpeg::probe(&self.config.tools.ffprobe, &path, self.config.probe_timeout)
            .await
            .map_err(|e| MediaError::CorruptMedia {
                reason: format!("the converted file is unreadable ({e})"),
            })?;
        // A file whose header promised minutes but whose data decodes to a fraction of
        // that is damaged: do not store a stub.
        let promised = input.duration.as_secs_f64();
        let got = output.duration.as_secs_f64();
        if got < promised * 0.5 - 1.0 {
            return Err(MediaError::CorruptMedia {
                reason: format!("only {got:.0}s of the {promised:.0}s of audio could be decoded"),
            });
        }
        Ok((path, output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences() {
        let too_long = MediaError::TooLong {
            duration: Duration::from_secs(3725),
            max: Duration::from_secs(3600),
        };
        assert_eq!(
            too_long.to_string(),
            "the track is too long: 1:02:05 (the limit is 1:00:00)"
        );
        let too_big = MediaError::TooBig {
            size: Some(3 << 20),
            max: 1 << 20,
        };
        assert_eq!(
            too_big.to_string(),
            "the file is too big: 3.0 MiB (the limit is 1.0 MiB)"
        );
        let private = MediaError::PrivateAddress {
            host: "intranet.example".into(),
            addr: "10.0.0.5".parse().unwrap(),
            kind: "a private network address",
        };
        assert_eq!(
            private.to_string(),
            "this link points to a private network address (intranet.example is 10.0.0.5), which is not allowed"
        );
        let literal = MediaError::PrivateAddress {
            host: "[::1]".into(),
            addr: "::1".parse().unwrap(),
            kind: "a loopback address",
        };
        assert_eq!(
            literal.to_string(),
            "this link points to a loopback address (::1), which is not allowed"
        );
        let unknown_size = MediaError::TooBig {
            size: None,
            max: 20 * 1024,
        };
        assert_eq!(
            unknown_size.to_string(),
            "the file is too big (the limit is 20 KiB)"
        );
        assert!(too_long.is_permanent() && too_big.is_permanent() && private.is_permanent());
        let timeout = MediaError::Timeout {
            stage: "download",
            after: Duration::from_secs(1800),
        };
        assert!(!timeout.is_permanent());
        assert_eq!(timeout.code(), "timeout");
    }

    #[test]
    fn job_folders_go_away_when_dropped_and_leftovers_are_swept() {
        let base = tempfile::tempdir().unwrap();
        let job = JobDir::new(Some(base.path())).unwrap();
        std::fs::write(job.path().join("source.mp3"), b"x").unwrap();
        let path = job.path().to_owned();
        drop(job);
        assert!(!path.exists());

        // What a killed process leaves behind, next to something that is not ours.
        let leftover = base.path().join("jukebox-job-dead");
        std::fs::create_dir_all(leftover.join("inner")).unwrap();
        let other = base.path().join("not-a-job");
        std::fs::create_dir(&other).unwrap();
        assert_eq!(
            JobDir::sweep(base.path(), Duration::from_secs(3600)).unwrap(),
            0
        );
        assert!(leftover.exists());
        assert_eq!(JobDir::sweep(base.path(), Duration::ZERO).unwrap(), 1);
        assert!(!leftover.exists() && other.exists());
    }
}
