//! Two users import one source at the same moment: one download, one object, both
//! libraries.

use crate::helpers::{import_app, nothing_in_progress, tone, Options};

#[tokio::test]
async fn one_source_imported_by_two_users_at_once_is_downloaded_once() {
    let app = import_app(Options::default()).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let url = app.tone("together.mp3", &tone(20));

    let (a, b) = tokio::join!(app.start_import(&alice, &url), app.start_import(&bob, &url));
    let (job_a, job_b) = tokio::join!(app.finished_job(&alice, &a), app.finished_job(&bob, &b));
    assert_eq!(job_a["status"], "completed", "{job_a:#}");
    assert_eq!(job_b["status"], "completed", "{job_b:#}");
    let track_id = job_a["track_id"].as_str().unwrap().to_owned();
    assert_eq!(job_b["track_id"], track_id.as_str());

    // One download: only one job ever reached `downloading`, one TrackStored.
    let mut downloaded = 0;
    for job in [&a, &b] {
        let history = app.history("import", job).await;
        if history
            .iter()
            .any(|(_, p)| p["ImportStageChanged"]["stage"] == "downloading")
        {
            downloaded += 1;
        }
    }
    assert_eq!(downloaded, 1);
    let track = app.history("track", &track_id).await;
    assert_eq!(track.len(), 1, "{track:?}");
    // One audio object in the store, and its cover beside it (the tone has one).
    let mut objects: Vec<_> = crate::media::files_under(app.objects.path())
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    objects.sort();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(objects[0].ends_with(format!("tracks/{track_id}.jpg")));
    assert!(objects[1].ends_with(format!("tracks/{track_id}.m4a")));
    // Both libraries.
    assert_eq!(app.library(&alice).await, vec![track_id.clone()]);
    assert_eq!(app.library(&bob).await, vec![track_id.clone()]);
    // The media server saw each job's look at the URL (yt-dlp -J) and one download.
    assert_eq!(app.media.requests("together.mp3").len(), 3);

    nothing_in_progress(&app.app).await;
    assert!(app.leftovers().is_empty(), "{:?}", app.leftovers());
    app.cleanup().await;
}

/// A YouTube video that is already stored completes from the store: the downloader
/// never calls yt-dlp (which could not reach YouTube from the test machine anyway).
#[tokio::test]
async fn a_stored_video_completes_at_once_without_a_download() {
    use jukebox_domain::{Command, StoredTrack, TrackId};
    use jukebox_nats::{CommandEnvelope, OutcomeStatus};

    let app = import_app(Options::default()).await;
    let alice = app.user("alice@example.com").await;
    let bus = app.app.bus().await;
    let track_id = TrackId::parse("yt:ccccccccccc").unwrap();
    let envelope = CommandEnvelope {
        command_id: uuid::Uuid::now_v7(),
        correlation_id: uuid::Uuid::now_v7(),
        issued_by: None,
        issued_at: time::OffsetDateTime::now_utc(),
        command: Command::StoreTrack {
            track: StoredTrack {
                track_id: track_id.clone(),
                object_key: "tracks/yt:ccccccccccc.m4a".into(),
                size: 1000,
                duration_ms: 1000,
                codec: "aac".into(),
                bitrate: 256_000,
                title: Some("Stored Before".into()),
                artist: None,
                album: None,
                artists: Vec::new(),
                year: None,
                has_cover: false,
                origin: "https://www.youtube.com/watch?v=ccccccccccc".into(),
                cover: None,
            },
        },
    };
    let outcome = bus
        .send(&envelope, std::time::Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Committed);

    let response = app
        .app
        .http
        .post(app.app.api("/songs/import"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({ "video_id": "ccccccccccc" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    app.app.position_of(&response);
    let body: serde_json::Value = response.json().await.unwrap();
    let job_id = body["job_id"].as_str().unwrap();
    let job = app.finished_job(&alice, job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["track_id"], "yt:ccccccccccc");
    let history = app.history("import", job_id).await;
    let types: Vec<&str> = history.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["ImportRequested", "ImportCompleted"]);
    assert_eq!(app.library(&alice).await, vec!["yt:ccccccccccc".to_owned()]);
    nothing_in_progress(&app.app).await;
    app.cleanup().await;
}
