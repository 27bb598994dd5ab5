//! `GET /me/export` (issue 21): a user with a library, a playlist, a star, a play and an
//! app credential gets one zip archive with exactly `jukebox.json` and the playlist's
//! M3U8; nothing of another user's is in it.

use std::io::{Cursor, Read};

use reqwest::StatusCode;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::helpers::{import_app, ImportApp, Options};
use crate::library::{video, Seeder, ROLES};
use jukebox_test_support::POSITION;

/// A write with `token`, after the latest position; notes the answer's position.
async fn send(
    app: &ImportApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = app
        .app
        .http
        .request(method, app.app.api(path))
        .bearer_auth(token)
        .header(POSITION, app.app.latest())
        .json(&body)
        .send()
        .await
        .unwrap();
    app.app.saw(&response);
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// A library, a playlist, a star, a play and an app credential for `token`'s user.
async fn fill(
    app: &ImportApp,
    seeder: &Seeder<'_>,
    token: &str,
    videos: [usize; 2],
    played_at: &str,
) -> (Vec<String>, String) {
    let user = app.user_id(token).await;
    let mut tracks = Vec::new();
    for (n, video_n) in videos.into_iter().enumerate() {
        let artist = (n == 0).then_some("Band");
        let title = format!("Song {video_n}");
        tracks.push(
            seeder
                .import(user, &video(video_n), &title, artist, 60 + n as u64)
                .await,
        );
    }
    let created = send(
        app,
        token,
        reqwest::Method::POST,
        "/playlists",
        json!({"name": "Road/trip: best?", "track_ids": [tracks[1], tracks[0]]}),
    )
    .await;
    let playlist = created["id"].as_str().unwrap().to_owned();
    send(
        app,
        token,
        reqwest::Method::PUT,
        &format!("/me/favourites/track/{}", tracks[0]),
        Value::Null,
    )
    .await;
    send(
        app,
        token,
        reqwest::Method::POST,
        "/me/plays",
        json!({"track_id": tracks[1], "played_at": played_at}),
    )
    .await;
    send(
        app,
        token,
        reqwest::Method::POST,
        "/me/app-credentials",
        json!({"name": "Phone"}),
    )
    .await;
    (tracks, playlist)
}

/// Every RFC 3339 time in `value` (at a key ending in `_at`) replaced by "<time>", after
/// checking that it is one.
fn without_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if key.ends_with("_at") && item.is_string() {
                    let text = item.as_str().unwrap();
                    assert!(
                        OffsetDateTime::parse(text, &Rfc3339).is_ok(),
                        "{key}: {text}"
                    );
                    *item = json!("<time>");
                } else {
                    without_times(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_times),
        _ => {}
    }
}

#[tokio::test]
async fn an_export_is_one_archive_of_my_data_and_only_mine() {
    let app = import_app(Options {
        roles: ROLES,
        ..Default::default()
    })
    .await;
    let seeder = Seeder::new(&app).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let ann_id = app.user_id(&ann).await;
    let played = (OffsetDateTime::now_utc() - Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap();
    let played_at = played.format(&Rfc3339).unwrap();
    let (tracks, playlist) = fill(&app, &seeder, &ann, [0, 1], &played_at).await;
    let (bobs_tracks, bobs_playlist) = fill(&app, &seeder, &bob, [8, 9], &played_at).await;

    let response = app
        .app
        .http
        .get(app.app.api("/me/export"))
        .bearer_auth(&ann)
        .header(POSITION, app.app.latest())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let today = OffsetDateTime::now_utc().date();
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"jukebox-export-{today}.zip\"").as_str()
    );
    let bytes = response.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).unwrap();
    let m3u8_name = format!("playlists/{playlist}-Road_trip__best_.m3u8");
    let names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
        .collect();
    assert_eq!(names, ["jukebox.json", m3u8_name.as_str()]);
    let mut read = |name: &str| {
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let json_text = read("jukebox.json");
    let m3u8 = read(&m3u8_name);

    assert_eq!(
        m3u8,
        format!(
            "#EXTM3U\n#PLAYLIST:Road/trip: best?\n\
             #EXTINF:61,Unknown artist - Song 1\nhttps://www.youtube.com/watch?v={}\n\
             #EXTINF:60,Band - Song 0\nhttps://www.youtube.com/watch?v={}\n",
            video(1),
            video(0)
        )
    );
    let mut data: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(data["plays"][0]["last_played"], played_at.as_str());
    without_times(&mut data);
    assert_eq!(
        data,
        json!({
            "format": 1,
            "exported_at": "<time>",
            "account": {
                "id": ann_id,
                "email": "ann@example.com",
                // This app does not ask for verification (the import tests' setting).
                "verified": false,
                "roles": [],
                "created_at": "<time>",
            },
            "library": [
                {"id": tracks[0], "title": "Song 0", "artists": ["Band"], "album": "Song 0",
                 "year": null, "duration_ms": 60_000, "added_at": "<time>"},
                {"id": tracks[1], "title": "Song 1", "artists": ["Unknown artist"], "album": "Song 1",
                 "year": null, "duration_ms": 61_000, "added_at": "<time>"},
            ],
            "playlists": [{
                "id": playlist,
                "name": "Road/trip: best?",
                "description": "",
                "public": false,
                "created_at": "<time>",
                "updated_at": "<time>",
                "tracks": [tracks[1], tracks[0]],
                "file": m3u8_name,
            }],
            "favourites": [{"kind": "track", "id": tracks[0], "starred_at": "<time>"}],
            "plays": [{"track_id": tracks[1], "play_count": 1, "last_played": played_at}],
            "app_credentials": [{"id": data["app_credentials"][0]["id"], "name": "Phone",
                                 "created_at": "<time>"}],
        })
    );
    // No credential material, and nothing of Bob's.
    let everything = format!("{json_text}{m3u8}");
    for absent in [
        "$argon2",
        "secret",
        "nonce",
        "bob@example.com",
        bobs_playlist.as_str(),
        bobs_tracks[0].as_str(),
        bobs_tracks[1].as_str(),
    ] {
        assert!(!everything.contains(absent), "{absent} in the export");
    }

    // Without a token: 401, no archive.
    let response = app
        .app
        .http
        .get(app.app.api("/me/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
