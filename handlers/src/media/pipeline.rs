//! The pipeline itself: resolve, download (or take an upload), probe, transcode, in a
//! job folder, within the configured limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jukebox_domain::metadata::{self, CleanMetadata, SourceFields};

use super::{
    check_source_url, ffmpeg, ytdlp, EgressProxy, JobDir, MediaError, MediaInfo, SourceInfo, Tools,
    TrackTags,
};

/// What an import may be.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `IMPORT_MAX_DURATION_S`.
    pub max_duration: Duration,
    /// Largest download (or upload) accepted.
    pub max_download_bytes: u64,
    /// yt-dlp's `--socket-timeout`.
    pub socket_timeout: Duration,
    /// Where the media tools' connections go (`--proxy`): the egress proxy that checks
    /// every address (ADR 38). `None` only in tests of the tools themselves.
    pub egress: Option<EgressProxy>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_duration: Duration::from_secs(60 * 60),
            max_download_bytes: 300 << 20,
            socket_timeout: Duration::from_secs(30),
            egress: None,
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
    /// Title, artists, album and year, cleaned from the source's fields and the file's
    /// tags (`metadata::clean`, issue 18).
    pub metadata: CleanMetadata,
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

    /// Checks `url` and lists the playlist, channel or feed there (at most `cap`
    /// entries), without fetching any of them.
    pub async fn list(&self, url: &str, cap: usize) -> Result<super::listing::Listing, MediaError> {
        let url = check_source_url(url, self.config.allow_private_networks).await?;
        super::listing::list(
            &self.config.tools.yt_dlp,
            &url,
            cap,
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
        // Tags in the file first (a direct link's title is only its file name), then
        // what the site says.
        let file = file_fields(&input);
        let site = &source.fields;
        let fields = SourceFields {
            title: site.title.clone(),
            track: file.track.or_else(|| site.track.clone()),
            artists: if file.artist.is_some() {
                Vec::new()
            } else {
                site.artists.clone()
            },
            artist: file.artist.or_else(|| site.artist.clone()),
            album: file.album.or_else(|| site.album.clone()),
            release_year: site.release_year.or(file.release_year),
            channel: site.channel.clone(),
        };
        let metadata = metadata::clean(&fields);
        let tags = tags_of(&metadata);
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
            metadata,
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
        let metadata = metadata::clean(&file_fields(&input));
        let tags = tags_of(&metadata);
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
            metadata,
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

/// What a file's own tags say (ffprobe's format tags): `title` names the track, `artist`
/// (or `album_artist`), `album`, and the year of `date` (or `year`).
fn file_fields(input: &MediaInfo) -> SourceFields {
    let tag = |name: &str| {
        input
            .tag(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    SourceFields {
        track: tag("title"),
        artist: tag("artist").or_else(|| tag("album_artist")),
        album: tag("album"),
        release_year: tag("date")
            .or_else(|| tag("year"))
            .and_then(|d| d.get(..4).and_then(|y| y.parse().ok())),
        ..SourceFields::default()
    }
}

/// The tags written into the output: the cleaned metadata, without the placeholders
/// for what nothing named.
fn tags_of(metadata: &CleanMetadata) -> TrackTags {
    let artists = known_artists(metadata);
    TrackTags {
        title: (metadata.title != metadata::UNTITLED).then(|| metadata.title.clone()),
        artist: (!artists.is_empty()).then(|| artists.join(", ")),
        album: metadata.album.clone(),
    }
}

/// The artists, or none when nothing named one.
pub fn known_artists(metadata: &CleanMetadata) -> Vec<String> {
    if metadata.artists == [metadata::UNKNOWN_ARTIST] {
        Vec::new()
    } else {
        metadata.artists.clone()
    }
}
