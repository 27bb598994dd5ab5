//! Real servers for the tests: s3s-fs on a free loopback port, and a loopback HTTP server
//! for media files; plus test tones made with ffmpeg and an independent ffprobe.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use jukebox_handlers::media::find_tool;
use serde_json::Value;

/// A tool the tests need. A missing tool fails the test (CI runs scripts/install-deps.sh
/// first), it never skips it.
pub fn tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!(
            "{name} is not installed: it was looked for in $JUKEBOX_TOOLS_DIR/bin \
             (default ~/.local/share/jukebox/tools/bin) and on PATH. \
             Run scripts/install-deps.sh."
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// An s3s-fs server on loopback with its own data folder and keys, stopped on drop.
pub struct S3sFs {
    child: Child,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// s3s-fs keeps its buckets here; removed on drop.
    _root: tempfile::TempDir,
}

impl S3sFs {
    pub fn start() -> Self {
        let bin = tool("s3s-fs");
        let root = tempfile::tempdir().expect("a temp folder");
        let access_key = format!("test-{}", uuid::Uuid::new_v4().simple());
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        // The port is free when picked; if another process takes it first, s3s-fs exits
        // and we try another.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(root.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Self {
                        child,
                        endpoint: format!("http://{addr}"),
                        access_key,
                        secret_key,
                        _root: root,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs ({}) did not start listening", bin.display());
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback HTTP server that serves the files of one folder under `/media/<name>`,
/// with the Content-Type a web server would send.
pub struct MediaServer {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl MediaServer {
    pub async fn start(dir: &Path) -> Self {
        async fn file(
            State(dir): State<PathBuf>,
            UrlPath(name): UrlPath<String>,
        ) -> axum::response::Response {
            if name.contains('/') || name.starts_with('.') {
                return StatusCode::NOT_FOUND.into_response();
            }
            let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
                Some("mp3") => "audio/mpeg",
                Some("opus" | "ogg") => "audio/ogg",
                Some("m4a") => "audio/mp4",
                _ => "application/octet-stream",
            };
            match tokio::fs::read(dir.join(&name)).await {
                Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
        /// The file in 4 KiB chunks, chunked (no Content-Length), `pause` between
        /// chunks: a server that does not say how big the file is, and is slow.
        async fn chunked(dir: PathBuf, name: String, pause: Duration) -> axum::response::Response {
            if name.contains('/') || name.starts_with('.') {
                return StatusCode::NOT_FOUND.into_response();
            }
            let Ok(bytes) = tokio::fs::read(dir.join(&name)).await else {
                return StatusCode::NOT_FOUND.into_response();
            };
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
        /// One chunk, then nothing for a minute with the connection open.
        async fn stall(
            State(dir): State<PathBuf>,
            UrlPath(name): UrlPath<String>,
        ) -> axum::response::Response {
            chunked(dir, name, Duration::from_secs(60)).await
        }
        let app = axum::Router::new()
            .route("/media/{name}", axum::routing::get(file))
            .route("/stall/{name}", axum::routing::get(stall))
            .with_state(dir.to_owned());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("media server");
        });
        Self { base, task }
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/media/{name}", self.base)
    }

    /// 4 KiB, then a minute of silence on an open connection.
    pub fn stalled_url(&self, name: &str) -> String {
        format!("{}/stall/{name}", self.base)
    }
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A test tone: pink noise on the left, 440 Hz on the right (noise, so the AAC encoder
/// has something to spend 256 kbps on), with title and artist tags and optionally a
/// 64x64 red JPEG cover.
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
        cmd.args(["-f", "lavfi", "-i", "color=c=red:s=64x64:d=1"]);
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
