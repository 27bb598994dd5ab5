//! The saved play queue (issue 19, ADR 28): real clients save and read it back through
//! `savePlayQueue`/`getPlayQueue`; bad input gets the spec's codes; the web app's
//! `/me/play-queue` shares it, and reads right after a save are served by that save.

use std::path::Path;
use std::process::Command;

use jukebox_projections::{Music, ReadModel};
use jukebox_test_support::tool;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::api::{Auth, Rest};
use crate::credentials::create;
use crate::helpers::{error_of, import_app, ImportApp, Options};
use crate::rest::{import_tone, port_of};

/// Runs `clients.py queue-<client>` with these song ids and returns what it saw.
fn run_queue_client(client: &str, port: u16, secret: &str, ids: &[String]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/subsonic/clients.py");
    let output = Command::new(tool("subsonic-clients-python"))
        .arg(script)
        .args([
            &format!("queue-{client}"),
            &port.to_string(),
            "ann@example.com",
            secret,
            &ids.join(","),
        ])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{client} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Ann with three songs and an app credential.
async fn ann_with_songs(app: &ImportApp) -> (String, String, Vec<String>) {
    let ann = app.user("ann@example.com").await;
    let mut songs = Vec::new();
    for n in 1..=3 {
        songs.push(
            import_tone(
                app,
                &ann,
                &format!("q{n}.mp3"),
                &format!("Queued {n}"),
                false,
            )
            .await,
        );
    }
    app.tracks_applied().await;
    app.app.applied_latest(&[ReadModel::of::<Music>()]).await;
    let secret = create(app, &ann, "Phone").await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    (ann, secret, songs)
}

#[tokio::test]
async fn real_clients_save_the_play_queue_and_read_it_back() {
    let app = import_app(Options::default()).await;
    let (_, secret, songs) = ann_with_songs(&app).await;
    let port = port_of(&app.app.api("/"));
    // The songs in another order than they were added, so the order is the queue's.
    let queue = vec![songs[2].clone(), songs[0].clone(), songs[1].clone()];
    for client in ["opensonic", "pysonic"] {
        let (secret, given) = (secret.clone(), queue.clone());
        let seen =
            tokio::task::spawn_blocking(move || run_queue_client(client, port, &secret, &given))
                .await
                .unwrap();
        assert_eq!(seen["ids"], json!(queue), "{client}: {seen}");
        assert_eq!(seen["current"], queue[1].as_str(), "{client}");
        assert_eq!(seen["position"], 61500, "{client}");
        assert_eq!(seen["username"], "ann@example.com", "{client}");
        let by = seen["changed_by"].as_str().unwrap();
        assert!(by.starts_with("py"), "{client}: changedBy {by}");
        // An id that is no song of hers: "not found" (70), and nothing saved.
        assert_eq!(seen["bad_id"], "DataNotFoundError", "{client}: {seen}");
        assert_eq!(seen["after_bad"], json!(queue), "{client}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn bad_queues_get_the_spec_codes_and_the_web_app_shares_the_queue() {
    let app = import_app(Options::default()).await;
    let (ann, secret, songs) = ann_with_songs(&app).await;
    let bob = app.user("bob@example.com").await;
    let bobs = import_tone(&app, &bob, "b.mp3", "Bob's", false).await;
    let rest = Rest::new(app.app.api(""));
    let key = Auth::ApiKey(secret.clone());

    // Never saved: an empty queue dated the epoch (apps keep their own).
    let empty = rest.call("getPlayQueue", &key, &[]).await;
    assert_eq!(empty["playQueue"]["entry"], json!([]), "{empty}");
    assert_eq!(empty["playQueue"]["changed"], "1970-01-01T00:00:00Z");
    assert_eq!(empty["playQueue"].get("current"), None);

    let a = songs[0].as_str();
    let b = songs[1].as_str();
    for (params, code) in [
        // Another user's song, an unknown one, one that is not an id: not found.
        (vec![("id", a), ("id", bobs.as_str()), ("current", a)], 70),
        (
            vec![("id", "yt:nothing-here"), ("current", "yt:nothing-here")],
            70,
        ),
        (vec![("id", "no colon"), ("current", "no colon")], 70),
        // A current song outside the queue, none, a position that is none: invalid.
        (vec![("id", a), ("current", b)], 10),
        (vec![("id", a)], 10),
        (vec![("id", a), ("current", a), ("position", "-1")], 10),
        (vec![("id", a), ("current", a), ("position", "many")], 10),
    ] {
        assert_eq!(
            rest.error_code("savePlayQueue", &key, &params).await,
            code,
            "{params:?}"
        );
    }
    // 1001 songs: over the cap, which the message names.
    let many: Vec<(&str, &str)> = std::iter::repeat_n(("id", a), 1001)
        .chain([("current", a)])
        .collect();
    let answer = rest.json("savePlayQueue", &key, &many).await;
    assert_eq!(answer["error"]["code"], 10, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000"),
        "{answer}"
    );
    // Nothing of that was saved.
    let still = rest.call("getPlayQueue", &key, &[]).await;
    assert_eq!(still["playQueue"]["entry"], json!([]));

    // Saved by an app, read at once by the web app (the save waited for the read model).
    rest.call(
        "savePlayQueue",
        &key,
        &[
            ("id", b),
            ("id", a),
            ("current", a),
            ("position", "2500"),
            ("c", "Symfonium"),
        ],
    )
    .await;
    let web = get_queue(&app, &ann, None).await;
    assert_eq!(
        web["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["track_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [b, a]
    );
    assert_eq!(web["current_index"], 1);
    assert_eq!(web["position_ms"], 2500);
    assert_eq!(web["changed_by"], "Symfonium");
    assert_eq!(web["tracks"][0]["title"], "Queued 2");

    // Saved by the web app; its answer's position serves the next read, from the app too.
    let saved = put_queue(
        &app,
        &ann,
        json!({"track_ids": [a, b, a], "current_track": b, "position_ms": 1234}),
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let position = app.app.position_of(&saved);
    let body: Value = saved.json().await.unwrap();
    assert_eq!(body["track_count"], 3);
    let web = get_queue(&app, &ann, Some(&position)).await;
    assert_eq!(web["current_index"], 1);
    assert_eq!(web["position_ms"], 1234);
    assert_eq!(web["changed_by"], "Jukebox web");
    assert_eq!(web["changed_at"], body["saved_at"]);
    let sub = rest.call("getPlayQueue", &key, &[]).await;
    let entries: Vec<&str> = sub["playQueue"]["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(entries, [a, b, a]);
    assert_eq!(sub["playQueue"]["current"], b);
    assert_eq!(sub["playQueue"]["position"], 1234);

    // Bad bodies: a 4xx a person can act on, and nothing saved.
    for (body, status, code) in [
        (
            json!({"track_ids": ["nocolon"], "current_track": "nocolon"}),
            422,
            "invalid_song_id",
        ),
        (
            json!({"track_ids": [a], "current_track": b}),
            422,
            "invalid_play_queue",
        ),
        (json!({"track_ids": [a]}), 422, "invalid_play_queue"),
        (
            json!({"track_ids": vec![a; 1001], "current_track": a}),
            422,
            "invalid_play_queue",
        ),
        (
            json!({"track_ids": [a], "current_track": a, "position_ms": -5}),
            422,
            "invalid_body",
        ),
        (
            json!({"track_ids": [a], "current_track": a, "extra": 1}),
            422,
            "invalid_body",
        ),
    ] {
        let response = put_queue(&app, &ann, body.clone()).await;
        let (got, error, message) = error_of(response).await;
        assert_eq!(
            (got.as_u16(), error.as_str()),
            (status, code),
            "{body}: {message}"
        );
        if body["track_ids"].as_array().unwrap().len() > 1000 {
            assert!(message.contains("1000"), "{message}");
        }
    }
    // Bob sees nothing of Ann's; a cleared queue is an empty one.
    let bobs_queue = get_queue(&app, &bob, None).await;
    assert_eq!(bobs_queue["saved"], false);
    let cleared = put_queue(&app, &ann, json!({"track_ids": []})).await;
    let position = app.app.position_of(&cleared);
    let web = get_queue(&app, &ann, Some(&position)).await;
    assert_eq!(
        (web["saved"].clone(), web["tracks"].clone()),
        (json!(true), json!([]))
    );
    assert_eq!(web["current_index"], Value::Null);
    app.cleanup().await;
}

async fn put_queue(app: &ImportApp, token: &str, body: Value) -> reqwest::Response {
    let response = app
        .app
        .http
        .put(app.app.api("/me/play-queue"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    app.app.saw(&response);
    response
}

async fn get_queue(app: &ImportApp, token: &str, after: Option<&str>) -> Value {
    let mut request = app
        .app
        .http
        .get(app.app.api("/me/play-queue"))
        .bearer_auth(token);
    if let Some(after) = after {
        request = request.query(&[("after", after)]);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}
