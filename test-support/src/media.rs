//! Media on loopback: a server for a folder of files (yt-dlp's generic extractor downloads
//! any media URL), test tones made with ffmpeg, and independent checks of what came out
//! (ffprobe's JSON, MP4 boxes, files and processes left behind).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;

pub use crate::tool;

/// A loopback HTTP server that serves the files of one folder under `/media/<name>`, with
/// the Content-Type a web server would send, and counts the requests per file.
pub struct MediaServer {
    pub base: String,
    /// The folder it serves.
    pub dir: PathBuf,
    /// Every request as (name, Range header or "").
    pub log: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct MediaState {
    dir: PathBuf,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

impl MediaServer {
    pub async fn start(dir: &Path) -> Self {
        async fn file(
            State(state): State<MediaState>,
            UrlPath(name): UrlPath<String>,
            headers: HeaderMap,
        ) -> axum::response::Response {
            let range = headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            state.log.lock().unwrap().push((name.clone(), range));
            if name.contains('/') || name.starts_with('.') {
                return StatusCode::NOT_FOUND.into_response();
            }
            let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
                Some("mp3") => "audio/mpeg",
                Some("opus" | "ogg") => "audio/ogg",
                Some("m4a") => "audio/mp4",
                Some("html") => "text/html; charset=utf-8",
                Some("xml") => "application/rss+xml",
                _ => "application/octet-stream",
            };
            match tokio::fs::read(state.dir.join(&name)).await {
                Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
        /// `/flaky/<n>/<name>`: the first `n` requests for it answer 503.
        async fn flaky(
            State(state): State<MediaState>,
            UrlPath((fails, name)): UrlPath<(usize, String)>,
            headers: HeaderMap,
        ) -> axum::response::Response {
            let seen = {
                let mut log = state.log.lock().unwrap();
                let key = format!("flaky/{name}");
                let seen = log.iter().filter(|(n, _)| *n == key).count();
                log.push((key, String::new()));
                seen
            };
            if seen < fails {
                return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response();
            }
            file(State(state), UrlPath(name), headers).await
        }
        /// `/status/<code>/<name>`: always answers `code` (a feed that says 429).
        async fn status(
            State(state): State<MediaState>,
            UrlPath((code, name)): UrlPath<(u16, String)>,
        ) -> axum::response::Response {
            state
                .log
                .lock()
                .unwrap()
                .push((format!("status/{code}/{name}"), String::new()));
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
            (code, [(header::RETRY_AFTER, "3600")], "not now").into_response()
        }
        /// One 4 KiB chunk, chunked (no Content-Length), then nothing for a minute with
        /// the connection open: a server that does not say how big the file is, and stalls.
        async fn stall(
            State(state): State<MediaState>,
            UrlPath(name): UrlPath<String>,
        ) -> axum::response::Response {
            if name.contains('/') || name.starts_with('.') {
                return StatusCode::NOT_FOUND.into_response();
            }
            let Ok(bytes) = tokio::fs::read(state.dir.join(&name)).await else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let pause = Duration::from_secs(60);
            let chunks = futures::stream::unfold(0usize, move |at| {
                let bytes = bytes.clone();
                async move {
                    if at >= bytes.len() {
                        return None;
                    }
                    if at > 0 {
                        tokio::time::sleep(pause).await;
                    }
                    let end = (at + 4096).min(bytes.len());
                    let chunk = bytes::Bytes::copy_from_slice(&bytes[at..end]);
                    Some((Ok::<_, std::io::Error>(chunk), end))
                }
            });
            (
                [(header::CONTENT_TYPE, "audio/mpeg")],
                axum::body::Body::from_stream(chunks),
            )
                .into_response()
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/media/{name}", axum::routing::get(file))
            .route("/flaky/{fails}/{name}", axum::routing::get(flaky))
            .route("/stall/{name}", axum::routing::get(stall))
            .route("/status/{code}/{name}", axum::routing::get(status))
            .with_state(MediaState {
                dir: dir.to_owned(),
                log: log.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            dir: dir.to_owned(),
            log,
            task,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/media/{name}", self.base)
    }

    /// A URL whose first `fails` requests answer 503 (then it serves the file).
    pub fn flaky_url(&self, fails: usize, name: &str) -> String {
        format!("{}/flaky/{fails}/{name}", self.base)
    }

    /// A URL that always answers `code`.
    pub fn status_url(&self, code: u16, name: &str) -> String {
        format!("{}/status/{code}/{name}", self.base)
    }

    /// Writes an RSS feed named `name` whose items are `(title, url, seconds)` in order
    /// (`seconds` as `itunes:duration` when given), and returns its URL: yt-dlp's generic
    /// extractor lists it as a playlist.
    pub fn feed(&self, name: &str, title: &str, items: &[(&str, &str, Option<u32>)]) -> String {
        let items: String = items
            .iter()
            .enumerate()
            .map(|(n, (title, url, seconds))| {
                let duration = seconds
                    .map(|s| format!("<itunes:duration>{s}</itunes:duration>"))
                    .unwrap_or_default();
                format!(
                    "<item><title>{title}</title><guid>item-{n}</guid>{duration}\
                     <enclosure url=\"{url}\" type=\"audio/mpeg\" length=\"1\"/></item>"
                )
            })
            .collect();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <rss version=\"2.0\" xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\">\
             <channel><title>{title}</title><link>{}</link><description>tones</description>\
             {items}</channel></rss>",
            self.base
        );
        self.file(name, xml.as_bytes())
    }

    /// 4 KiB, then a minute of silence on an open connection.
    pub fn stalled_url(&self, name: &str) -> String {
        format!("{}/stall/{name}", self.base)
    }

    /// Makes a tone file in the served folder and returns its URL.
    pub fn tone(&self, name: &str, tone: &Tone<'_>) -> String {
        make_tone(&self.dir.join(name), tone);
        self.url(name)
    }

    /// Puts arbitrary bytes in the served folder and returns their URL.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        // Written aside and renamed: a feed rewritten while it is read is never half there.
        let aside = self.dir.join(format!(".{name}.part"));
        std::fs::write(&aside, bytes).unwrap();
        std::fs::rename(&aside, self.dir.join(name)).unwrap();
        self.url(name)
    }

    /// Requests for one file, with their Range header ("" when none).
    pub fn requests(&self, name: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, range)| range.clone())
            .collect()
    }
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A test tone: pink noise on the left, 440 Hz on the right (noise, so the AAC encoder
/// has something to spend 256 kbps on), with title and artist tags and optionally a
/// 64x48 red JPEG cover (not square, so scaling shows whether the aspect is kept).
pub struct Tone<'a> {
    pub seconds: u32,
    pub title: &'a str,
    pub artist: &'a str,
    pub cover: bool,
}

pub fn make_tone(path: &Path, tone: &Tone<'_>) {
    let secs = tone.seconds.to_string();
    let mut cmd = Command::new(tool("ffmpeg"));
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "anoisesrc=color=pink:duration={secs}:sample_rate=44100:amplitude=0.3"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:duration={secs}:sample_rate=44100"
        ));
    if tone.cover {
        cmd.args(["-f", "lavfi", "-i", "color=c=red:s=64x48:d=1"]);
    }
    cmd.args([
        "-filter_complex",
        "[0:a][1:a]amerge=inputs=2[a]",
        "-map",
        "[a]",
    ]);
    if tone.cover {
        cmd.args([
            "-map",
            "2:v",
            "-frames:v",
            "1",
            "-c:v",
            "mjpeg",
            "-disposition:v",
            "attached_pic",
        ]);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("mp3") => cmd.args(["-c:a", "libmp3lame", "-b:a", "192k", "-id3v2_version", "3"]),
        Some("opus") => cmd.args(["-c:a", "libopus", "-b:a", "96k"]),
        other => panic!("no tone recipe for {other:?}"),
    };
    cmd.arg("-metadata")
        .arg(format!("title={}", tone.title))
        .arg("-metadata")
        .arg(format!("artist={}", tone.artist))
        .arg(path);
    let out = cmd.output().expect("running ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg could not make a tone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffprobe's own JSON for a file, to check results independently of the code under test.
pub fn ffprobe(path: &Path) -> Value {
    let out = Command::new(tool("ffprobe"))
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("running ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// The top-level boxes of an MP4 file, in order (`ftyp`, `moov`, `mdat`, ...).
pub fn mp4_top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        let size = match size {
            0 => (bytes.len() - at) as u64,
            1 => u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
            n => n,
        };
        boxes.push(kind);
        if size < 8 {
            break;
        }
        at += size as usize;
    }
    boxes
}

/// Everything left in a folder (recursively), for "nothing left behind" checks.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push(path.clone());
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Processes whose command line mentions `needle` (other than zombies, whose command line
/// is empty).
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}
