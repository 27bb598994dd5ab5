//! Imports that cannot work fail with a reason a person can read (or are refused at the
//! door), and nothing is left in progress.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_of, import_app, nothing_in_progress, tone, Options};

#[tokio::test]
async fn bad_sources_fail_with_a_readable_reason() {
    let app = import_app(Options::default()).await;
    let alice = app.user("alice@example.com").await;

    // Refused at the door: not http(s), neither or both fields, a bad video id.
    for (body, code) in [
        (
            serde_json::json!({ "url": "ftp://example.com/a.mp3" }),
            "invalid_source",
        ),
        (
            serde_json::json!({ "url": "file:///etc/passwd" }),
            "invalid_source",
        ),
        (serde_json::json!({}), "invalid_source"),
        (
            serde_json::json!({ "url": "https://a.test/x", "video_id": "aaaaaaaaaaa" }),
            "invalid_source",
        ),
        (
            serde_json::json!({ "video_id": "../../etc" }),
            "invalid_source",
        ),
        (serde_json::json!({ "video": "x" }), "invalid_body"),
    ] {
        let response = app
            .app
            .http
            .post(app.app.api("/songs/import"))
            .bearer_auth(&alice)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, got, message) = error_of(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(got, code, "{body}: {message}");
        assert!(!message.is_empty());
    }

    // Accepted, then failed by the downloader with the reason.
    let corrupt = app.file("corrupt.mp3", &[0x42; 64 * 1024]);
    let missing = app.media.url("missing.mp3");
    let page = app.file(
        "page.html",
        b"<html><body><p>No media here.</p></body></html>",
    );
    let cases = [
        (corrupt, "corrupt_media", "not usable audio"),
        (missing, "unavailable", "not available"),
        (page, "unsupported_url", "cannot be imported"),
    ];
    let mut jobs = Vec::new();
    for (url, _, _) in &cases {
        jobs.push(app.start_import(&alice, url).await);
    }
    for ((_, code, words), job_id) in cases.iter().zip(&jobs) {
        let job = app.finished_job(&alice, job_id).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(job["error"]["code"], *code, "{job:#}");
        let message = job["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{code}: {message}");
        assert_eq!(job["track_id"], Value::Null);
        let history = app.history("import", job_id).await;
        assert_eq!(history.last().unwrap().0, "ImportFailed");
    }
    assert!(app.library(&alice).await.is_empty());
    nothing_in_progress(&app.app).await;
    assert!(app.leftovers().is_empty(), "{:?}", app.leftovers());
    app.cleanup().await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let app = import_app(Options {
        extra: vec![("IMPORT_ALLOW_PRIVATE_NETWORKS", "0".into())],
        ..Default::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let url = app.tone("local.mp3", &tone(3));
    let job_id = app.start_import(&alice, &url).await;
    let job = app.finished_job(&alice, &job_id).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "private_address");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("loopback"), "{message}");
    // yt-dlp never fetched it.
    assert!(app.media.requests("local.mp3").is_empty());
    nothing_in_progress(&app.app).await;
    app.cleanup().await;
}

#[tokio::test]
async fn uploads_are_capped_probed_and_imported() {
    let app = import_app(Options {
        extra: vec![("UPLOAD_MAX_BYTES", "400000".into())],
        ..Default::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let upload = |bytes: Vec<u8>, name: &'static str| {
        let form = Form::new().part(
            "file",
            Part::bytes(bytes)
                .file_name(name)
                .mime_str("audio/mpeg")
                .unwrap(),
        );
        app.app
            .http
            .post(app.app.api("/songs/upload"))
            .bearer_auth(&alice)
            .multipart(form)
            .send()
    };

    // Too big: refused while it streams, 413.
    let (status, code, message) =
        error_of(upload(vec![0; 600_000], "big.mp3").await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_big")
    );
    assert!(message.contains("upload limit"), "{message}");
    // Not audio: probed and refused, 422.
    let (status, code, message) = error_of(
        upload(b"just some text, not a song".repeat(100), "notes.mp3")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "not_audio")
    );
    assert!(message.contains("not usable audio"), "{message}");
    // Not multipart at all: JSON error, not a bare text.
    let response = app
        .app
        .http
        .post(app.app.api("/songs/upload"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({ "file": "x" }))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    // No file field.
    let response = app
        .app
        .http
        .post(app.app.api("/songs/upload"))
        .bearer_auth(&alice)
        .multipart(Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A real song: accepted, transcoded, in my library; the upload is removed.
    crate::media::make_tone(&app.media_dir.path().join("mine.mp3"), &tone(6));
    let bytes = std::fs::read(app.media_dir.path().join("mine.mp3")).unwrap();
    let response = upload(bytes, "mine.mp3").await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.app.position_of(&response);
    let body: Value = response.json().await.unwrap();
    let job_id = body["job_id"].as_str().unwrap();
    let job = app.finished_job(&alice, job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["source"]["kind"], "upload");
    assert_eq!(job["source"]["value"], "mine.mp3");
    let track_id = job["track_id"].as_str().unwrap();
    assert!(track_id.starts_with("upload:"), "{track_id}");
    assert_eq!(app.library(&alice).await, vec![track_id.to_owned()]);
    let files: Vec<_> = crate::media::files_under(app.objects.path())
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    // The upload is gone; the track and its cover (the tone has one) stay.
    let mut names: Vec<_> = files
        .iter()
        .map(|p| p.strip_prefix(app.objects.path()).unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            std::path::PathBuf::from(format!("tracks/{track_id}.jpg")),
            std::path::PathBuf::from(format!("tracks/{track_id}.m4a")),
        ],
        "only the track is left: {files:?}"
    );
    nothing_in_progress(&app.app).await;
    assert!(app.leftovers().is_empty(), "{:?}", app.leftovers());
    app.cleanup().await;
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_then_given_up() {
    // IMPORT_MAX_ATTEMPTS=3, IMPORT_RETRY_BASE_MS=200 (helpers).
    let app = import_app(Options::default()).await;
    let alice = app.user("alice@example.com").await;
    crate::media::make_tone(&app.media_dir.path().join("flaky.mp3"), &tone(4));
    std::fs::copy(
        app.media_dir.path().join("flaky.mp3"),
        app.media_dir.path().join("down.mp3"),
    )
    .unwrap();

    // Two 503s, then the file: the third attempt imports it.
    let recovers = app
        .start_import(&alice, &app.media.flaky_url(2, "flaky.mp3"))
        .await;
    // Always 503: given up after the third attempt, with the reason.
    let down = app
        .start_import(&alice, &app.media.flaky_url(1000, "down.mp3"))
        .await;

    let job = app.finished_job(&alice, &recovers).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert!(app.media.requests("flaky/flaky.mp3").len() >= 3);
    let job = app.finished_job(&alice, &down).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("gave up after 3 attempts"), "{message}");
    assert!(message.contains("503"), "{message}");
    assert_eq!(
        app.media.requests("flaky/down.mp3").len(),
        3,
        "one request per attempt, no more"
    );
    nothing_in_progress(&app.app).await;
    assert!(app.leftovers().is_empty(), "{:?}", app.leftovers());
    app.cleanup().await;
}
