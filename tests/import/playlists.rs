//! Playlists over HTTP (issue 19): create, add (many, an album), move, remove, rename,
//! public and copy, M3U8 export and import, bad input; two devices adding at once through
//! the real processor lose nothing. Every read passes the position of the write before it.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_of, import_app, ImportApp, Options};
use crate::library::{video, Seeder, ROLES};
use jukebox_test_support::POSITION;

struct Client<'a> {
    app: &'a ImportApp,
    token: String,
}

impl Client<'_> {
    /// A request with my token, after the latest position this test has seen.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .app
            .app
            .http
            .request(method, self.app.app.api(path))
            .bearer_auth(&self.token);
        if let Some(position) = self.app.app.try_latest() {
            request = request.header(POSITION, position);
        }
        request
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        self.app.app.saw(&response);
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// `GET /stream/{song}...` as the web app asks: the signed link as JSON.
    async fn stream_link(&self, path: &str) -> (StatusCode, Value) {
        self.send(
            self.request(reqwest::Method::GET, path)
                .header("accept", "application/json"),
        )
        .await
    }

    /// The playlist's track ids in order.
    async fn order(&self, id: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/playlists/{id}?limit=500")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["track_id"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn playlists_are_edited_shared_copied_exported_and_imported() {
    let app = import_app(Options {
        roles: ROLES,
        extra: vec![
            (
                "STREAM_SIGNING_SECRET",
                "playlist-stream-secret-0123456789abcdef".into(),
            ),
            ("PUBLIC_STREAM_BASE_URL", "http://stream.test".into()),
        ],
        ..Default::default()
    })
    .await;
    let seeder = Seeder::new(&app).await;
    let ann = Client {
        app: &app,
        token: app.user("ann@example.com").await,
    };
    let bob = Client {
        app: &app,
        token: app.user("bob@example.com").await,
    };
    let (ann_id, bob_id) = (app.user_id(&ann.token).await, app.user_id(&bob.token).await);
    let mut t = Vec::new();
    for n in 0..4 {
        t.push(
            seeder
                .import(ann_id, &video(n), &format!("Song {n}"), Some("Band"), 60)
                .await,
        );
    }
    let bobs = seeder.import(bob_id, &video(9), "Bob's", None, 60).await;

    let (status, created) = ann
        .post(
            "/playlists",
            json!({"name": "Road trip", "track_ids": [t[0], t[1]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // A retried creation (same Idempotency-Key) answers the first one's playlist.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let (status, body) = ann
            .send(
                ann.request(reqwest::Method::POST, "/playlists")
                    .header("Idempotency-Key", "one-playlist")
                    .json(&json!({"name": "Once"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        answers.push(body["id"].clone());
    }
    assert_eq!(answers[0], answers[1]);
    let (_, listed) = ann.get("/playlists").await;
    let once: Vec<&Value> = listed["playlists"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "Once")
        .collect();
    assert_eq!(once.len(), 1, "{listed}");
    assert_eq!(once[0]["id"], answers[0]);
    // Many at once, duplicates allowed.
    let (status, _) = ann
        .post(
            &format!("/playlists/{id}/tracks"),
            json!({"track_ids": [t[2], t[0]]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ann.order(&id).await,
        [t[0].as_str(), t[1].as_str(), t[2].as_str(), t[0].as_str()]
    );
    // Move the third entry (entry 3) to the top; remove entry 2.
    let (status, _) = ann
        .post(&format!("/playlists/{id}/entries/3/move"), json!({"to": 0}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ann
        .send(ann.request(
            reqwest::Method::DELETE,
            &format!("/playlists/{id}/entries/2"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ann.order(&id).await,
        [t[2].as_str(), t[0].as_str(), t[0].as_str()]
    );
    let (_, page) = ann.get(&format!("/playlists/{id}?offset=1&limit=1")).await;
    assert_eq!(page["entries"], json!([page["entries"][0].clone()]));
    assert_eq!(page["entries"][0]["position"], 1);
    assert_eq!(page["entries"][0]["title"], "Song 0");
    assert_eq!(page["track_count"], 3);
    assert_eq!(page["duration_ms"], 180_000);

    // Bad input: a 4xx that says why, nothing applied.
    for (path, body, status, code) in [
        (
            "/playlists",
            json!({"name": ""}),
            422,
            "invalid_playlist_name",
        ),
        (
            "/playlists",
            json!({"name": "x".repeat(201)}),
            422,
            "invalid_playlist_name",
        ),
        (
            "/playlists",
            json!({"name": "x", "track_ids": [bobs]}),
            404,
            "not_found",
        ),
        (
            "/playlists",
            json!({"name": "x", "track_ids": ["nope"]}),
            422,
            "invalid_song_id",
        ),
        (
            &format!("/playlists/{id}/entries/1/move"),
            json!({"to": 3}),
            422,
            "position_out_of_range",
        ),
        (
            &format!("/playlists/{id}/entries/99/move"),
            json!({"to": 0}),
            404,
            "unknown_playlist_entry",
        ),
        (
            &format!("/playlists/{id}/tracks"),
            json!({"track_ids": [t[3], bobs]}),
            404,
            "not_found",
        ),
    ] {
        let response = ann
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (got, error, _) = error_of(response).await;
        assert_eq!(
            (got.as_u16(), error.as_str()),
            (status, code),
            "{path} {body}"
        );
    }
    assert_eq!(
        ann.order(&id).await,
        [t[2].as_str(), t[0].as_str(), t[0].as_str()]
    );

    // Private: Bob cannot see it; he can never change it.
    let (status, _) = bob.get(&format!("/playlists/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor play its songs through it (ADR 32).
    let (status, refused) = bob
        .stream_link(&format!("/stream/{}?playlist={id}", t[2]))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_in_library")),
        "{refused}"
    );
    let response = bob
        .request(reqwest::Method::PATCH, &format!("/playlists/{id}"))
        .json(&json!({"name": "Mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1, "not_playlist_owner");
    let (status, _) = ann
        .send(
            ann.request(reqwest::Method::PATCH, &format!("/playlists/{id}"))
                .json(&json!({"public": true, "description": "for the drive"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = bob.get("/playlists").await;
    assert_eq!(listed["playlists"][0]["owned"], false);
    // Public: Bob plays its songs from Ann's library (a link naming her copy, ADR 32);
    // not without naming the playlist, nor a song it does not list, nor a malformed id.
    let (status, link) = bob
        .stream_link(&format!("/stream/{}?playlist={id}", t[2]))
        .await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let url = reqwest::Url::parse(link["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.host_str(), Some("stream.test"));
    let named: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(
        named.contains(&("u".to_owned(), ann_id.to_string())),
        "{url}"
    );
    for (path, status, code) in [
        (format!("/stream/{}", t[2]), 403, "not_in_library"),
        (
            format!("/stream/{}?playlist={id}", t[1]),
            403,
            "not_in_library",
        ),
        (
            format!("/stream/{}?playlist=nope", t[2]),
            422,
            "invalid_playlist_id",
        ),
    ] {
        let (got, body) = bob.stream_link(&path).await;
        assert_eq!(
            (got.as_u16(), body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    assert_eq!(listed["playlists"][0]["description"], "for the drive");
    let (status, copy) = bob
        .post(
            "/playlists",
            json!({"name": "Ann's, copied", "copy_of": id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{copy}");
    assert_eq!(
        bob.order(copy["id"].as_str().unwrap()).await,
        [t[2].as_str(), t[0].as_str(), t[0].as_str()]
    );
    let (status, _) = bob
        .send(bob.request(reqwest::Method::DELETE, &format!("/playlists/{id}")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // M3U8 out and back in: Ann's file matches her library by link.
    let response = ann
        .request(reqwest::Method::GET, &format!("/playlists/{id}/m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let file = response.text().await.unwrap();
    assert!(
        file.starts_with("#EXTM3U\n#PLAYLIST:Road trip\n#EXTINF:60,"),
        "{file}"
    );
    assert!(
        file.contains(&format!(
            "Song 2\nhttps://www.youtube.com/watch?v={}\n",
            video(2)
        )),
        "{file}"
    );
    let by_name = "#EXTINF:60,band - SONG 3\nhttps://example.com/elsewhere.mp3\n";
    let unknown = "#EXTINF:1,Nobody - Nothing\nfile:///music/nothing.mp3\n";
    let body = format!("{file}{by_name}{unknown}");
    let response = ann
        .request(reqwest::Method::POST, "/playlists/import?name=Back")
        .header("content-type", "audio/x-mpegurl")
        .body(body)
        .send()
        .await
        .unwrap();
    app.app.saw(&response);
    assert_eq!(response.status(), StatusCode::CREATED);
    let imported: Value = response.json().await.unwrap();
    assert_eq!(imported["matched"], 4, "{imported}");
    assert_eq!(imported["unmatched"][0]["line"], 5);
    assert_eq!(imported["unmatched"][0]["title"], "Nothing");
    let back = imported["id"].as_str().unwrap();
    assert_eq!(
        ann.order(back).await,
        [t[2].as_str(), t[0].as_str(), t[0].as_str(), t[3].as_str()]
    );
    for (body, status, code) in [
        (vec![0xff, 0xfe, 0, 1], 422, "not_text"),
        (vec![b'#'; (1 << 20) + 10], 413, "file_too_large"),
    ] {
        let response = ann
            .request(reqwest::Method::POST, "/playlists/import")
            .body(body)
            .send()
            .await
            .unwrap();
        let (got, error, _) = error_of(response).await;
        assert_eq!((got.as_u16(), error.as_str()), (status, code));
    }

    // Deleted: gone for both.
    let (status, _) = ann
        .send(ann.request(reqwest::Method::DELETE, &format!("/playlists/{id}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ann.get(&format!("/playlists/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

#[tokio::test]
async fn two_devices_adding_at_once_lose_nothing() {
    let app = import_app(Options {
        roles: ROLES,
        ..Default::default()
    })
    .await;
    let seeder = Seeder::new(&app).await;
    let ann = Client {
        app: &app,
        token: app.user("ann@example.com").await,
    };
    let ann_id = app.user_id(&ann.token).await;
    let mut tracks = Vec::new();
    for n in 0..12 {
        tracks.push(
            seeder
                .import(ann_id, &video(n), &format!("Song {n}"), None, 30)
                .await,
        );
    }
    let (status, created) = ann.post("/playlists", json!({"name": "Both"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // Two devices, six adds each, all in flight at once; a move from the first device in
    // between. Every add is its own command through the processor.
    let adds = tracks.iter().enumerate().map(|(n, track)| {
        let path = format!("/playlists/{id}/tracks");
        let request = ann
            .request(reqwest::Method::POST, &path)
            .json(&json!({"track_ids": [track]}));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "device {}", n % 2);
            response.headers()[POSITION].to_str().unwrap().to_owned()
        }
    });
    for position in join_all(adds).await {
        app.app.note(&position);
    }
    let order = ann.order(&id).await;
    let mut sorted = order.clone();
    sorted.sort();
    let mut expected = tracks.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every add survives, once");
    let (status, body) = ann.get(&format!("/playlists/{id}")).await;
    assert_eq!(
        (status, body["track_count"].as_i64()),
        (StatusCode::OK, Some(12))
    );
    app.cleanup().await;
}
