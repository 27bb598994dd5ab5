//! Artists and albums (issue 18): `GET /library/artists[/{id}]`, `/library/albums[/{id}]`
//! from the `music` read model, and `PATCH /library/{id}`, the owner's corrections. Tracks
//! come in through the downloader's commands (`Seeder`); every read passes the position
//! of the test's last write.

use jukebox_domain::music::{album_id, artist_id, single_id};
use jukebox_domain::{StoredTrack, TrackId};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_of, import_app, ImportApp, Options};
use crate::library::{page, Seeder, ROLES};
use jukebox_test_support::POSITION;

fn track(
    video: &str,
    title: &str,
    artists: &[&str],
    album: Option<&str>,
    year: Option<i32>,
) -> StoredTrack {
    let track_id = TrackId::parse(&format!("yt:{video}")).unwrap();
    StoredTrack {
        object_key: format!("tracks/{track_id}.m4a"),
        track_id,
        size: 1_000,
        duration_ms: 100_000,
        codec: "aac".into(),
        bitrate: 256_000,
        title: Some(title.into()),
        artist: Some(artists.join(", ")),
        album: album.map(Into::into),
        artists: artists.iter().map(|a| a.to_string()).collect(),
        year,
        has_cover: false,
        origin: format!("https://www.youtube.com/watch?v={video}"),
        cover: None,
    }
}

async fn read(app: &ImportApp, token: &str, path: &str) -> (StatusCode, Value) {
    let mut request = app.app.http.get(app.app.api(path)).bearer_auth(token);
    if let Some(after) = app.app.try_latest() {
        request = request.header(POSITION, after);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn ok(app: &ImportApp, token: &str, path: &str) -> Value {
    let (status, body) = read(app, token, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

fn names(items: &Value, field: &str) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

async fn patch(app: &ImportApp, token: &str, track_id: &str, body: Value) -> reqwest::Response {
    let response = app
        .app
        .http
        .patch(app.app.api(&format!("/library/{track_id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    app.app.saw(&response);
    response
}

/// Alice: "One" and "Two" (with a guest) on Band's "LP", and Guest's single "Alone"; Bob:
/// the single only.
async fn seeded() -> (ImportApp, String, String, Vec<String>) {
    let app = import_app(Options {
        roles: ROLES,
        extra: vec![
            ("ADMIN_BOOTSTRAP_EMAIL", "admin@example.com".into()),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let seeder = Seeder::new(&app).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (alice_id, bob_id) = (app.user_id(&alice).await, app.user_id(&bob).await);
    let mut ids = Vec::new();
    for t in [
        track("vid00000001", "One", &["Band"], Some("LP"), Some(1999)),
        track(
            "vid00000002",
            "Two",
            &["Band", "Guest"],
            Some("LP"),
            Some(2001),
        ),
        track("vid00000003", "Alone", &["Guest"], None, None),
    ] {
        ids.push(seeder.import_stored(alice_id, t).await);
    }
    seeder
        .import_stored(
            bob_id,
            track("vid00000003", "Alone", &["Guest"], None, None),
        )
        .await;
    (app, alice, bob, ids)
}

#[tokio::test]
async fn artists_and_albums_are_each_users_own() {
    let (app, alice, bob, ids) = seeded().await;
    let lp = album_id("Band", "LP").to_string();
    let single = single_id(&ids[2]).to_string();
    let (band, guest) = (
        artist_id("Band").to_string(),
        artist_id("Guest").to_string(),
    );

    let artists = ok(&app, &alice, "/library/artists").await;
    assert_eq!(artists["total"], 2);
    assert_eq!(
        artists["items"],
        json!([
            {"id": band, "name": "Band", "album_count": 1, "track_count": 2, "duration_ms": 200_000,
             "starred": null, "play_count": 0, "last_played": null},
            {"id": guest, "name": "Guest", "album_count": 1, "track_count": 2, "duration_ms": 200_000,
             "starred": null, "play_count": 0, "last_played": null},
        ])
    );
    let bobs = ok(&app, &bob, "/library/artists").await;
    assert_eq!(names(&bobs["items"], "name"), ["Guest"]);
    assert_eq!(bobs["items"][0]["track_count"], 1);

    let albums = ok(&app, &alice, "/library/albums?sort=name").await;
    assert_eq!(names(&albums["items"], "name"), ["Alone", "LP"]);
    assert_eq!(names(&albums["items"], "id"), [single.clone(), lp.clone()]);
    assert_eq!(albums["items"][1]["year"], 2001);
    assert_eq!(albums["items"][1]["track_count"], 2);
    let newest = ok(&app, &alice, "/library/albums?limit=1").await;
    assert_eq!(names(&newest["items"], "name"), ["Alone"]);
    assert_eq!(newest["total"], 2);
    let second = ok(&app, &alice, "/library/albums?limit=1&offset=1").await;
    assert_eq!(names(&second["items"], "name"), ["LP"]);
    let by_year = ok(&app, &alice, "/library/albums?sort=year&from=2000&to=2010").await;
    assert_eq!(names(&by_year["items"], "name"), ["LP"]);
    let by_artist = ok(&app, &alice, "/library/albums?sort=artist").await;
    assert_eq!(names(&by_artist["items"], "artist"), ["Band", "Guest"]);
    let random = ok(&app, &alice, "/library/albums?sort=random").await;
    assert_eq!(random["items"].as_array().unwrap().len(), 2);

    let album = ok(&app, &alice, &format!("/library/albums/{lp}")).await;
    assert_eq!(
        (album["name"].clone(), album["artist"].clone()),
        (json!("LP"), json!("Band"))
    );
    assert_eq!(names(&album["tracks"], "title"), ["One", "Two"]);
    assert_eq!(album["tracks"][1]["artists"], json!(["Band", "Guest"]));
    let artist = ok(&app, &alice, &format!("/library/artists/{band}")).await;
    assert_eq!(artist["name"], "Band");
    assert_eq!(names(&artist["albums"], "id"), [lp.as_str()]);

    // Another user's album is unknown to Bob, and ids are checked.
    let (status, body) = read(&app, &bob, &format!("/library/albums/{lp}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = read(&app, &bob, &format!("/library/artists/{band}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (path, code) in [
        ("/library/albums/nope", "invalid_album_id"),
        ("/library/artists/nope", "invalid_artist_id"),
        ("/library/albums?sort=size", "invalid_sort"),
        ("/library/albums?limit=501", "invalid_limit"),
    ] {
        let (status, body) = read(&app, &alice, path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(body["error"]["code"], code, "{path}");
    }
}

#[tokio::test]
async fn a_correction_shows_at_once_for_its_owner_only() {
    let (app, alice, bob, ids) = seeded().await;
    let alone = &ids[2];
    let response = patch(
        &app,
        &alice,
        alone,
        json!({"title": " Solo ", "artists": ["Band"], "album": "LP", "year": 2002}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["title"].clone(),
            body["artists"].clone(),
            body["year"].clone()
        ),
        (json!("Solo"), json!(["Band"]), json!(2002))
    );

    // Read by the answer's position: the library, the album and the artists agree.
    let (items, _) = page(&app, &alice, "sort=title").await;
    let titles: Vec<&str> = items.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["One", "Solo", "Two"]);
    let solo = items
        .iter()
        .find(|i| i["track_id"] == alone.as_str())
        .unwrap();
    assert_eq!(solo["artist"], "Band");
    let lp = album_id("Band", "LP").to_string();
    let album = ok(&app, &alice, &format!("/library/albums/{lp}")).await;
    assert_eq!(names(&album["tracks"], "title"), ["One", "Two", "Solo"]);
    assert_eq!(album["year"], 2002);
    let albums = ok(&app, &alice, "/library/albums?sort=name").await;
    assert_eq!(names(&albums["items"], "name"), ["LP"]);
    let artists = ok(&app, &alice, "/library/artists").await;
    assert_eq!(
        artists["items"][1],
        json!({"id": artist_id("Guest").to_string(), "name": "Guest", "album_count": 0,
               "track_count": 1, "duration_ms": 100_000,
               "starred": null, "play_count": 0, "last_played": null})
    );

    // Bob holds the same track and keeps the source's details.
    let (items, _) = page(&app, &bob, "").await;
    assert_eq!(items[0]["title"], "Alone");
    let bobs = ok(&app, &bob, "/library/albums").await;
    assert_eq!(names(&bobs["items"], "name"), ["Alone"]);

    // The correction is on record for the audit.
    let admin = app.admin("admin@example.com").await;
    let alice_id = app.user_id(&alice).await;
    let audit = ok(
        &app,
        &admin,
        &format!("/admin/audit/library_entry/{alice_id}%2F{alone}"),
    )
    .await;
    let types: Vec<String> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        ["TrackAddedToLibrary", "TrackDetailsCorrected"],
        "{audit}"
    );
    assert_eq!(
        audit["events"][1]["payload"]["TrackDetailsCorrected"]["correction"]["title"], "Solo",
        "{audit}"
    );
    // In the log (and on EVENTS) what Alice typed is sealed with her key (ADR 43).
    let logged: Value = sqlx::query_scalar(
        "SELECT payload::jsonb FROM events
         WHERE aggregate_type = 'library_entry' AND event_type = 'TrackDetailsCorrected'",
    )
    .fetch_one(app.app.pool())
    .await
    .unwrap();
    let correction = &logged["TrackDetailsCorrected"]["correction"];
    for text in [
        &correction["title"],
        &correction["album"],
        &correction["artists"][0],
    ] {
        assert!(
            text.as_str()
                .unwrap()
                .starts_with(&format!("sealed:v1:{alice_id}:")),
            "{logged}"
        );
    }
    assert_eq!(correction["year"], 2002);

    // Bad corrections are refused with a sentence; another's track is not mine to fix.
    for (body, message) in [
        (
            json!({}),
            "Give at least one of title, artists, album or year to change.",
        ),
        (json!({"title": ""}), "The title cannot be empty."),
        (
            json!({"album": "x".repeat(301)}),
            "The album is too long: at most 300 characters.",
        ),
        (
            json!({"artists": []}),
            "Name at least one artist, or leave artists out to keep them.",
        ),
        (
            json!({"year": 99_999_999_999_i64}),
            "The year must be a number from 1 to 9999.",
        ),
    ] {
        let (status, code, text) = error_of(patch(&app, &alice, alone, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_correction"),
            "{body}"
        );
        assert_eq!(text, message);
    }
    let (status, code, _) =
        error_of(patch(&app, &bob, &ids[0], json!({"title": "Mine"})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_in_library")
    );
    let (status, code, _) = error_of(patch(&app, &alice, alone, json!({"titel": "x"})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
}
