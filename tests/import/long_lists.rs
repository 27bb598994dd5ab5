//! A list of 100,000 entries (issue 20, bad input): the preview reads only the first
//! `IMPORT_COLLECTION_MAX_ENTRIES` of it, says how many the source has and that one
//! import takes the first ones; nothing is fetched or written by a preview.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::collections::{get, post};
use crate::helpers::{import_app, Options};

#[tokio::test]
async fn a_list_of_100000_entries_is_capped_and_the_preview_says_so() {
    let app = import_app(Options {
        extra: vec![("IMPORT_COLLECTION_MAX_ENTRIES", "50".into())],
        ..Options::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    // Entries on a port nothing listens on: a preview must not touch them.
    let urls: Vec<String> = (0..100_000)
        .map(|n| format!("http://127.0.0.1:9/entry-{n}.mp3"))
        .collect();
    let items: Vec<(&str, &str, Option<u32>)> = urls
        .iter()
        .map(|u| ("An entry", u.as_str(), None))
        .collect();
    let feed = app.media.feed("huge.xml", "Huge", &items);
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
            preview["entries"].as_array().map(Vec::len),
            preview["note"].clone(),
        ),
        (
            json!(100_000),
            json!(50),
            json!(true),
            json!(50),
            Some(50),
            json!("this list has 100000 entries; one import takes the first 50"),
        )
    );
    assert_eq!(preview["entries"][49]["position"], 50);
    let (_, jobs) = get(&app, &alice, "/jobs").await;
    assert_eq!(jobs["jobs"], json!([]));
    app.cleanup().await;
}
