//! Subscriptions (issue 20, ADR 40) to a loopback RSS feed of tones, checked by the
//! downloader's scheduler every second here: the first check imports only the latest N,
//! an entry added to the feed is imported at the next check and nothing else is, pause
//! stops checks and resume restarts them, unsubscribe ends them, a feed answering 429
//! backs off visibly, and another user's id names nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::collections::{finished_collection, get, post};
use crate::helpers::{error_of, import_app, nothing_in_progress, tone, ImportApp, Options};
use jukebox_domain::TrackId;

async fn send(app: &ImportApp, token: &str, method: reqwest::Method, path: &str) -> StatusCode {
    let response = app
        .app
        .http
        .request(method, app.app.api(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    app.app.saw(&response);
    response.status()
}

/// Polls my subscription until `done` holds (the scheduler's checks answer no write of
/// the test, as the downloader's jobs do not).
async fn until(app: &ImportApp, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let (status, body) = get(app, token, &format!("/subscriptions/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("subscription {id} never got there");
}

fn feed(app: &ImportApp, urls: &[&String]) -> String {
    let items: Vec<(String, &str)> = urls
        .iter()
        .map(|u| {
            (
                format!("Tone {}", u.rsplit('/').next().unwrap()),
                u.as_str(),
            )
        })
        .collect();
    let items: Vec<(&str, &str, Option<u32>)> = items
        .iter()
        .map(|(t, u)| (t.as_str(), *u, Some(2)))
        .collect();
    app.media.feed("subscribed.xml", "Subscribed Tones", &items)
}

fn track_ids(progress: &Value) -> Vec<String> {
    progress["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["track_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_subscription_imports_the_latest_then_each_new_entry_once_until_it_ends() {
    let app = import_app(Options {
        extra: vec![
            ("SUBSCRIPTION_CHECK_INTERVAL_SECS", "1".into()),
            ("SUBSCRIPTION_BACKOFF_BASE_SECS", "1".into()),
        ],
        ..Options::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let urls: Vec<String> = (1..=5)
        .map(|n| app.tone(&format!("sub-{n}.mp3"), &tone(2)))
        .collect();
    let ids: Vec<String> = urls
        .iter()
        .map(|u| TrackId::of_direct_link(u).to_string())
        .collect();
    // Newest first, as feeds and channels list.
    let url = feed(&app, &[&urls[2], &urls[1], &urls[0]]);

    let response = post(
        &app,
        &alice,
        "/subscriptions",
        json!({"url": url, "latest": 2}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let playlist_id = created["playlist_id"].as_str().unwrap().to_owned();
    assert_eq!(created["location"], format!("/subscriptions/{id}"));
    // Subscribing twice is refused; so is a `latest` of 0.
    let again = post(&app, &alice, "/subscriptions", json!({"url": url})).await;
    assert_eq!(error_of(again).await.0, StatusCode::CONFLICT);
    let zero = post(
        &app,
        &alice,
        "/subscriptions",
        json!({"url": url, "latest": 0}),
    )
    .await;
    let (status, code, _) = error_of(zero).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_latest")
    );

    // The first check takes the latest two; the third is seen and never imported.
    let first = until(&app, &alice, &id, |s| s["checks"].as_i64() >= Some(1)).await;
    assert_eq!(first["state"], "active", "{first:#}");
    assert_eq!(first["title"], "Subscribed Tones");
    let aggregate_id = format!("{}/{id}", app.user_id(&alice).await);
    let history = app.history("subscription", &aggregate_id).await;
    let checked = &history[1].1["SubscriptionChecked"];
    assert_eq!(
        (&checked["found"], &checked["new"], &checked["skipped"]),
        (&json!(3), &json!(3), &json!(0)),
        "{history:?}"
    );
    assert_eq!(checked["imported"].as_array().unwrap().len(), 2);
    assert_eq!(checked["passed_over"], json!([ids[0]]));
    let progress = finished_collection(&app, &alice, &id).await;
    assert_eq!(track_ids(&progress), [ids[2].clone(), ids[1].clone()]);
    assert_eq!(progress["done"], 2, "{progress:#}");

    // One entry added to the feed: exactly that one is imported at the next check.
    feed(&app, &[&urls[3], &urls[2], &urls[1], &urls[0]]);
    let later = until(&app, &alice, &id, |s| {
        s["imported_total"] == 3 && s["last_check"]["new"] == 0
    })
    .await;
    assert_eq!(
        later["last_check"],
        json!({"found": 4, "new": 0, "imported": 0, "skipped": 0})
    );
    let progress = finished_collection(&app, &alice, &id).await;
    assert_eq!(
        track_ids(&progress),
        [ids[2].clone(), ids[1].clone(), ids[3].clone()]
    );
    let (status, playlist) = get(&app, &alice, &format!("/playlists/{playlist_id}?limit=50")).await;
    assert_eq!(status, StatusCode::OK, "{playlist}");
    let order: Vec<&str> = playlist["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["track_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [ids[2].as_str(), ids[1].as_str(), ids[3].as_str()]);
    let mut library = app.library(&alice).await;
    library.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone(), ids[3].clone()];
    expected.sort();
    assert_eq!(library, expected);
    // Every check is an event; the ones after it found nothing new.
    let history = app.history("subscription", &aggregate_id).await;
    let imported: Vec<usize> = history
        .iter()
        .filter(|(t, _)| t == "SubscriptionChecked")
        .map(|(_, p)| {
            p["SubscriptionChecked"]["imported"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(imported.iter().sum::<usize>(), 3, "{imported:?}");
    assert_eq!(imported[0], 2);

    // Another user's id names nothing of theirs.
    for (method, path) in [
        (reqwest::Method::GET, format!("/subscriptions/{id}")),
        (reqwest::Method::POST, format!("/subscriptions/{id}/pause")),
        (reqwest::Method::POST, format!("/subscriptions/{id}/resume")),
        (reqwest::Method::DELETE, format!("/subscriptions/{id}")),
    ] {
        assert_eq!(
            send(&app, &bob, method, &path).await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let (_, theirs) = get(&app, &bob, "/subscriptions").await;
    assert_eq!(theirs["subscriptions"], json!([]));

    // Paused: no check runs, whatever the feed gains.
    let paused = send(
        &app,
        &alice,
        reqwest::Method::POST,
        &format!("/subscriptions/{id}/pause"),
    )
    .await;
    assert_eq!(paused, StatusCode::NO_CONTENT);
    let (_, before) = get(&app, &alice, &format!("/subscriptions/{id}")).await;
    assert_eq!(before["state"], "paused");
    assert_eq!(before["next_check_at"], Value::Null);
    let events = app.history("subscription", &aggregate_id).await.len();
    feed(&app, &[&urls[4], &urls[3], &urls[2], &urls[1], &urls[0]]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        app.history("subscription", &aggregate_id).await.len(),
        events
    );
    let (_, still) = get(&app, &alice, &format!("/subscriptions/{id}")).await;
    assert_eq!(
        (still["checks"].clone(), still["imported_total"].clone()),
        (before["checks"].clone(), json!(3))
    );
    // Resumed: the next check imports what came meanwhile.
    let resumed = send(
        &app,
        &alice,
        reqwest::Method::POST,
        &format!("/subscriptions/{id}/resume"),
    )
    .await;
    assert_eq!(resumed, StatusCode::NO_CONTENT);
    let again = send(
        &app,
        &alice,
        reqwest::Method::POST,
        &format!("/subscriptions/{id}/resume"),
    )
    .await;
    assert_eq!(again, StatusCode::CONFLICT);
    until(&app, &alice, &id, |s| s["imported_total"] == 4).await;
    let progress = finished_collection(&app, &alice, &id).await;
    assert_eq!(track_ids(&progress).last(), Some(&ids[4]));

    // Unsubscribed: gone from the API, and no check after it.
    let gone = send(
        &app,
        &alice,
        reqwest::Method::DELETE,
        &format!("/subscriptions/{id}"),
    )
    .await;
    assert_eq!(gone, StatusCode::NO_CONTENT);
    let (status, _) = get(&app, &alice, &format!("/subscriptions/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, mine) = get(&app, &alice, "/subscriptions").await;
    assert_eq!(mine["subscriptions"], json!([]));
    let events = app.history("subscription", &aggregate_id).await;
    assert_eq!(events.last().unwrap().0, "Unsubscribed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        app.history("subscription", &aggregate_id).await.len(),
        events.len()
    );
    let again = send(
        &app,
        &alice,
        reqwest::Method::DELETE,
        &format!("/subscriptions/{id}"),
    )
    .await;
    assert_eq!(again, StatusCode::NOT_FOUND);

    nothing_in_progress(&app.app).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_feed_answering_429_backs_off_and_says_until_when() {
    let app = import_app(Options {
        extra: vec![
            ("SUBSCRIPTION_CHECK_INTERVAL_SECS", "1".into()),
            ("SUBSCRIPTION_BACKOFF_BASE_SECS", "600".into()),
            ("SUBSCRIPTION_MAX_PER_USER", "2".into()),
        ],
        ..Options::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let busy = app.media.status_url(429, "busy.xml");
    let response = post(&app, &alice, "/subscriptions", json!({"url": busy})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let backing_off = until(&app, &alice, &id, |s| s["state"] == "backing_off").await;
    assert_eq!(backing_off["rate_limited"], true, "{backing_off:#}");
    assert_eq!(backing_off["failures"], 1);
    assert_eq!(backing_off["checks"], 1);
    let reason = backing_off["reason"].as_str().unwrap();
    assert!(reason.contains("429"), "{reason}");
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let retry_at = parse(&backing_off["retry_at"]);
    assert_eq!(
        retry_at - parse(&backing_off["last_checked_at"]),
        time::Duration::seconds(600)
    );
    assert_eq!(backing_off["next_check_at"], backing_off["retry_at"]);
    let (_, list) = get(&app, &alice, "/subscriptions").await;
    assert_eq!(list["subscriptions"][0]["state"], "backing_off");
    assert_eq!(list["limit"], 2);

    // The per-user cap, and links that are not links.
    let second = app.media.status_url(429, "other.xml");
    let response = post(&app, &alice, "/subscriptions", json!({"url": second})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let third = app.media.status_url(429, "third.xml");
    let response = post(&app, &alice, "/subscriptions", json!({"url": third})).await;
    let (status, code, message) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_subscriptions")
    );
    assert!(message.contains("SUBSCRIPTION_MAX_PER_USER"), "{message}");
    let response = post(
        &app,
        &alice,
        "/subscriptions",
        json!({"url": "ftp://example.com/x"}),
    )
    .await;
    assert_eq!(error_of(response).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = get(&app, &alice, "/subscriptions/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    nothing_in_progress(&app.app).await;
    app.cleanup().await;
}
