//! The media pipeline with real yt-dlp, ffprobe and ffmpeg, on media served from a
//! loopback HTTP server (yt-dlp's generic extractor downloads any media URL).

use std::path::Path;
use std::time::Duration;

use jukebox_handlers::media::{MediaError, Pipeline, PipelineConfig, Progress, Stage, Tools};
use jukebox_handlers::storage::{ByteRange, LocalStore, ObjectKey, ObjectStore};
use serde_json::Value;

use jukebox_test_support::media::{
    ffprobe, files_under, make_tone, mp4_top_level_boxes, processes_mentioning, MediaServer, Tone,
};

struct Fixture {
    pipeline: Pipeline,
    server: MediaServer,
    /// Served at `/media/<name>`.
    media: tempfile::TempDir,
    /// Parent of the pipeline's job folders.
    work: tempfile::TempDir,
}

async fn fixture(configure: impl FnOnce(&mut PipelineConfig)) -> Fixture {
    let tools = Tools::discover().unwrap_or_else(|e| panic!("{e}"));
    let media = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut config = PipelineConfig::new(tools);
    config.allow_private_networks = true;
    config.work_dir = Some(work.path().to_owned());
    configure(&mut config);
    let server = MediaServer::start(media.path()).await;
    Fixture {
        pipeline: Pipeline::new(config),
        server,
        media,
        work,
    }
}

impl Fixture {
    fn tone(&self, name: &str, tone: &Tone<'_>) -> String {
        make_tone(&self.media.path().join(name), tone);
        self.server.url(name)
    }

    /// Nothing of any job is left in the work folder.
    fn assert_clean(&self) {
        let left = files_under(self.work.path());
        assert!(left.is_empty(), "job files left behind: {left:?}");
    }
}

const TONE: Tone<'static> = Tone {
    seconds: 8,
    title: "Loopback Sunrise",
    artist: "The Test Tones",
    cover: true,
};

fn audio_stream(probe: &Value) -> &Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("an audio stream")
}

fn num(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
}

/// What a listener gets: AAC at about 256 kbps in an MP4 whose index comes first, the
/// full length, and the tags.
fn assert_playable_m4a(path: &Path, seconds: f64, title: &str, artist: &str) -> Value {
    let probe = ffprobe(path);
    let audio = audio_stream(&probe);
    assert_eq!(audio["codec_name"], "aac", "{probe:#}");
    let bit_rate = num(&audio["bit_rate"]);
    assert!(
        (220_000.0..=290_000.0).contains(&bit_rate),
        "AAC at {bit_rate} b/s, expected about 256 kb/s"
    );
    let format = &probe["format"];
    assert!(
        format["format_name"].as_str().unwrap().contains("mp4"),
        "{format:#}"
    );
    let duration = num(&format["duration"]);
    assert!(
        (duration - seconds).abs() < 0.25,
        "duration {duration}s, expected {seconds}s"
    );
    assert_eq!(format["tags"]["title"], title, "{format:#}");
    assert_eq!(format["tags"]["artist"], artist, "{format:#}");
    let bytes = std::fs::read(path).unwrap();
    let boxes = mp4_top_level_boxes(&bytes);
    let at = |name: &str| boxes.iter().position(|b| b == name);
    assert!(
        at("moov").unwrap() < at("mdat").unwrap(),
        "moov must come before mdat (+faststart): {boxes:?}"
    );
    probe
}

#[tokio::test]
async fn a_url_becomes_a_tagged_aac_track_that_the_store_serves() {
    let f = fixture(|_| {}).await;
    let url = f.tone("sunrise.mp3", &TONE);
    let mut seen: Vec<Progress> = Vec::new();
    let track = f
        .pipeline
        .import_url(&url, &mut |p| seen.push(p))
        .await
        .expect("import");

    let probe = assert_playable_m4a(&track.path, 8.0, TONE.title, TONE.artist);
    // The cover embedded in the mp3 is kept as the track's picture.
    let cover = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a cover picture");
    assert_eq!(cover["disposition"]["attached_pic"], 1);
    assert_eq!(
        (cover["width"].as_u64(), cover["height"].as_u64()),
        (Some(64), Some(48))
    );
    // And as an image of its own for the browser, not enlarged.
    let image = picture(track.cover.as_deref().expect("a cover image"));
    assert_eq!(
        (image.codec, image.width, image.height),
        ("mjpeg".into(), 64, 48)
    );

    // What yt-dlp said about the source, and a name for it shared by every requester.
    let source = track.source.as_ref().unwrap();
    assert_eq!(source.extractor, "Generic");
    assert!(
        source.source_id().starts_with("url:"),
        "{}",
        source.source_id()
    );
    assert_eq!(track.tags.title.as_deref(), Some(TONE.title));

    // Progress went through the stages in order and each ended at 100%.
    let stages: Vec<Stage> = seen.iter().map(|p| p.stage).collect();
    let first = |s: Stage| stages.iter().position(|x| *x == s).unwrap();
    assert!(first(Stage::Resolving) < first(Stage::Downloading));
    assert!(first(Stage::Downloading) < first(Stage::Transcoding));
    let last = |s: Stage| seen.iter().rev().find(|p| p.stage == s).unwrap().percent;
    assert_eq!(last(Stage::Downloading), 100, "{seen:?}");
    assert_eq!(last(Stage::Transcoding), 100, "{seen:?}");

    // Into the store and back, as the stream endpoint will read it.
    let objects = tempfile::tempdir().unwrap();
    let store = LocalStore::new(objects.path());
    store.ensure_bucket().await.unwrap();
    let key = ObjectKey::parse(&format!("tracks/{}.m4a", source.source_id())).unwrap();
    let stored = store.put_file(&key, &track.path).await.unwrap();
    let bytes = std::fs::read(&track.path).unwrap();
    assert_eq!(stored.size, bytes.len() as u64);
    let body = store.get(&key, Some(ByteRange::from(100))).await.unwrap();
    assert_eq!(body.total_size, bytes.len() as u64);
    assert_eq!(body.bytes().await.unwrap(), &bytes[100..]);

    drop(track);
    f.assert_clean();
}

#[tokio::test]
async fn an_upload_keeps_the_tags_its_container_keeps_per_stream() {
    // Ogg/Opus keeps its tags on the audio stream, not the container.
    let f = fixture(|_| {}).await;
    let path = f.media.path().join("upload.opus");
    make_tone(
        &path,
        &Tone {
            seconds: 5,
            title: "Stream Tagged",
            artist: "Opus Ensemble",
            cover: false,
        },
    );
    let mut last = None;
    let track = f
        .pipeline
        .import_file(&path, &mut |p| last = Some(p))
        .await
        .expect("import an upload");
    assert_playable_m4a(&track.path, 5.0, "Stream Tagged", "Opus Ensemble");
    assert_eq!(track.input.audio.codec, "opus");
    // No picture in the source: no cover image.
    assert!(track.output.cover_stream.is_none());
    assert_eq!(track.cover, None);
    assert!(track.source.is_none());
    assert_eq!(
        last,
        Some(Progress {
            stage: Stage::Transcoding,
            percent: 100
        })
    );
    drop(track);
    f.assert_clean();
}

fn expect_permanent(result: Result<impl std::fmt::Debug, MediaError>, code: &str, text: &str) {
    match result {
        Err(e) => {
            assert!(e.is_permanent(), "{e:?} should be permanent");
            assert_eq!(e.code(), code, "{e:?}");
            let message = e.to_string();
            assert!(
                message.contains(text),
                "{message:?} should mention {text:?}"
            );
            assert!(
                !message.contains("/tmp/") && !message.contains("Traceback"),
                "not for a person: {message:?}"
            );
        }
        Ok(v) => panic!("expected {code}, got {v:?}"),
    }
}

#[tokio::test]
async fn a_corrupt_download_fails_for_good_with_a_reason() {
    let f = fixture(|_| {}).await;
    // Random bytes that call themselves an mp3.
    let junk: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(f.media.path().join("broken.mp3"), junk).unwrap();
    let result = f
        .pipeline
        .import_url(&f.server.url("broken.mp3"), &mut |_| {})
        .await;
    expect_permanent(result, "corrupt_media", "not usable audio");
    f.assert_clean();
}

#[tokio::test]
async fn an_upload_that_is_not_audio_is_refused() {
    let f = fixture(|_| {}).await;
    for (name, content) in [
        ("notes.mp3", b"these are my notes, not a song\n".to_vec()),
        ("empty.mp3", Vec::new()),
        // A playlist in disguise must not make ffmpeg open other files.
        (
            "playlist.mp3",
            b"#EXTM3U\n#EXTINF:1,\nfile:/etc/passwd\n".to_vec(),
        ),
    ] {
        let path = f.media.path().join(name);
        std::fs::write(&path, content).unwrap();
        let result = f.pipeline.import_file(&path, &mut |_| {}).await;
        expect_permanent(result, "corrupt_media", "not usable audio");
    }
    f.assert_clean();
}

#[tokio::test]
async fn a_missing_source_is_unavailable() {
    let f = fixture(|_| {}).await;
    let result = f
        .pipeline
        .import_url(&f.server.url("nothing-here.mp3"), &mut |_| {})
        .await;
    expect_permanent(result, "unavailable", "404");
    f.assert_clean();
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let f = fixture(|c| c.allow_private_networks = false).await;
    let url = f.tone("sunrise.mp3", &TONE);
    let result = f.pipeline.import_url(&url, &mut |_| {}).await;
    expect_permanent(result, "private_address", "a loopback address");
    let by_name = url.replace("127.0.0.1", "localhost");
    let result = f.pipeline.import_url(&by_name, &mut |_| {}).await;
    expect_permanent(result, "private_address", "localhost");
    for url in [
        "http://10.0.0.1/a.mp3",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let result = f.pipeline.import_url(url, &mut |_| {}).await;
        expect_permanent(result, "private_address", "not allowed");
    }
    f.assert_clean();
}

#[tokio::test]
async fn only_http_and_https_links_are_fetched() {
    let f = fixture(|_| {}).await;
    for (url, scheme) in [
        ("file:///etc/passwd", "file:"),
        ("ftp://127.0.0.1/a.mp3", "ftp:"),
        ("gopher://127.0.0.1/", "gopher:"),
    ] {
        let result = f.pipeline.import_url(url, &mut |_| {}).await;
        expect_permanent(result, "unsupported_url", scheme);
    }
    f.assert_clean();
}

#[tokio::test]
async fn a_track_over_the_length_limit_is_refused() {
    let f = fixture(|c| c.limits.max_duration = Duration::from_secs(5)).await;
    let url = f.tone("long.mp3", &TONE);
    let result = f.pipeline.import_url(&url, &mut |_| {}).await;
    expect_permanent(result, "too_long", "the limit is 0:05");
    f.assert_clean();
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused() {
    let f = fixture(|c| c.limits.max_download_bytes = 20 * 1024).await;
    let url = f.tone("big.mp3", &TONE);
    let result = f.pipeline.import_url(&url, &mut |_| {}).await;
    expect_permanent(result, "too_big", "the limit is 20 KiB");
    let path = f.media.path().join("big.mp3");
    let result = f.pipeline.import_file(&path, &mut |_| {}).await;
    expect_permanent(result, "too_big", "too big");
    f.assert_clean();
}

#[tokio::test]
async fn a_download_past_its_time_is_stopped_and_cleaned_up() {
    let f = fixture(|c| c.download_timeout = Duration::from_secs(2)).await;
    f.tone("slow.mp3", &TONE);
    // The server sends 4 KiB and then nothing: yt-dlp would wait for its socket timeout.
    let url = f.server.stalled_url("slow.mp3");
    let err = f
        .pipeline
        .import_url(&url, &mut |_| {})
        .await
        .expect_err("the download must be stopped");
    assert!(!err.is_permanent(), "a timeout is worth a retry: {err:?}");
    assert_eq!(err.code(), "timeout");
    assert!(
        err.to_string()
            .contains("download step took longer than 2s"),
        "{err}"
    );
    // yt-dlp was killed, not left waiting on the socket. (Its command line names the
    // job folder, under this test's own work folder.)
    let needle = f.work.path().to_str().unwrap().to_owned();
    let mut left = processes_mentioning(&needle);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = processes_mentioning(&needle);
    }
    assert!(left.is_empty(), "yt-dlp still running: {left:?}");
    f.assert_clean();
}

#[tokio::test]
async fn a_download_that_never_says_its_size_is_stopped_at_the_limit() {
    // No Content-Length, and after the first 4 KiB the server goes quiet: only the
    // progress watchdog can stop this download at the limit (yt-dlp's --max-filesize
    // needs a length, and the check of the finished file would never come).
    let f = fixture(|c| {
        c.limits.max_download_bytes = 2 * 1024;
        c.download_timeout = Duration::from_secs(20);
    })
    .await;
    f.tone("unsized.mp3", &TONE);
    let result = f
        .pipeline
        .import_url(&f.server.stalled_url("unsized.mp3"), &mut |_| {})
        .await;
    expect_permanent(result, "too_big", "the limit is 2 KiB");
    f.assert_clean();
}

#[tokio::test]
async fn a_site_thumbnail_becomes_the_cover() {
    // The path taken for YouTube and other sites: the cover is a separate image
    // (yt-dlp's thumbnail, PNG here so it has to be re-encoded), not a stream of the audio.
    use jukebox_handlers::media::ffmpeg::{self, Cover};
    let f = fixture(|_| {}).await;
    let audio = f.media.path().join("plain.opus");
    make_tone(
        &audio,
        &Tone {
            seconds: 3,
            title: "No Art",
            artist: "Nobody",
            cover: false,
        },
    );
    let thumbnail = f.media.path().join("cover.png");
    let out = std::process::Command::new(jukebox_test_support::tool("ffmpeg"))
        .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
        .args(["color=c=blue:s=32x48:d=1", "-frames:v", "1"])
        .arg(&thumbnail)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tools = &f.pipeline.config().tools;
    let info = ffmpeg::probe(&tools.ffprobe, &audio, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(info.cover_stream.is_none());
    let output = f.work.path().join("with-cover.m4a");
    let tags = jukebox_handlers::media::TrackTags {
        title: Some("Site Title".into()),
        artist: Some("Site Channel".into()),
        album: None,
    };
    ffmpeg::transcode(
        &tools.ffmpeg,
        &audio,
        &info,
        &output,
        &tags,
        Some(Cover::File(&thumbnail)),
        Duration::from_secs(60),
        &mut |_| {},
    )
    .await
    .expect("transcode with a cover");
    let probe = assert_playable_m4a(&output, 3.0, "Site Title", "Site Channel");
    let cover = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a cover picture");
    assert_eq!(cover["codec_name"], "mjpeg");
    assert_eq!(cover["disposition"]["attached_pic"], 1);
    assert_eq!(
        (cover["width"].as_u64(), cover["height"].as_u64()),
        (Some(32), Some(48))
    );
}

/// What ffprobe sees in an image file.
struct Picture {
    codec: String,
    width: u64,
    height: u64,
}

fn picture(path: &Path) -> Picture {
    let probe = ffprobe(path);
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_type"], "video", "{probe:#}");
    Picture {
        codec: stream["codec_name"].as_str().unwrap().to_owned(),
        width: stream["width"].as_u64().unwrap(),
        height: stream["height"].as_u64().unwrap(),
    }
}

#[tokio::test]
async fn a_large_cover_is_kept_as_a_jpeg_of_at_most_512_pixels() {
    // A 1280x720 PNG embedded in an mp3, as a full-size album picture would be.
    let f = fixture(|_| {}).await;
    let path = f.media.path().join("big-cover.mp3");
    let out = std::process::Command::new(jukebox_test_support::tool("ffmpeg"))
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "sine=frequency=330:duration=4"])
        .args(["-f", "lavfi", "-i", "testsrc=size=1280x720:duration=1"])
        .args(["-map", "0:a", "-map", "1:v", "-frames:v", "1"])
        .args(["-c:a", "libmp3lame", "-b:a", "128k", "-c:v", "png"])
        .args(["-disposition:v", "attached_pic", "-id3v2_version", "3"])
        .args(["-metadata", "title=Wide Picture"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = f.server.url("big-cover.mp3");
    let track = f
        .pipeline
        .import_url(&url, &mut |_| {})
        .await
        .expect("import");
    let cover = track.cover.clone().expect("a cover image");
    assert!(cover.starts_with(track.dir.path()), "{}", cover.display());
    let image = picture(&cover);
    // Scaled to fit 512 px, aspect kept, as a JPEG.
    assert_eq!(
        (image.codec.as_str(), image.width, image.height),
        ("mjpeg", 512, 288)
    );
    let bytes = std::fs::read(&cover).unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "a JPEG starts with SOI");
    assert!(bytes.len() < 200_000, "{} bytes", bytes.len());
    // The picture inside the .m4a is the source's, unscaled.
    let embedded = ffprobe(&track.path);
    let embedded = embedded["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("the embedded cover")
        .clone();
    assert_eq!(embedded["width"], 1280);

    drop(track);
    f.assert_clean();
}

/// Issue 18: the file's tags go through `metadata::clean`: decorations come off the title,
/// guests become artists, and the output is tagged with the result, for a link and an
/// upload alike.
#[tokio::test]
async fn tags_are_cleaned_into_title_and_artists() {
    let f = fixture(|_| {}).await;
    let tone = Tone {
        seconds: 3,
        title: "Loopback Sunrise (Official Video) [HD]",
        artist: "The Test Tones feat. Guest Singer",
        cover: false,
    };
    let url = f.tone("decorated.mp3", &tone);
    let linked = f
        .pipeline
        .import_url(&url, &mut |_| {})
        .await
        .expect("import a link");
    let path = f.media.path().join("decorated.opus");
    make_tone(&path, &tone);
    let uploaded = f
        .pipeline
        .import_file(&path, &mut |_| {})
        .await
        .expect("import an upload");
    for track in [&linked, &uploaded] {
        assert_eq!(track.metadata.title, "Loopback Sunrise");
        assert_eq!(track.metadata.artists, ["The Test Tones", "Guest Singer"]);
        assert_eq!(
            (track.metadata.album.as_deref(), track.metadata.year),
            (None, None)
        );
        assert_playable_m4a(
            &track.path,
            3.0,
            "Loopback Sunrise",
            "The Test Tones, Guest Singer",
        );
    }
    drop((linked, uploaded));
    f.assert_clean();
}
