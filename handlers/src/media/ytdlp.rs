//! yt-dlp in two steps: [`resolve`] asks what a URL is (`-J`, no download) so a job can
//! be refused early (too long, live, a playlist) and two requests for one source can be
//! recognised; [`download`] fetches its best audio from the resolved info
//! (`--load-info-json`, no second extraction) with progress on stdout.
//!
//! Always: `--ignore-config` (no user or system config can add options), `--no-playlist`,
//! the URL only after `--`, an argument array and never a shell.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jukebox_domain::metadata::SourceFields;
use serde::Deserialize;

use super::process::{self, Stdout};
use super::source::SourceUrl;
use super::{Limits, MediaError, Progress, Stage};

const FORMAT: &str = "bestaudio/best";
const PROGRESS_PREFIX: &str = "jukebox-progress ";
const PROGRESS_TEMPLATE: &str = "download:jukebox-progress %(progress.downloaded_bytes)s %(progress.total_bytes)s %(progress.total_bytes_estimate)s";

/// What yt-dlp says a URL is, before anything is downloaded.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceInfo {
    /// yt-dlp's extractor (`Youtube`, `Generic`, ...).
    pub extractor: String,
    /// The id within that extractor (a YouTube video id, a file name for `Generic`).
    pub id: String,
    pub title: Option<String>,
    /// Artist when the site knows one, else the channel or uploader.
    pub artist: Option<String>,
    pub album: Option<String>,
    pub duration: Option<Duration>,
    pub webpage_url: String,
    pub thumbnail: Option<String>,
    /// Size of the chosen format, exact or approximate, when the site tells.
    pub filesize: Option<u64>,
    /// The site's fields as it gives them, for `metadata::clean` (issue 18).
    pub fields: SourceFields,
    /// The full `-J` document, which [`download`] hands back to yt-dlp.
    pub(crate) raw: Vec<u8>,
}

impl SourceInfo {
    /// A stable name for the source, the same for every user who asks for it:
    /// `yt:<video id>` for YouTube, `<extractor>:<id>` for other sites, and
    /// `url:<first 16 bytes of sha256(url), hex>` for direct links (the generic
    /// extractor's id is only a file name).
    pub fn source_id(&self) -> String {
        match self.extractor.to_ascii_lowercase().as_str() {
            "youtube" => format!("yt:{}", self.id),
            "generic" => jukebox_domain::TrackId::of_direct_link(&self.webpage_url).to_string(),
            other => format!("{other}:{}", self.id),
        }
    }
}

#[derive(Deserialize)]
struct InfoJson {
    #[serde(rename = "_type")]
    kind: Option<String>,
    id: Option<String>,
    extractor_key: Option<String>,
    extractor: Option<String>,
    title: Option<String>,
    track: Option<String>,
    artist: Option<String>,
    creator: Option<String>,
    channel: Option<String>,
    uploader: Option<String>,
    album: Option<String>,
    artists: Option<Vec<String>>,
    release_year: Option<i64>,
    duration: Option<f64>,
    is_live: Option<bool>,
    live_status: Option<String>,
    webpage_url: Option<String>,
    thumbnail: Option<String>,
    filesize: Option<f64>,
    filesize_approx: Option<f64>,
}

fn common_args(limits: &Limits) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--ignore-config",
        "--no-playlist",
        "--no-cache-dir",
        "--color",
        "never",
        "--socket-timeout",
    ]
    .into_iter()
    .map(OsString::from)
    .chain([limits.socket_timeout.as_secs().max(1).to_string().into()])
    .chain(["-f".into(), FORMAT.into()])
    .collect();
    if let Some(egress) = &limits.egress {
        args.extend(["--proxy".into(), egress.url().into()]);
    }
    args
}

/// Asks yt-dlp what `url` is. Refuses playlists, live streams, and sources longer than
/// the limit when their length is known up front.
pub async fn resolve(
    yt_dlp: &Path,
    url: &SourceUrl,
    limits: &Limits,
    timeout: Duration,
) -> Result<SourceInfo, MediaError> {
    let mut args = common_args(limits);
    args.extend([
        "--dump-single-json".into(),
        "--".into(),
        url.as_str().into(),
    ]);
    let done = process::run(
        "yt-dlp",
        "resolve",
        yt_dlp,
        args,
        timeout,
        Stdout::Collect(64 << 20),
    )
    .await?;
    if !done.status.success() {
        return Err(classify_error(&done.stderr));
    }
    let info: InfoJson = serde_json::from_slice(&done.stdout).map_err(|e| MediaError::Tool {
        tool: "yt-dlp",
        reason: format!("unreadable yt-dlp output: {e}"),
    })?;
    if matches!(info.kind.as_deref(), Some("playlist" | "multi_video")) {
        return Err(MediaError::UnsupportedUrl {
            reason: "this link is a playlist or channel; import it whole from the import box (POST /imports/collections/preview, then /confirm)".into(),
        });
    }
    if info.is_live == Some(true)
        || matches!(info.live_status.as_deref(), Some("is_live" | "is_upcoming"))
    {
        return Err(MediaError::UnsupportedUrl {
            reason: "live streams and upcoming premieres cannot be imported".into(),
        });
    }
    let duration = info
        .duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(Duration::from_secs_f64);
    if let Some(duration) = duration {
        limits.check_duration(duration)?;
    }
    let filesize = info
        .filesize
        .or(info.filesize_approx)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| s as u64);
    if let Some(size) = filesize {
        limits.check_size(size)?;
    }
    Ok(source_info(
        info,
        url.as_str(),
        duration,
        filesize,
        done.stdout,
    ))
}

/// yt-dlp's `-J` document as a [`SourceInfo`].
fn source_info(
    info: InfoJson,
    url: &str,
    duration: Option<Duration>,
    filesize: Option<u64>,
    raw: Vec<u8>,
) -> SourceInfo {
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let fields = SourceFields {
        title: non_empty(info.title.clone()),
        track: non_empty(info.track.clone()),
        artists: info.artists.clone().unwrap_or_default(),
        artist: non_empty(info.artist.clone()).or(non_empty(info.creator.clone())),
        album: non_empty(info.album.clone()),
        release_year: info.release_year.and_then(|y| i32::try_from(y).ok()),
        channel: non_empty(info.channel.clone()).or(non_empty(info.uploader.clone())),
    };
    SourceInfo {
        extractor: info
            .extractor_key
            .or(info.extractor)
            .unwrap_or_else(|| "unknown".into()),
        id: info.id.unwrap_or_default(),
        title: non_empty(info.track).or(non_empty(info.title)),
        artist: non_empty(info.artist)
            .or(non_empty(info.creator))
            .or(non_empty(info.channel))
            .or(non_empty(info.uploader)),
        album: non_empty(info.album),
        duration,
        webpage_url: info.webpage_url.unwrap_or_else(|| url.to_owned()),
        thumbnail: non_empty(info.thumbnail),
        filesize,
        fields,
        raw,
    }
}

/// What [`download`] left in the job folder.
#[derive(Clone, Debug)]
pub struct Downloaded {
    pub audio: PathBuf,
    /// The site's thumbnail as JPEG, when asked for and there was one.
    pub thumbnail: Option<PathBuf>,
}

/// Downloads the best audio of a resolved source into `dir` (the job's own folder).
/// Refuses to go past `limits.max_download_bytes`, both through `--max-filesize` and by
/// killing yt-dlp when its progress passes the limit.
#[allow(clippy::too_many_arguments)]
pub async fn download(
    yt_dlp: &Path,
    ffmpeg: Option<&Path>,
    source: &SourceInfo,
    dir: &Path,
    limits: &Limits,
    fetch_thumbnail: bool,
    timeout: Duration,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Downloaded, MediaError> {
    let info_path = dir.join("source.info.json");
    tokio::fs::write(&info_path, &source.raw)
        .await
        .map_err(|e| MediaError::Tool {
            tool: "yt-dlp",
            reason: format!("writing {}: {e}", info_path.display()),
        })?;
    let mut args = common_args(limits);
    args.extend([
        "--load-info-json".into(),
        info_path.clone().into(),
        "--max-filesize".into(),
        limits.max_download_bytes.to_string().into(),
        "--no-mtime".into(),
        "--restrict-filenames".into(),
        "--newline".into(),
        "--progress".into(),
        "--progress-template".into(),
        PROGRESS_TEMPLATE.into(),
        "-o".into(),
        dir.join("source.%(ext)s").into(),
    ]);
    if let Some(ffmpeg) = ffmpeg {
        args.extend(["--ffmpeg-location".into(), ffmpeg.into()]);
    }
    if fetch_thumbnail {
        let mut template = OsString::from("thumbnail:");
        template.push(dir.join("cover.%(ext)s"));
        args.extend([
            "--write-thumbnail".into(),
            "--convert-thumbnails".into(),
            "jpg".into(),
            "-o".into(),
            template,
        ]);
    }

    let max = limits.max_download_bytes;
    let mut too_big = false;
    let mut last = None;
    let mut on_line = |line: &str| {
        if let Some(rest) = line.strip_prefix(PROGRESS_PREFIX) {
            let (done, total) = parse_progress(rest);
            if let Some(done) = done {
                if done > max {
                    return Err(MediaError::TooBig {
                        size: total.or(Some(done)),
                        max,
                    });
                }
                if let Some(total) = total.filter(|t| *t > 0) {
                    let percent = (done.saturating_mul(100) / total).min(100) as u8;
                    if last != Some(percent) {
                        last = Some(percent);
                        progress(Progress {
                            stage: Stage::Downloading,
                            percent,
                        });
                    }
                }
            }
        } else if line.contains("larger than max-filesize") {
            too_big = true;
        }
        Ok(())
    };
    let done = process::run(
        "yt-dlp",
        "download",
        yt_dlp,
        args,
        timeout,
        Stdout::Lines(&mut on_line),
    )
    .await?;
    if too_big {
        return Err(MediaError::TooBig {
            size: None,
            max: limits.max_download_bytes,
        });
    }
    if !done.status.success() {
        return Err(classify_error(&done.stderr));
    }
    let audio = find_output(dir, "source.", |name| {
        !(name.ends_with(".part") || name.ends_with(".ytdl") || name.ends_with(".json"))
    })
    .await?
    .ok_or_else(|| MediaError::Tool {
        tool: "yt-dlp",
        reason: "yt-dlp finished without leaving a file".into(),
    })?;
    let size = tokio::fs::metadata(&audio)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    limits.check_size(size)?;
    let thumbnail = find_output(dir, "cover.", |name| name.ends_with(".jpg")).await?;
    Ok(Downloaded { audio, thumbnail })
}

async fn find_output(
    dir: &Path,
    prefix: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Option<PathBuf>, MediaError> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| MediaError::Tool {
            tool: "yt-dlp",
            reason: format!("listing {}: {e}", dir.display()),
        })?;
    while let Ok(Some(entry)) = entries.next_entry().await {
        if let Some(name) = entry.file_name().to_str() {
            if name.starts_with(prefix) && keep(name) {
                return Ok(Some(entry.path()));
            }
        }
    }
    Ok(None)
}

/// `<downloaded> <total> <estimate>` with `NA` for unknowns -> (downloaded, total or
/// estimate).
fn parse_progress(rest: &str) -> (Option<u64>, Option<u64>) {
    let mut fields = rest.split_whitespace().map(|f| {
        f.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64)
    });
    let done = fields.next().flatten();
    let total = fields.next().flatten();
    let estimate = fields.next().flatten();
    (done, total.or(estimate))
}

/// Turns yt-dlp's last `ERROR:` line into a permanent or a transient error.
pub(crate) fn classify_error(stderr: &str) -> MediaError {
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ERROR:"))
        .or_else(|| stderr.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .unwrap_or("yt-dlp failed without a message")
        .trim();
    // "[generic] tone: Unable to download webpage: HTTP Error 404: Not Found (caused by
    // <HTTPError ...>)": keep what a person can read.
    let mut reason = line;
    if reason.starts_with('[') {
        if let Some((_, rest)) = reason.split_once("] ") {
            reason = rest;
            // Then "<id>: " when yt-dlp knew the id.
            if let Some((id, rest)) = reason.split_once(": ") {
                if !id.contains(' ') {
                    reason = rest;
                }
            }
        }
    }
    if let Some((before, _)) = reason.split_once(" (caused by ") {
        reason = before;
    }
    let reason = reason.trim().to_owned();
    let has = |needle: &str| line.contains(needle);
    // The egress proxy's one answer for a refused address, a closed port, a timeout or an
    // unknown name: the job says the same for all of them.
    if has(super::egress::UNREACHABLE) {
        return MediaError::Network {
            reason: "the source could not be reached".into(),
        };
    }
    if has("Unsupported URL") || has("is not a valid URL") {
        return MediaError::UnsupportedUrl {
            reason: "no audio could be found at this link".into(),
        };
    }
    if has("HTTP Error 404")
        || has("HTTP Error 410")
        || has("HTTP Error 401")
        || has("HTTP Error 403")
        || has("HTTP Error 451")
        || has("Video unavailable")
        || has("Private video")
        || has("not available")
        || has("unavailable")
        || has("has been removed")
        || has("Sign in to confirm")
        || has("members-only")
        || has("copyright")
        || has("Requested format is not available")
        || has("This live event")
    {
        return MediaError::Unavailable { reason };
    }
    if has("timed out") || has("Timeout") {
        return MediaError::Network { reason };
    }
    if has("HTTP Error 5")
        || has("HTTP Error 429")
        || has("Connection refused")
        || has("Connection reset")
        || has("Temporary failure in name resolution")
        || has("Name or service not known")
        || has("Network is unreachable")
        || has("TransportError")
        || has("Unable to download")
    {
        return MediaError::Network { reason };
    }
    MediaError::Tool {
        tool: "yt-dlp",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_parsed() {
        assert_eq!(parse_progress("1024 97327 NA"), (Some(1024), Some(97327)));
        assert_eq!(parse_progress("1024 NA 5000.5"), (Some(1024), Some(5000)));
        assert_eq!(parse_progress("NA NA NA"), (None, None));
    }

    #[test]
    fn yt_dlp_errors_are_sorted_into_permanent_and_transient() {
        let cases = [
            (
                "ERROR: [generic] missing: Unable to download webpage: HTTP Error 404: File not found (caused by <HTTPError 404: File not found>)",
                true,
                "HTTP Error 404: File not found",
            ),
            (
                "WARNING: x\nERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
                true,
                "Video unavailable",
            ),
            ("ERROR: Unsupported URL: https://example.com/", true, "no audio could be found"),
            (
                "ERROR: [generic] x: Unable to download webpage: [Errno 111] Connection refused (caused by TransportError('[Errno 111] Connection refused'))",
                false,
                "Connection refused",
            ),
            ("ERROR: [youtube] abc: HTTP Error 503: Service Unavailable", false, "503"),
            ("ERROR: [youtube] abc: Read timed out.", false, "timed out"),
            ("Traceback (most recent call last):\nKeyError: 'x'", false, "KeyError"),
        ];
        for (stderr, permanent, text) in cases {
            let err = classify_error(stderr);
            assert_eq!(err.is_permanent(), permanent, "{stderr}: {err:?}");
            assert!(err.to_string().contains(text), "{stderr}: {err}");
            assert!(!err.to_string().contains("caused by"), "{err}");
        }
    }

    /// yt-dlp's `-J` shapes (fields as yt-dlp 2025 writes them; the rest ignored), read
    /// into fields and cleaned as the pipeline does.
    #[test]
    fn info_json_fields_are_read_and_cleaned() {
        let music = r#"{"_type": "video", "id": "abc123def45", "extractor": "youtube",
            "extractor_key": "Youtube", "webpage_url": "https://www.youtube.com/watch?v=abc123def45",
            "title": "Get Lucky (feat. Pharrell Williams and Nile Rodgers)",
            "track": "Get Lucky", "artists": ["Daft Punk", "Pharrell Williams", "Nile Rodgers"],
            "artist": "Daft Punk, Pharrell Williams, Nile Rodgers", "creators": ["Daft Punk"],
            "album": "Random Access Memories", "release_year": 2013, "release_date": null,
            "channel": "Daft Punk - Topic", "uploader": "Daft Punk - Topic", "duration": 369,
            "formats": [{"format_id": "251", "acodec": "opus"}], "tags": ["daft punk"]}"#;
        let vevo = r#"{"_type": "video", "id": "YQHsXMglC9A", "extractor_key": "Youtube",
            "title": "Adele - Hello (Official Music Video)", "channel": "AdeleVEVO",
            "uploader": "AdeleVEVO", "duration": 367.0, "track": null, "artists": null}"#;
        let read = |json: &str| {
            let info: InfoJson = serde_json::from_str(json).unwrap();
            source_info(
                info,
                "https://www.youtube.com/watch",
                None,
                None,
                Vec::new(),
            )
        };
        let info = read(music);
        assert_eq!(
            info.fields,
            SourceFields {
                title: Some("Get Lucky (feat. Pharrell Williams and Nile Rodgers)".into()),
                track: Some("Get Lucky".into()),
                artists: vec![
                    "Daft Punk".into(),
                    "Pharrell Williams".into(),
                    "Nile Rodgers".into()
                ],
                artist: Some("Daft Punk, Pharrell Williams, Nile Rodgers".into()),
                album: Some("Random Access Memories".into()),
                release_year: Some(2013),
                channel: Some("Daft Punk - Topic".into()),
            }
        );
        let clean = jukebox_domain::metadata::clean(&info.fields);
        assert_eq!(clean.title, "Get Lucky");
        assert_eq!(
            clean.artists,
            ["Daft Punk", "Pharrell Williams", "Nile Rodgers"]
        );
        assert_eq!(
            (clean.album.as_deref(), clean.year),
            (Some("Random Access Memories"), Some(2013))
        );
        let clean = jukebox_domain::metadata::clean(&read(vevo).fields);
        assert_eq!(
            (clean.title.as_str(), clean.artists),
            ("Hello", vec!["Adele".to_owned()])
        );
        assert_eq!((clean.album, clean.year), (None, None));
    }

    #[test]
    fn source_ids_name_the_source_not_the_request() {
        let info = |extractor: &str, id: &str, url: &str| SourceInfo {
            extractor: extractor.into(),
            id: id.into(),
            title: None,
            artist: None,
            album: None,
            duration: None,
            webpage_url: url.into(),
            thumbnail: None,
            filesize: None,
            fields: SourceFields::default(),
            raw: Vec::new(),
        };
        assert_eq!(
            info(
                "Youtube",
                "dQw4w9WgXcQ",
                "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
            )
            .source_id(),
            "yt:dQw4w9WgXcQ"
        );
        assert_eq!(
            info("Vimeo", "76979871", "https://vimeo.com/76979871").source_id(),
            "vimeo:76979871"
        );
        let a = info("Generic", "song", "https://a.example/song.mp3").source_id();
        let b = info("Generic", "song", "https://b.example/song.mp3").source_id();
        assert!(a.starts_with("url:") && a.len() == 4 + 32, "{a}");
        assert_ne!(a, b);
    }
}

/// One result of a yt-dlp `ytsearch`.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchEntry {
    pub video_id: String,
    pub title: String,
    pub channel: Option<String>,
    pub duration: Option<Duration>,
    pub thumbnail: Option<String>,
}

/// Searches YouTube through yt-dlp (`ytsearch<N>:<query>`, flat: no video page is
/// fetched), for installations without a YouTube Data API key. The query goes after
/// `--` as one argument, so it can never become an option.
pub async fn search(
    yt_dlp: &Path,
    query: &str,
    limit: usize,
    socket_timeout: Duration,
    timeout: Duration,
) -> Result<Vec<SearchEntry>, MediaError> {
    let args: Vec<OsString> = [
        "--ignore-config",
        "--no-cache-dir",
        "--color",
        "never",
        "--flat-playlist",
        "--dump-single-json",
        "--socket-timeout",
    ]
    .into_iter()
    .map(OsString::from)
    .chain([
        socket_timeout.as_secs().max(1).to_string().into(),
        "--".into(),
        format!("ytsearch{}:{query}", limit.clamp(1, 50)).into(),
    ])
    .collect();
    let done = process::run(
        "yt-dlp",
        "search",
        yt_dlp,
        args,
        timeout,
        Stdout::Collect(16 << 20),
    )
    .await?;
    if !done.status.success() {
        return Err(classify_error(&done.stderr));
    }
    #[derive(Deserialize)]
    struct Flat {
        entries: Option<Vec<FlatEntry>>,
    }
    #[derive(Deserialize)]
    struct FlatEntry {
        id: Option<String>,
        title: Option<String>,
        channel: Option<String>,
        uploader: Option<String>,
        duration: Option<f64>,
        thumbnails: Option<Vec<Thumbnail>>,
    }
    #[derive(Deserialize)]
    struct Thumbnail {
        url: Option<String>,
    }
    let flat: Flat = serde_json::from_slice(&done.stdout).map_err(|e| MediaError::Tool {
        tool: "yt-dlp",
        reason: format!("unreadable yt-dlp output: {e}"),
    })?;
    Ok(flat
        .entries
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            Some(SearchEntry {
                video_id: e.id?,
                title: e.title.unwrap_or_default(),
                channel: e.channel.or(e.uploader),
                duration: e
                    .duration
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .map(Duration::from_secs_f64),
                thumbnail: e
                    .thumbnails
                    .and_then(|t| t.into_iter().rev().find_map(|t| t.url)),
            })
        })
        .collect())
}
