//! Per-user quotas (issue 20, ADR 41): `IMPORT_MAX_TRACKS_PER_USER` counts the tracks in
//! my library and my imports in progress; `IMPORT_MAX_BYTES_PER_USER` the stored bytes of
//! my library's tracks. Past either, a single import, an upload and a list's confirm are
//! 403 `quota_exceeded` naming the limit and my use; a list whose new tracks do not all
//! fit is refused whole (its preview says how many fit); another user is not held back.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::collections::{get, post};
use crate::helpers::{error_of, import_app, tone, ImportApp, Options};
use jukebox_domain::TrackId;

async fn upload(app: &ImportApp, token: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name("tone.mp3")
            .mime_str("audio/mpeg")
            .unwrap(),
    );
    let mut request = app
        .app
        .http
        .post(app.app.api("/songs/upload"))
        .bearer_auth(token);
    if let Some(position) = app.app.try_latest() {
        request = request.header(jukebox_test_support::POSITION, position);
    }
    request.multipart(form).send().await.unwrap()
}

/// The stored size of a track, as its `TrackStored` event says.
async fn stored_size(app: &ImportApp, url: &str) -> u64 {
    let (size,): (i64,) = sqlx::query_as(
        "SELECT (payload -> 'TrackStored' ->> 'size')::bigint FROM events
         WHERE aggregate_type = 'track' AND aggregate_id = $1 AND event_type = 'TrackStored'",
    )
    .bind(TrackId::of_direct_link(url).to_string())
    .fetch_one(app.app.pool())
    .await
    .unwrap();
    size as u64
}

#[tokio::test]
async fn past_the_track_quota_imports_are_refused_and_a_list_is_refused_whole() {
    let app = import_app(Options {
        extra: vec![("IMPORT_MAX_TRACKS_PER_USER", "3".into())],
        ..Options::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let urls: Vec<String> = (1..=4)
        .map(|n| app.tone(&format!("quota-{n}.mp3"), &tone(1)))
        .collect();
    let first = app.start_import(&alice, &urls[0]).await;
    assert_eq!(
        app.finished_job(&alice, &first).await["status"],
        "completed"
    );
    let size = stored_size(&app, &urls[0]).await;

    // A feed of the tone she has and three new ones: two fit, so it is refused whole.
    let items: Vec<(&str, &str, Option<u32>)> =
        urls.iter().map(|u| ("A tone", u.as_str(), None)).collect();
    let feed = app.media.feed("quota.xml", "Quota", &items);
    let response = post(
        &app,
        &alice,
        "/imports/collections/preview",
        json!({"url": feed}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let preview: Value = response.json().await.unwrap();
    assert_eq!(
        preview["quota"],
        json!({
            "max_tracks": 3, "tracks": 1, "in_progress": 0, "bytes": size,
            "new_tracks": 3, "fits": 2,
            "note": "your quota leaves room for 2 of the 3 new tracks in this list; \
                     it cannot be imported until they all fit",
        })
    );
    let (status, code, message) = error_of(
        post(
            &app,
            &alice,
            "/imports/collections/confirm",
            json!({"url": feed}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    assert_eq!(
        message,
        "your library holds 1 track and 0 imports in progress; the limit is 3 tracks per \
         user (IMPORT_MAX_TRACKS_PER_USER): 3 more tracks would pass it (2 fit)"
    );
    // Nothing of it was written: no collection, no job, not a byte fetched.
    let user_id = app.user_id(&alice).await;
    let id = jukebox_domain::collection::id(user_id, &feed);
    assert!(app.history("collection_import", &id).await.is_empty());
    let (_, jobs) = get(&app, &alice, "/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");
    for n in 2..=4 {
        assert!(app.media.requests(&format!("quota-{n}.mp3")).is_empty());
    }

    // One by one, up to the limit; an import in progress counts.
    let second = app.start_import(&alice, &urls[1]).await;
    let third = app.start_import(&alice, &urls[2]).await;
    let (status, code, message) =
        error_of(post(&app, &alice, "/songs/import", json!({"url": urls[3]})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    assert!(
        message.contains("the limit is 3 tracks per user (IMPORT_MAX_TRACKS_PER_USER): 1 more track would pass it (0 fit)"),
        "{message}"
    );
    for job in [second, third] {
        assert_eq!(app.finished_job(&alice, &job).await["status"], "completed");
    }
    let (status, code, message) =
        error_of(post(&app, &alice, "/songs/import", json!({"url": urls[3]})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    assert_eq!(
        message,
        "your library holds 3 tracks and 0 imports in progress; the limit is 3 tracks per \
         user (IMPORT_MAX_TRACKS_PER_USER): 1 more track would pass it (0 fit)"
    );
    let bytes = std::fs::read(app.media.dir.join("quota-4.mp3")).unwrap();
    let (status, code, _) = error_of(upload(&app, &alice, bytes).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    let (_, jobs) = get(&app, &alice, "/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 3, "{jobs}");

    // Bob's library is his own.
    let bob = app.user("bob@example.com").await;
    let job = app.start_import(&bob, &urls[3]).await;
    assert_eq!(app.finished_job(&bob, &job).await["status"], "completed");
    app.cleanup().await;
}

#[tokio::test]
async fn past_the_byte_quota_imports_are_refused_and_an_upload_that_would_pass_it() {
    // Less than any tone: the first import is let in (its size is not known before it
    // is stored), and then nothing more.
    let app = import_app(Options {
        extra: vec![("IMPORT_MAX_BYTES_PER_USER", "1000".into())],
        ..Options::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let url = app.tone("bytes-1.mp3", &tone(1));
    let second = app.tone("bytes-2.mp3", &tone(1));
    let bytes = std::fs::read(app.media.dir.join("bytes-2.mp3")).unwrap();

    // An upload that would pass it is refused once its size is known; no job.
    let (status, code, message) = error_of(upload(&app, &alice, bytes.clone()).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    assert_eq!(
        message,
        format!(
            "your library's tracks take 0 KiB and the limit is 1 KiB per user \
             (IMPORT_MAX_BYTES_PER_USER) and this file is {} KiB: remove some tracks to \
             import more",
            bytes.len().div_ceil(1024)
        )
    );

    let job = app.start_import(&alice, &url).await;
    assert_eq!(app.finished_job(&alice, &job).await["status"], "completed");
    let size = stored_size(&app, &url).await;
    assert!(size > 1000, "a one-second tone is {size} bytes");
    let (status, code, message) =
        error_of(post(&app, &alice, "/songs/import", json!({"url": second})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    assert_eq!(
        message,
        format!(
            "your library's tracks take {} KiB and the limit is 1 KiB per user \
             (IMPORT_MAX_BYTES_PER_USER): remove some tracks to import more",
            size.div_ceil(1024)
        )
    );
    let (status, code, _) = error_of(upload(&app, &alice, bytes).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    // A list's preview says none fit.
    let feed = app
        .media
        .feed("bytes.xml", "Bytes", &[("Two", &second, None)]);
    let response = post(
        &app,
        &alice,
        "/imports/collections/preview",
        json!({"url": feed}),
    )
    .await;
    let preview: Value = response.json().await.unwrap();
    assert_eq!(
        (
            preview["quota"]["fits"].clone(),
            preview["quota"]["max_bytes"].clone()
        ),
        (json!(0), json!(1000)),
        "{preview}"
    );
    let (_, jobs) = get(&app, &alice, "/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");
    app.cleanup().await;
}
