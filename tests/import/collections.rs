//! Playlists, channels and feeds imported whole (issue 20): a loopback RSS feed of test
//! tones, which yt-dlp's generic extractor lists as a playlist. Preview counts, confirm,
//! the playlist in the feed's order, a second import adding nothing, and bad lists
//! refused whole.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_of, import_app, nothing_in_progress, tone, ImportApp, Options};
use jukebox_domain::TrackId;
use jukebox_test_support::POSITION;

pub(crate) async fn post(
    app: &ImportApp,
    token: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    let mut request = app.app.http.post(app.app.api(path)).bearer_auth(token);
    if let Some(position) = app.app.try_latest() {
        request = request.header(POSITION, position);
    }
    let response = request.json(&body).send().await.unwrap();
    app.app.saw(&response);
    response
}

pub(crate) async fn get(app: &ImportApp, token: &str, path: &str) -> (StatusCode, Value) {
    let mut request = app.app.http.get(app.app.api(path)).bearer_auth(token);
    if let Some(position) = app.app.try_latest() {
        request = request.header(POSITION, position);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls the collection's progress until nothing remains (the downloader's work answers
/// no write of the test), then waits for each job as `finished_job` does, so later reads
/// pass the jobs' positions.
pub(crate) async fn finished_collection(
    app: &ImportApp,
    token: &str,
    collection_id: &str,
) -> Value {
    for _ in 0..900 {
        let (status, body) =
            get(app, token, &format!("/imports/collections/{collection_id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["remaining"] == 0 {
            for entry in body["entries"].as_array().unwrap() {
                app.finished_job(token, entry["job_id"].as_str().unwrap())
                    .await;
            }
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("collection {collection_id} did not finish");
}

#[tokio::test]
async fn a_feed_is_previewed_imported_in_its_order_and_never_twice() {
    let app = import_app(Options::default()).await;
    let alice = app.user("alice@example.com").await;
    let urls: Vec<String> = (1..=4)
        .map(|n| app.tone(&format!("feed-{n}.mp3"), &tone(2)))
        .collect();
    // Alice has the first tone already: stored on the server and in her library.
    let first = app.start_import(&alice, &urls[0]).await;
    assert_eq!(
        app.finished_job(&alice, &first).await["status"],
        "completed"
    );
    let feed = app.media.feed(
        "tones.xml",
        "Four Tones",
        &[
            ("Tone one", &urls[0], Some(2)),
            ("Tone two", &urls[1], None),
            ("Tone three, too long", &urls[2], Some(99_999)),
            ("Tone four", &urls[3], Some(2)),
        ],
    );
    let ids: Vec<String> = urls
        .iter()
        .map(|u| TrackId::of_direct_link(u).to_string())
        .collect();

    let response = post(
        &app,
        &alice,
        "/imports/collections/preview",
        json!({"url": feed}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let preview: Value = response.json().await.unwrap();
    let collection_id = preview["collection_id"].as_str().unwrap().to_owned();
    assert_eq!(collection_id.len(), 32);
    assert_eq!(
        preview,
        json!({
            "url": feed,
            "collection_id": collection_id,
            "title": "Four Tones",
            "entry_count": 4,
            "cap": 2000,
            "capped": false,
            "importable": 3,
            "in_library": 1,
            "stored": 1,
            "entries": [
                {"position": 1, "title": "Tone one", "track_id": ids[0], "stored": true, "in_library": true},
                {"position": 2, "title": "Tone two", "track_id": ids[1], "stored": false, "in_library": false},
                {"position": 4, "title": "Tone four", "track_id": ids[3], "stored": false, "in_library": false},
            ],
            "skipped": [
                {"position": 3, "title": "Tone three, too long", "url": urls[2], "reason": "too_long"},
            ],
        })
    );
    // Bob sees the stored tone as stored, not as his.
    let bob = app.user("bob@example.com").await;
    let response = post(
        &app,
        &bob,
        "/imports/collections/preview",
        json!({"url": feed}),
    )
    .await;
    let theirs: Value = response.json().await.unwrap();
    assert_eq!(
        (theirs["stored"].clone(), theirs["in_library"].clone()),
        (json!(1), json!(0))
    );

    let response = post(
        &app,
        &alice,
        "/imports/collections/confirm",
        json!({"url": feed}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let confirmed: Value = response.json().await.unwrap();
    let playlist_id = confirmed["playlist_id"].as_str().unwrap().to_owned();
    assert_eq!(confirmed["added"], 3, "{confirmed}");
    assert_eq!(confirmed["already_imported"], 0);
    assert_eq!(confirmed["collection_id"], collection_id.as_str());
    assert_eq!(
        confirmed["skipped"],
        json!([{"position": 3, "title": "Tone three, too long", "url": urls[2], "reason": "too_long"}])
    );

    let progress = finished_collection(&app, &alice, &collection_id).await;
    assert_eq!(
        (
            progress["total"].clone(),
            progress["done"].clone(),
            progress["failed"].clone(),
            progress["remaining"].clone()
        ),
        (json!(3), json!(3), json!(0), json!(0)),
        "{progress:#}"
    );
    let statuses: Vec<(&str, &str)> = progress["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["track_id"].as_str().unwrap(),
                e["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (ids[0].as_str(), "completed"),
            (ids[1].as_str(), "completed"),
            (ids[3].as_str(), "completed")
        ]
    );
    // The playlist holds the feed's entries in the feed's order, under its title.
    let (status, playlist) = get(&app, &alice, &format!("/playlists/{playlist_id}?limit=50")).await;
    assert_eq!(status, StatusCode::OK, "{playlist}");
    assert_eq!(playlist["name"], "Four Tones");
    let order: Vec<&str> = playlist["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["track_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [ids[0].as_str(), ids[1].as_str(), ids[3].as_str()]);
    let mut library = app.library(&alice).await;
    library.sort();
    let mut expected = vec![ids[0].clone(), ids[1].clone(), ids[3].clone()];
    expected.sort();
    assert_eq!(library, expected);

    // The same URL again (written differently): nothing is added twice, no tone fetched.
    let user_id = app.user_id(&alice).await;
    let aggregate_id = format!("{user_id}/{collection_id}");
    let before = (
        app.history("collection_import", &aggregate_id).await.len(),
        app.history("playlist", &playlist_id).await.len(),
    );
    let tone_requests: usize = (1..=4)
        .map(|n| app.media.requests(&format!("feed-{n}.mp3")).len())
        .sum();
    let again = format!("{feed}#again");
    let response = post(
        &app,
        &alice,
        "/imports/collections/confirm",
        json!({"url": again}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let second: Value = response.json().await.unwrap();
    assert_eq!(
        (second["added"].clone(), second["already_imported"].clone()),
        (json!(0), json!(3))
    );
    assert_eq!(second["playlist_id"], playlist_id.as_str());
    assert_eq!(
        (
            app.history("collection_import", &aggregate_id).await.len(),
            app.history("playlist", &playlist_id).await.len(),
        ),
        before
    );
    assert_eq!(
        (1..=4)
            .map(|n| app.media.requests(&format!("feed-{n}.mp3")).len())
            .sum::<usize>(),
        tone_requests
    );
    let (_, progress) = get(
        &app,
        &alice,
        &format!("/imports/collections/{collection_id}"),
    )
    .await;
    assert_eq!(
        (progress["total"].clone(), progress["done"].clone()),
        (json!(3), json!(3))
    );
    // Someone else's import of it is not there to see.
    let (status, _) = get(&app, &bob, &format!("/imports/collections/{collection_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    nothing_in_progress(&app.app).await;
    assert!(app.leftovers().is_empty(), "{:?}", app.leftovers());
    app.cleanup().await;
}

#[tokio::test]
async fn bad_lists_get_a_clear_answer_and_nothing_is_half_imported() {
    let app = import_app(Options {
        extra: vec![("IMPORT_COLLECTION_MAX_ENTRIES", "2".into())],
        ..Options::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let urls: Vec<String> = (1..=3)
        .map(|n| app.file(&format!("never-{n}.mp3"), b"not fetched"))
        .collect();
    let items: Vec<(&str, &str, Option<u32>)> =
        urls.iter().map(|u| ("A tone", u.as_str(), None)).collect();

    // More entries than the cap: the preview says so, and lists the first ones.
    let feed = app.media.feed("long.xml", "Long", &items);
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
        (
            preview["entry_count"].clone(),
            preview["cap"].clone(),
            preview["capped"].clone(),
            preview["importable"].clone(),
            preview["note"].clone()
        ),
        (
            json!(3),
            json!(2),
            json!(true),
            json!(2),
            json!("this list has 3 entries; one import takes the first 2")
        )
    );

    // A feed that answers 429, or garbage: refused, nothing written.
    let limited = app.media.status_url(429, "feed.xml");
    let (status, code, message) = error_of(
        post(
            &app,
            &alice,
            "/imports/collections/preview",
            json!({"url": limited}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "collection_unavailable")
    );
    assert!(message.contains("HTTP Error 429"), "{message}");
    let garbage = app.file("garbage.xml", b"<<<not a feed");
    let (status, code, message) = error_of(
        post(
            &app,
            &alice,
            "/imports/collections/confirm",
            json!({"url": garbage}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_collection")
    );
    assert_eq!(
        message,
        "this link cannot be imported: no audio could be found at this link"
    );
    // One track is not a list: its own code, so the web app imports it as a song.
    let one = app.file("one.mp3", b"not fetched");
    let (status, code, message) = error_of(
        post(
            &app,
            &alice,
            "/imports/collections/preview",
            json!({"url": one}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "not_a_collection")
    );
    assert_eq!(
        message,
        "this link is one track, not a playlist or channel; import it as a song"
    );

    // A feed that disappears between preview and confirm: refused whole.
    let short = app.media.feed("gone.xml", "Gone", &items[..1]);
    let response = post(
        &app,
        &alice,
        "/imports/collections/preview",
        json!({"url": short}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    std::fs::remove_file(app.media.dir.join("gone.xml")).unwrap();
    let (status, code, message) = error_of(
        post(
            &app,
            &alice,
            "/imports/collections/confirm",
            json!({"url": short}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_collection")
    );
    assert!(message.contains("HTTP Error 404"), "{message}");
    let user_id = app.user_id(&alice).await;
    let id = jukebox_domain::collection::id(user_id, &short);
    assert!(app.history("collection_import", &id).await.is_empty());
    let (_, jobs) = get(&app, &alice, "/jobs").await;
    assert_eq!(jobs["jobs"], json!([]));
    for url in &urls {
        assert_eq!(app.media.requests(url.rsplit('/').next().unwrap()).len(), 0);
    }

    // A YouTube playlist link on the one-song route points to these routes.
    let response = app
        .import_url(&alice, "https://www.youtube.com/playlist?list=PLabc")
        .await;
    let (status, code, message) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "is_a_collection")
    );
    assert!(
        message.contains("POST /imports/collections/preview"),
        "{message}"
    );

    app.cleanup().await;
}

/// `IMPORT_MAX_JOBS_PER_USER`: past it an import, or a list that would pass it, is a 429
/// naming the limit; another user is not held back. (No downloader: the jobs stay open.)
#[tokio::test]
async fn a_user_past_the_jobs_in_flight_cap_gets_a_429_naming_it() {
    let app = import_app(Options {
        roles: crate::helpers::ALL_BUT_DOWNLOADER,
        extra: vec![("IMPORT_MAX_JOBS_PER_USER", "2".into())],
        ..Options::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let one = app.file("one.mp3", b"not fetched");
    let two = app.file("two.mp3", b"not fetched");
    app.start_import(&alice, &one).await;
    let feed = app.media.feed(
        "two.xml",
        "Two",
        &[("One", &one, None), ("Two", &two, None)],
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
        (StatusCode::TOO_MANY_REQUESTS, "too_many_imports")
    );
    assert_eq!(
        message,
        "you have 1 imports in progress and the limit is 2 per user \
         (IMPORT_MAX_JOBS_PER_USER); 2 more would pass it: wait for some to finish"
    );
    app.start_import(&alice, &two).await;
    let (status, code, message) =
        error_of(post(&app, &alice, "/songs/import", json!({"url": one})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_imports")
    );
    assert!(
        message.starts_with("you have 2 imports in progress and the limit is 2"),
        "{message}"
    );
    // Bob's imports do not count against Alice's, nor hers against his.
    let bob = app.user("bob@example.com").await;
    app.start_import(&bob, &one).await;
    app.cleanup().await;
}

/// Round-robin between users (ADR 36): Bob's one import does not wait behind Alice's
/// 200-entry list; it completes before half of hers are done.
#[tokio::test]
async fn a_single_import_is_not_stuck_behind_another_users_long_list() {
    let app = import_app(Options::default()).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.tone("model.mp3", &tone(1));
    let bytes = std::fs::read(app.media.dir.join("model.mp3")).unwrap();
    // 200 sources (each its own URL, so its own track), one file's bytes.
    let urls: Vec<String> = (0..200)
        .map(|n| app.file(&format!("many-{n}.mp3"), &bytes))
        .collect();
    let items: Vec<(&str, &str, Option<u32>)> =
        urls.iter().map(|u| ("Many", u.as_str(), None)).collect();
    let feed = app.media.feed("many.xml", "Many", &items);
    let response = post(
        &app,
        &alice,
        "/imports/collections/confirm",
        json!({"url": feed}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let confirmed: Value = response.json().await.unwrap();
    // All 200 are new, whichever delivery of the command answered (a redelivery past
    // `ack_wait` under load once made it 192 + 8, fixed since: `copies_of_a_long_plan_*`
    // in tests/backbone).
    assert_eq!(confirmed["added"], 200, "{confirmed}");
    assert_eq!(confirmed["already_imported"], 0, "{confirmed}");
    let collection_id = confirmed["collection_id"].as_str().unwrap().to_owned();

    let single = app.file("single.mp3", &bytes);
    let job = app.start_import(&bob, &single).await;
    assert_eq!(app.finished_job(&bob, &job).await["status"], "completed");
    let (_, progress) = get(
        &app,
        &alice,
        &format!("/imports/collections/{collection_id}"),
    )
    .await;
    let done = progress["done"].as_u64().unwrap();
    let counted =
        done + progress["failed"].as_u64().unwrap() + progress["remaining"].as_u64().unwrap();
    assert_eq!(counted, 200, "every entry has a job: {progress}");
    assert!(
        done < 100,
        "{done} of Alice's 200 were done before Bob's one"
    );
    app.cleanup().await;
}
