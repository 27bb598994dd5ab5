//! `GET /songs/search` against a fake YouTube Data API on loopback.

use jukebox_domain::{Command, StoredTrack, TrackId};
use jukebox_nats::{CommandEnvelope, OutcomeStatus};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{error_of, import_app, Options, YOUTUBE_KEY};
use jukebox_test_support::imports::ALL_BUT_DOWNLOADER;
use jukebox_test_support::POSITION;

#[tokio::test]
async fn search_lists_videos_with_durations_and_my_flags() {
    let app = import_app(Options {
        // No downloader: the import of a YouTube video is finished by hand below, with
        // the commands the downloader would send (there is no YouTube on loopback).
        roles: ALL_BUT_DOWNLOADER,
        youtube: true,
        ..Default::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    // Passes the latest position the test's writes had, as the web app does.
    let search = |token: &str, q: &str| {
        let request = app
            .app
            .http
            .get(app.app.api("/songs/search"))
            .query(&[("q", q)])
            .bearer_auth(token.to_owned());
        match app.app.try_latest() {
            Some(after) => request.header(POSITION, after),
            None => request,
        }
        .send()
    };

    let body: Value = search(&alice, "some song")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["video_id"], "aaaaaaaaaaa");
    assert_eq!(results[0]["title"], "First Song");
    assert_eq!(results[0]["channel"], "Channel One");
    assert_eq!(results[0]["duration_s"], 213);
    assert_eq!(results[1]["duration_s"], 3720);
    assert_eq!(
        results[0]["thumbnail"],
        "https://i.ytimg.test/aaaaaaaaaaa.jpg"
    );
    assert_eq!(results[0]["stored"], false);
    assert_eq!(results[0]["in_library"], false);
    {
        let calls = app.youtube.as_ref().unwrap().calls.lock().unwrap();
        assert_eq!(calls[0]["q"], "some song");
        assert_eq!(calls[0]["key"], YOUTUBE_KEY);
        assert_eq!(calls[1]["id"], "aaaaaaaaaaa,bbbbbbbbbbb");
    }

    // Alice imports the first video; it is stored and in her library, not Bob's.
    let response = app
        .app
        .http
        .post(app.app.api("/songs/import"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({ "video_id": "aaaaaaaaaaa" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    let job_id: Uuid = job["job_id"].as_str().unwrap().parse().unwrap();
    let bus = app.app.bus().await;
    let track_id = TrackId::parse("yt:aaaaaaaaaaa").unwrap();
    let requested_by: Uuid = {
        let history = app.history("import", &job_id.to_string()).await;
        history[0].1["ImportRequested"]["requested_by"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    for command in [
        Command::StoreTrack {
            track: StoredTrack {
                track_id: track_id.clone(),
                object_key: "tracks/yt:aaaaaaaaaaa.m4a".into(),
                size: 1000,
                duration_ms: 213_000,
                codec: "aac".into(),
                bitrate: 256_000,
                title: Some("First Song".into()),
                artist: Some("Channel One".into()),
                album: None,
                artists: Vec::new(),
                year: None,
                has_cover: false,
                origin: "https://www.youtube.com/watch?v=aaaaaaaaaaa".into(),
                cover: None,
            },
        },
        Command::CompleteImport {
            job_id,
            user_id: requested_by,
            track_id: track_id.clone(),
        },
    ] {
        let envelope = CommandEnvelope {
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            issued_by: None,
            issued_at: time::OffsetDateTime::now_utc(),
            command,
        };
        let outcome = bus
            .send(&envelope, std::time::Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome.status, OutcomeStatus::Committed, "{outcome:?}");
        app.app.note(outcome.position.as_deref().unwrap());
    }
    let body: Value = search(&alice, "some song")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["results"][0]["stored"], true);
    assert_eq!(body["results"][0]["in_library"], true);
    assert_eq!(body["results"][1]["stored"], false);
    let body: Value = search(&bob, "some song")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["results"][0]["stored"], true);
    assert_eq!(body["results"][0]["in_library"], false);

    app.cleanup().await;
}

#[tokio::test]
async fn search_errors_are_clear() {
    let app = import_app(Options {
        roles: ALL_BUT_DOWNLOADER,
        youtube: true,
        ..Default::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let search = |q: String| {
        app.app
            .http
            .get(app.app.api("/songs/search"))
            .query(&[("q", q)])
            .bearer_auth(&alice)
            .send()
    };
    // Bad queries never reach YouTube.
    for q in [String::new(), "   ".into(), "x".repeat(201)] {
        let (status, code, _) = error_of(search(q).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query")
        );
    }
    let missing = app
        .app
        .http
        .get(app.app.api("/songs/search"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app
        .youtube
        .as_ref()
        .unwrap()
        .calls
        .lock()
        .unwrap()
        .is_empty());

    for query in [
        "q=x&limit=abc",
        "q=x&limit=0",
        "q=x&limit=1000",
        "q=a&q=b&limit=-1",
    ] {
        let response = app
            .app
            .http
            .get(app.app.api(&format!("/songs/search?{query}")))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit"),
            "{query}"
        );
    }
    assert!(app
        .youtube
        .as_ref()
        .unwrap()
        .calls
        .lock()
        .unwrap()
        .is_empty());

    // Upstream trouble: 503 when it may pass (quota, outage), 502 when it answers wrong.
    for (q, status, code, words) in [
        (
            "quota",
            StatusCode::SERVICE_UNAVAILABLE,
            "search_unavailable",
            "quota exceeded",
        ),
        (
            "broken",
            StatusCode::SERVICE_UNAVAILABLE,
            "search_unavailable",
            "oops",
        ),
        (
            "garbage",
            StatusCode::BAD_GATEWAY,
            "search_failed",
            "no results list",
        ),
        (
            "badkey",
            StatusCode::BAD_GATEWAY,
            "search_failed",
            "API key not valid",
        ),
    ] {
        let (got_status, got_code, message) = error_of(search(q.into()).await.unwrap()).await;
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{q}: {message}"
        );
        assert!(message.contains("YouTube search"), "{message}");
        assert!(message.contains(words), "{q}: {message}");
        assert!(!message.contains(YOUTUBE_KEY), "the key leaked: {message}");
    }
    let unauthenticated = app
        .app
        .http
        .get(app.app.api("/songs/search?q=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

#[tokio::test]
async fn searches_are_cached_for_everyone_and_limited_per_user() {
    let app = import_app(Options {
        roles: ALL_BUT_DOWNLOADER,
        youtube: true,
        extra: vec![("SEARCH_PER_MINUTE", "2".into())],
        ..Default::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let search = |token: &str, q: &str| {
        app.app
            .http
            .get(app.app.api("/songs/search"))
            .query(&[("q", q)])
            .bearer_auth(token.to_owned())
            .send()
    };
    // Requests YouTube saw: a search and a details call per search sent.
    let youtube_calls = || app.youtube.as_ref().unwrap().calls.lock().unwrap().len();

    assert_eq!(
        search(&alice, "first").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(youtube_calls(), 2);
    // The same query, however spaced or cased, from anyone: the cache answers.
    for (token, q) in [(&alice, "First"), (&bob, "  first ")] {
        let response = search(token, q).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["results"].as_array().unwrap().len(), 2);
    }
    assert_eq!(youtube_calls(), 2);

    // Alice's second search that reaches YouTube is her last this minute.
    assert_eq!(
        search(&alice, "second").await.unwrap().status(),
        StatusCode::OK
    );
    let refused = search(&alice, "third").await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..=60).contains(&retry_after), "{retry_after}");
    let (status, code, message) = error_of(refused).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "search_rate_limited")
    );
    assert_eq!(
        message,
        format!("you can search YouTube 2 times a minute; try again in {retry_after} seconds")
    );
    assert_eq!(
        youtube_calls(),
        4,
        "the refused search never reached YouTube"
    );
    // What is cached still answers her; Bob has his own allowance.
    assert_eq!(
        search(&alice, "first").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        search(&bob, "third").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(youtube_calls(), 6);

    app.cleanup().await;
}
