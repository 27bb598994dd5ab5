//! Import by URL end to end, on the S3 backend (a real s3s-fs).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_of, import_app, nothing_in_progress, tone, Options};
use crate::media::ffprobe;

fn types(history: &[(String, Value)]) -> Vec<&str> {
    history.iter().map(|(t, _)| t.as_str()).collect()
}

#[tokio::test]
async fn a_url_becomes_a_stored_aac_track_in_my_library() {
    let app = import_app(Options {
        s3: true,
        extra: vec![
            ("ADMIN_BOOTSTRAP_EMAIL", "admin@example.com".into()),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let url = app.tone("sunrise.mp3", &tone(8));

    // Idempotency-Key: a retried request is the same job.
    let first = app
        .app
        .http
        .post(app.app.api("/songs/import"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "import-1")
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    let job_id = first["job_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/jobs/{job_id}"));
    // Readable at once, even before the projector has the job (read from the log).
    let response = app.job(&alice, &job_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["source"]["kind"], "url");
    let again: Value = app
        .app
        .http
        .post(app.app.api("/songs/import"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "import-1")
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["job_id"], first["job_id"]);

    let job = app.finished_job(&alice, &job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["percent"], 100);
    assert_eq!(job["error"], Value::Null);
    let track_id = job["track_id"].as_str().unwrap().to_owned();
    assert!(track_id.starts_with("url:"), "{track_id}");

    // The object: AAC at about 256 kbps, the whole length, tags kept.
    app.tracks_applied().await;
    let (object_key, title, artist, has_cover): (String, Option<String>, Option<String>, bool) =
        sqlx::query_as(
            "SELECT object_key, title, artist, has_cover FROM tracks WHERE track_id = $1",
        )
        .bind(&track_id)
        .fetch_one(app.app.pool())
        .await
        .unwrap();
    assert_eq!(object_key, format!("tracks/{track_id}.m4a"));
    assert_eq!(title.as_deref(), Some("Loopback Sunrise"));
    assert_eq!(artist.as_deref(), Some("The Test Tones"));
    assert!(has_cover);
    let store = jukebox_handlers::storage::open(&app.app.config.store_config().unwrap())
        .await
        .unwrap();
    let key = jukebox_handlers::storage::ObjectKey::parse(&object_key).unwrap();
    let bytes = store.get(&key, None).await.unwrap().bytes().await.unwrap();
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), &bytes).unwrap();
    let probe = ffprobe(local.path());
    let audio = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .unwrap();
    assert_eq!(audio["codec_name"], "aac");
    let bit_rate: f64 = audio["bit_rate"].as_str().unwrap().parse().unwrap();
    assert!(
        (220_000.0..=290_000.0).contains(&bit_rate),
        "bit rate {bit_rate}"
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((7.5..=8.5).contains(&duration), "duration {duration}");

    // The cover, as a picture of its own next to the audio (on S3 here).
    let (cover_key, cover_size): (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT cover_key, cover_size FROM tracks WHERE track_id = $1")
            .bind(&track_id)
            .fetch_one(app.app.pool())
            .await
            .unwrap();
    assert_eq!(cover_key, Some(format!("tracks/{track_id}.jpg")));
    let cover_key = jukebox_handlers::storage::ObjectKey::parse(&cover_key.unwrap()).unwrap();
    let cover = store
        .get(&cover_key, None)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(Some(cover.len() as i64), cover_size);
    std::fs::write(local.path(), &cover).unwrap();
    let picture = ffprobe(local.path());
    assert_eq!(picture["streams"][0]["codec_name"], "mjpeg", "{picture:#}");

    // In my library, and the events tell the story.
    assert_eq!(app.library(&alice).await, vec![track_id.clone()]);
    let import = app.history("import", &job_id).await;
    assert_eq!(
        types(&import),
        [
            "ImportRequested",
            "ImportStageChanged",
            "ImportStageChanged",
            "ImportStageChanged",
            "ImportCompleted"
        ]
    );
    let stages: Vec<&Value> = import[1..4]
        .iter()
        .map(|(_, p)| &p["ImportStageChanged"]["stage"])
        .collect();
    assert_eq!(stages, ["downloading", "transcoding", "storing"]);
    assert_eq!(
        import[0].1["ImportRequested"]["source"]["url"],
        url.as_str()
    );
    assert_eq!(
        types(&app.history("track", &track_id).await),
        ["TrackStored"]
    );
    let user_id = import[0].1["ImportRequested"]["requested_by"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        types(
            &app.history("library_entry", &format!("{user_id}/{track_id}"))
                .await
        ),
        ["TrackAddedToLibrary"]
    );

    // A stored source completes at once: no second download, no second object.
    let requests_before = app.media.requests("sunrise.mp3").len();
    let again = app.start_import(&alice, &url).await;
    let job = app.finished_job(&alice, &again).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["track_id"], track_id.as_str());
    let history = app.history("import", &again).await;
    assert!(
        !history
            .iter()
            .any(|(_, p)| p["ImportStageChanged"]["stage"] == "downloading"),
        "{history:?}"
    );
    assert_eq!(
        types(&app.history("track", &track_id).await),
        ["TrackStored"]
    );
    // The stored source is recognised by its URL: yt-dlp never ran, not even to look.
    assert_eq!(app.media.requests("sunrise.mp3").len(), requests_before);

    // GET /jobs: mine, newest first; someone else's job is not there to see.
    let jobs: Value = app
        .app
        .http
        .get(app.app.api("/jobs"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [again.as_str(), job_id.as_str()]);
    let bob = app.user("bob@example.com").await;
    let (status, code, _) = error_of(app.job(&bob, &job_id).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let listed: Value = app
        .app
        .http
        .get(app.app.api("/jobs"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["jobs"], serde_json::json!([]));
    // An admin sees anyone's job.
    let admin = app.admin("admin@example.com").await;
    let seen: Value = app.job(&admin, &job_id).await.json().await.unwrap();
    assert_eq!(seen["status"], "completed", "{seen}");
    let unauthenticated = app.app.http.get(app.app.api("/jobs")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    nothing_in_progress(&app.app).await;
    assert!(app.leftovers().is_empty(), "{:?}", app.leftovers());
    app.cleanup().await;
}

#[tokio::test]
async fn job_events_stream_live_progress_until_the_end() {
    let app = import_app(Options::default()).await;
    let alice = app.user("alice@example.com").await;
    let url = app.tone("long.mp3", &tone(30));
    let job_id = app.start_import(&alice, &url).await;
    // With the import's position, the job is there at once.
    assert_eq!(app.job(&alice, &job_id).await.status(), StatusCode::OK);
    let response = app
        .app
        .http
        .get(app.app.api(&format!("/jobs/{job_id}/events")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    // The stream ends by itself after the job's last state.
    let body = tokio::time::timeout(std::time::Duration::from_secs(60), response.text())
        .await
        .expect("the event stream ends when the job does")
        .unwrap();
    let events: Vec<(&str, Value)> = body
        .split("\n\n")
        .filter_map(|block| {
            let kind = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((kind, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let (last_kind, last) = events.last().unwrap();
    assert_eq!(*last_kind, "job");
    assert_eq!(last["status"], "completed", "{body}");
    assert!(
        events.iter().any(|(kind, e)| *kind == "progress"
            && e["status"] == "transcoding"
            && e["percent"].as_u64().is_some()),
        "no live transcoding progress in {body}"
    );
    app.cleanup().await;
}
