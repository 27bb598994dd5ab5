//! `GET /me/export` (issue 21): a user with a library, a playlist, a star, a play and an
//! app credential gets one zip archive with exactly `jukebox.json` and the playlist's
//! M3U8; nothing of another user's is in it. An import still running is not waited for.

use std::io::{Cursor, Read};
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::helpers::{import_app, tone, ImportApp, Options};
use crate::library::{video, Seeder, ROLES};
use crate::media::Tone;
use jukebox_domain::TrackId;
use jukebox_handlers::downloader::source_lock::SourceLock;
use jukebox_test_support::eventually;

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
    let created = app
        .write(
            token,
            reqwest::Method::POST,
            "/playlists",
            json!({"name": "Road/trip: best?", "track_ids": [tracks[1], tracks[0]]}),
        )
        .await;
    let playlist = created["id"].as_str().unwrap().to_owned();
    app.write(
        token,
        reqwest::Method::PUT,
        &format!("/me/favourites/track/{}", tracks[0]),
        Value::Null,
    )
    .await;
    app.write(
        token,
        reqwest::Method::POST,
        "/me/plays",
        json!({"track_id": tracks[1], "played_at": played_at}),
    )
    .await;
    app.write(
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

    let response = app.read(&ann, "/me/export").send().await.unwrap();
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
    app.cleanup().await;
}

/// `GET /me/export` as `token`'s user (after the latest position): the library's
/// (id, title) pairs in `jukebox.json`.
async fn exported_library(app: &ImportApp, token: &str) -> Vec<(String, String)> {
    let response = app
        .read(token, "/me/export")
        // An export that waited for the held job would hang here, not pass.
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).unwrap();
    let mut text = String::new();
    archive
        .by_name("jukebox.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    data["library"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap().to_owned();
            (id, t["title"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The job's status, as `GET /jobs/{id}` answers it.
async fn job_status(app: &ImportApp, token: &str, job_id: &str) -> String {
    let response = app.job(token, job_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let job: Value = response.json().await.unwrap();
    job["status"].as_str().unwrap().to_owned()
}

/// Issue 21, bad input: an export while an import is held on its source's lock (the
/// test holds it) answers at once without that track; the next export has it.
#[tokio::test]
async fn an_export_does_not_wait_for_an_import_still_running() {
    let app = import_app(Options::default()).await;
    let ann = app.user("ann@example.com").await;
    let first_url = app.tone(
        "first.mp3",
        &Tone {
            title: "First Song",
            ..tone(2)
        },
    );
    let first_job = app.start_import(&ann, &first_url).await;
    let job = app.finished_job(&ann, &first_job).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let first = job["track_id"].as_str().unwrap().to_owned();

    // The held source's lock, taken by the test first.
    let held_url = app.tone(
        "held.mp3",
        &Tone {
            title: "Held Song",
            ..tone(2)
        },
    );
    let held_id = TrackId::of_direct_link(&held_url);
    let held = held_id.to_string();
    let lock = SourceLock::acquire(app.app.pool(), &held_id, || {})
        .await
        .unwrap();
    let held_job = app.start_import(&ann, &held_url).await;
    // It shows `waiting` only while another holder has the source's lock.
    eventually("the job waits for the source's lock", || async {
        job_status(&app, &ann, &held_job).await == "waiting"
    })
    .await;

    let started = Instant::now();
    let library = exported_library(&app, &ann).await;
    let took = started.elapsed();
    assert_eq!(library, [(first.clone(), "First Song".to_owned())]);
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    // The job was still waiting all along.
    assert_eq!(job_status(&app, &ann, &held_job).await, "waiting");

    lock.release().await;
    let job = app.finished_job(&ann, &held_job).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["track_id"], held.as_str());
    let mut library = exported_library(&app, &ann).await;
    library.sort();
    let mut expected = vec![
        (first, "First Song".to_owned()),
        (held, "Held Song".to_owned()),
    ];
    expected.sort();
    assert_eq!(library, expected);
    app.cleanup().await;
}
