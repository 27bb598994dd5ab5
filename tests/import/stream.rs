//! Streaming (issue 6): signed URLs from the API, served by the stream role with byte
//! ranges, on a track imported for real (folder store).

use std::time::Duration;

use jukebox_edge::stream::{Capability, StreamSigner};
use reqwest::{header, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{error_of, import_app, tone, ImportApp, Options};
use crate::media::ffprobe;

const SECRET: &str = "stream-secret-for-tests-only-0123456789";

async fn streaming_app() -> ImportApp {
    import_app(Options {
        extra: vec![("STREAM_SIGNING_SECRET", SECRET.into())],
        ..Default::default()
    })
    .await
}

/// Imports a tone for the user behind `token`; returns the track id.
async fn imported(app: &ImportApp, token: &str, name: &str) -> String {
    let url = app.tone(name, &tone(4));
    let job_id = app.start_import(token, &url).await;
    let job = app.finished_job(token, &job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    job["track_id"].as_str().unwrap().to_owned()
}

/// `GET /stream/{song}` as JSON, with the URL pointed at the running stream role.
async fn stream_url(app: &ImportApp, token: &str, song: &str) -> reqwest::Response {
    app.app
        .http
        .get(app.app.api(&format!("/stream/{}", escape(song))))
        .bearer_auth(token)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
}

async fn signed_url(app: &ImportApp, token: &str, song: &str) -> url::Url {
    let response = stream_url(app, token, song).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_at"].is_string(), "{body}");
    on_stream_role(app, body["url"].as_str().unwrap())
}

/// The issued URL names PUBLIC_STREAM_BASE_URL; the test's stream role runs on port 0.
fn on_stream_role(app: &ImportApp, issued: &str) -> url::Url {
    let addr = app.app.running.as_ref().unwrap().stream_addr.unwrap();
    let mut url = url::Url::parse(issued).unwrap();
    url.set_host(Some(&addr.ip().to_string())).unwrap();
    url.set_port(Some(addr.port())).unwrap();
    url
}

fn escape(song: &str) -> String {
    url::form_urlencoded::byte_serialize(song.as_bytes()).collect::<String>()
}

async fn stored_bytes(app: &ImportApp, song: &str) -> Vec<u8> {
    app.tracks_applied().await;
    let (key,): (String,) = sqlx::query_as("SELECT object_key FROM tracks WHERE track_id = $1")
        .bind(song)
        .fetch_one(app.app.pool())
        .await
        .unwrap();
    let store = jukebox_handlers::storage::open(&app.app.config.store_config().unwrap())
        .await
        .unwrap();
    let key = jukebox_handlers::storage::ObjectKey::parse(&key).unwrap();
    store.get(&key, None).await.unwrap().bytes().await.unwrap()
}

#[tokio::test]
async fn a_signed_url_streams_the_track_whole_and_by_range() {
    let app = streaming_app().await;
    let alice = app.user("alice@example.com").await;
    let song = imported(&app, &alice, "whole.mp3").await;
    let stored = stored_bytes(&app, &song).await;
    let url = signed_url(&app, &alice, &song).await;
    let http = &app.app.http;

    // The whole object, byte for byte.
    let whole = http.get(url.clone()).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()[header::CONTENT_TYPE], "audio/mp4");
    assert_eq!(whole.headers()[header::ACCEPT_RANGES], "bytes");
    assert!(whole.headers()[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("private"));
    let etag = whole.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(whole.bytes().await.unwrap().as_ref(), stored.as_slice());

    // A range in the middle: exactly those bytes.
    let size = stored.len();
    let (first, last) = (size / 3, size / 3 + 999);
    let part = http
        .get(url.clone())
        .header(header::RANGE, format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        format!("bytes {first}-{last}/{size}").as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &stored[first..=last]);

    // The last bytes (suffix range), HEAD, conditional requests.
    let tail = http
        .get(url.clone())
        .header(header::RANGE, "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &stored[size - 10..]);
    let head = http.head(url.clone()).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        size.to_string().as_str()
    );
    let cached = http
        .get(url.clone())
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let stale_if_range = http
        .get(url.clone())
        .header(header::RANGE, "bytes=0-9")
        .header(header::IF_RANGE, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale_if_range.status(),
        StatusCode::OK,
        "If-Range mismatch: whole"
    );

    // Past the end: 416 with the length.
    let beyond = http
        .get(url.clone())
        .header(header::RANGE, format!("bytes={size}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        beyond.headers()[header::CONTENT_RANGE],
        format!("bytes */{size}").as_str()
    );

    // A player (ffprobe) reads it over HTTP and finds AAC.
    // (On a blocking thread: the stream role answers on this test's runtime.)
    let target = url.to_string();
    let probe = tokio::task::spawn_blocking(move || ffprobe(std::path::Path::new(&target)))
        .await
        .unwrap();
    assert_eq!(probe["streams"][0]["codec_name"], "aac", "{probe:#}");

    // Without `Accept: application/json` the API redirects.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = no_redirects
        .get(app.app.api(&format!("/stream/{}", escape(&song))))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let location = redirect.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.contains("/api/public/stream/") && location.contains("s="),
        "{location}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn stream_urls_refuse_forgeries_and_other_users() {
    let app = streaming_app().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let song_a = imported(&app, &alice, "a.mp3").await;
    let song_b = imported(&app, &bob, "b.mp3").await;
    let url_a = signed_url(&app, &alice, &song_a).await;
    let http = &app.app.http;
    let param = |url: &url::Url, name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let with_params = |song: &str, pairs: &[(&str, String)]| {
        let mut url = url_a.clone();
        url.path_segments_mut().unwrap().pop().push(song);
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url
    };
    let (u, e, s) = (param(&url_a, "u"), param(&url_a, "e"), param(&url_a, "s"));
    let alice_id: Uuid = u.parse().unwrap();
    let signer = StreamSigner::new(SECRET.as_bytes(), Duration::from_secs(300));

    let cases: Vec<(&str, url::Url, StatusCode)> = vec![
        (
            "missing signature",
            with_params(&song_a, &[("u", u.clone()), ("e", e.clone())]),
            StatusCode::FORBIDDEN,
        ),
        (
            "truncated",
            with_params(
                &song_a,
                &[
                    ("u", u.clone()),
                    ("e", e.clone()),
                    ("s", s[..s.len() - 3].to_owned()),
                ],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "tampered expiry",
            with_params(
                &song_a,
                &[
                    ("u", u.clone()),
                    ("e", (e.parse::<i64>().unwrap() + 3600).to_string()),
                    ("s", s.clone()),
                ],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "song A's signature on song B",
            with_params(
                &song_b,
                &[("u", u.clone()), ("e", e.clone()), ("s", s.clone())],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "another user in the URL",
            with_params(
                &song_a,
                &[
                    ("u", app.user_id(&bob).await.to_string()),
                    ("e", e.clone()),
                    ("s", s.clone()),
                ],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "expired",
            {
                let past = time::OffsetDateTime::now_utc().unix_timestamp() - 5;
                with_params(
                    &song_a,
                    &[
                        ("u", u.clone()),
                        ("e", past.to_string()),
                        ("s", signer.sign(&song_a, alice_id, past)),
                    ],
                )
            },
            StatusCode::GONE,
        ),
        (
            "a song nobody has, validly signed",
            {
                let later = time::OffsetDateTime::now_utc().unix_timestamp() + 60;
                with_params(
                    "url:nope",
                    &[
                        ("u", u.clone()),
                        ("e", later.to_string()),
                        ("s", signer.sign("url:nope", alice_id, later)),
                    ],
                )
            },
            StatusCode::NOT_FOUND,
        ),
        (
            "song B, validly signed for a user without it",
            {
                let later = time::OffsetDateTime::now_utc().unix_timestamp() + 60;
                with_params(
                    &song_b,
                    &[
                        ("u", u.clone()),
                        ("e", later.to_string()),
                        ("s", signer.sign(&song_b, alice_id, later)),
                    ],
                )
            },
            StatusCode::FORBIDDEN,
        ),
    ];
    for (what, url, status) in cases {
        let response = http.get(url).send().await.unwrap();
        let (got, code, message) = error_of(response).await;
        assert_eq!(got, status, "{what}: {code} {message}");
        assert!(!message.is_empty(), "{what}: a message a person can read");
    }

    // The API refuses to sign a song the caller does not have, or one that is unknown.
    let (status, code, _) = error_of(stream_url(&app, &alice, &song_b).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "not_in_library")
    );
    let (status, _, _) = error_of(stream_url(&app, &alice, "url:unknown").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let anonymous = http
        .get(app.app.api(&format!("/stream/{}", escape(&song_a))))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The untouched URL still works: the refusals above were about the forgeries.
    assert_eq!(
        http.get(url_a).send().await.unwrap().status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn remove_from_library(app: &ImportApp, token: &str, song: &str) -> reqwest::Response {
    app.app
        .http
        .delete(app.app.api(&format!("/library/{}", escape(song))))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_who_removes_the_song_from_their_library_can_no_longer_open_a_fresh_url() {
    let app = streaming_app().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let song = imported(&app, &alice, "gone.mp3").await;
    // Bob imports the same source: one stored track, two libraries.
    assert_eq!(imported(&app, &bob, "gone.mp3").await, song);
    let issued = signed_url(&app, &alice, &song).await;
    let http = &app.app.http;
    assert_eq!(
        http.get(issued.clone()).send().await.unwrap().status(),
        StatusCode::OK
    );

    // Someone else cannot take it out of Alice's library; nor can anyone anonymously.
    let anonymous = http
        .delete(app.app.api(&format!("/library/{}", escape(&song))))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, code, _) = error_of(remove_from_library(&app, &alice, "no colon").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_song_id")
    );

    let removed = remove_from_library(&app, &alice, &song).await;
    assert_eq!(removed.status(), StatusCode::OK);
    let body: Value = removed.json().await.unwrap();
    assert_eq!(body["track_id"], song.as_str());

    // No fresh URL for Alice, and the one she already holds stops working.
    let (status, code, _) = error_of(stream_url(&app, &alice, &song).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "not_in_library")
    );
    let (status, code, message) = error_of(http.get(issued).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "not_in_library"),
        "{message}"
    );
    assert!(!app.library(&alice).await.contains(&song));

    // It left her library, not the catalog: Bob still has it and still streams it.
    assert_eq!(app.library(&bob).await, vec![song.clone()]);
    let bobs = signed_url(&app, &bob, &song).await;
    assert_eq!(
        http.get(bobs).send().await.unwrap().status(),
        StatusCode::OK
    );
    app.tracks_applied().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tracks WHERE track_id = $1")
        .bind(&song)
        .fetch_one(app.app.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1);

    // Removing it again: it is not there.
    let (status, code, _) = error_of(remove_from_library(&app, &alice, &song).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_in_library")
    );
    let entry = format!("{}/{song}", app.user_id(&alice).await);
    let history = app.history("library_entry", &entry).await;
    let types: Vec<&str> = history.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["TrackAddedToLibrary", "TrackRemovedFromLibrary"]);
    app.cleanup().await;
}

/// The user's library as `GET /library` lists it.
async fn library_items(app: &ImportApp, token: &str) -> Vec<Value> {
    let response = app
        .app
        .http
        .get(app.app.api("/library"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

/// The signed cover URL `GET /library` gives for `song`, pointed at the stream role.
async fn cover_url(app: &ImportApp, token: &str, song: &str) -> url::Url {
    let items = library_items(app, token).await;
    let item = items
        .iter()
        .find(|i| i["track_id"] == song)
        .unwrap_or_else(|| panic!("{song} not in {items:?}"));
    on_stream_role(app, item["cover_url"].as_str().expect("a cover_url"))
}

#[tokio::test]
async fn a_signed_cover_url_serves_the_stored_picture() {
    let app = streaming_app().await;
    let alice = app.user("alice@example.com").await;
    let song = imported(&app, &alice, "pictured.mp3").await;
    let plain_url = app.tone(
        "plain.mp3",
        &crate::media::Tone {
            seconds: 4,
            title: "No Picture",
            artist: "Plain",
            cover: false,
        },
    );
    let job = app.start_import(&alice, &plain_url).await;
    let plain = app.finished_job(&alice, &job).await["track_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The catalog names the cover object, next to the audio.
    app.tracks_applied().await;
    let (audio_key, cover_key, cover_type): (String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT object_key, cover_key, cover_type FROM tracks WHERE track_id = $1")
            .bind(&song)
            .fetch_one(app.app.pool())
            .await
            .unwrap();
    let cover_key = cover_key.expect("a cover object");
    assert_eq!(
        cover_key.trim_end_matches(".jpg"),
        audio_key.trim_end_matches(".m4a")
    );
    assert_eq!(cover_type.as_deref(), Some("image/jpeg"));
    let store = jukebox_handlers::storage::open(&app.app.config.store_config().unwrap())
        .await
        .unwrap();
    let key = jukebox_handlers::storage::ObjectKey::parse(&cover_key).unwrap();
    let stored = store.get(&key, None).await.unwrap().bytes().await.unwrap();

    // GET /library hands out a signed URL on the stream role; it serves those bytes.
    let url = cover_url(&app, &alice, &song).await;
    assert!(url.path().starts_with("/api/public/covers/"), "{url}");
    let http = &app.app.http;
    let response = http.get(url.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let cache = headers[header::CACHE_CONTROL].to_str().unwrap();
    let max_age: i64 = cache
        .strip_prefix("private, max-age=")
        .unwrap_or_else(|| panic!("Cache-Control: {cache}"))
        .parse()
        .unwrap();
    let expires: i64 = url
        .query_pairs()
        .find(|(k, _)| k == "e")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        max_age > 0 && max_age <= 300 && now + max_age <= expires + 1,
        "max-age {max_age} outlives the signature (expires in {}s)",
        expires - now
    );
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let body = response.bytes().await.unwrap();
    assert_eq!(body.as_ref(), stored.as_slice());

    // It is a picture: ffprobe reads a JPEG of at most 512 px (the tone's is 64x48).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let probe = ffprobe(file.path());
    assert_eq!(probe["streams"][0]["codec_name"], "mjpeg", "{probe:#}");
    let width = probe["streams"][0]["width"].as_u64().unwrap();
    assert!((1..=512).contains(&width), "{probe:#}");

    // HEAD and a conditional request.
    let head = http.head(url.clone()).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        stored.len().to_string().as_str()
    );
    let cached = http
        .get(url.clone())
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    // The player's answer carries one too.
    let body: Value = stream_url(&app, &alice, &song).await.json().await.unwrap();
    let from_player = on_stream_role(&app, body["cover_url"].as_str().expect("cover_url"));
    assert_eq!(
        http.get(from_player).send().await.unwrap().status(),
        StatusCode::OK
    );

    // A source without a picture: no cover object, no cover_url, and a validly signed
    // cover URL for it finds nothing.
    app.tracks_applied().await;
    let (no_cover,): (Option<String>,) =
        sqlx::query_as("SELECT cover_key FROM tracks WHERE track_id = $1")
            .bind(&plain)
            .fetch_one(app.app.pool())
            .await
            .unwrap();
    assert_eq!(no_cover, None);
    let items = library_items(&app, &alice).await;
    let item = items.iter().find(|i| i["track_id"] == plain).unwrap();
    assert!(item.get("cover_url").is_none(), "{item}");
    let body: Value = stream_url(&app, &alice, &plain).await.json().await.unwrap();
    assert!(body.get("cover_url").is_none(), "{body}");
    let alice_id = app.user_id(&alice).await;
    let signer = StreamSigner::new(SECRET.as_bytes(), Duration::from_secs(300));
    let later = now + 60;
    let mut none = url.clone();
    none.path_segments_mut().unwrap().pop().push(&plain);
    none.query_pairs_mut().clear().extend_pairs([
        ("u", alice_id.to_string()),
        ("e", later.to_string()),
        (
            "s",
            signer.sign_for(Capability::Cover, &plain, alice_id, later),
        ),
    ]);
    let (status, code, message) = error_of(http.get(none).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "no_cover"),
        "{message}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn cover_urls_refuse_forgeries_other_users_and_stream_signatures() {
    let app = streaming_app().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let song_a = imported(&app, &alice, "cover-a.mp3").await;
    let song_b = imported(&app, &bob, "cover-b.mp3").await;
    let url_a = cover_url(&app, &alice, &song_a).await;
    let http = &app.app.http;
    let param = |name: &str| {
        url_a
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let with_params = |song: &str, pairs: &[(&str, String)]| {
        let mut url = url_a.clone();
        url.path_segments_mut().unwrap().pop().push(song);
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url
    };
    let (u, e, s) = (param("u"), param("e"), param("s"));
    let alice_id: Uuid = u.parse().unwrap();
    let bob_id = app.user_id(&bob).await;
    let signer = StreamSigner::new(SECRET.as_bytes(), Duration::from_secs(300));
    let cover = |song: &str, user: Uuid, expires: i64| {
        signer.sign_for(Capability::Cover, song, user, expires)
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut tampered = s.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases: Vec<(&str, url::Url, StatusCode)> = vec![
        (
            "missing signature",
            with_params(&song_a, &[("u", u.clone()), ("e", e.clone())]),
            StatusCode::FORBIDDEN,
        ),
        (
            "tampered signature",
            with_params(
                &song_a,
                &[("u", u.clone()), ("e", e.clone()), ("s", tampered)],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "Alice's signature with Bob as the user",
            with_params(
                &song_a,
                &[
                    ("u", bob_id.to_string()),
                    ("e", e.clone()),
                    ("s", s.clone()),
                ],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "song A's signature on song B",
            with_params(
                &song_b,
                &[("u", u.clone()), ("e", e.clone()), ("s", s.clone())],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "a stream signature on the cover route",
            with_params(
                &song_a,
                &[
                    ("u", u.clone()),
                    ("e", e.clone()),
                    ("s", signer.sign(&song_a, alice_id, e.parse().unwrap())),
                ],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "expired",
            with_params(
                &song_a,
                &[
                    ("u", u.clone()),
                    ("e", (now - 5).to_string()),
                    ("s", cover(&song_a, alice_id, now - 5)),
                ],
            ),
            StatusCode::GONE,
        ),
        (
            "song B, validly signed for Alice, who does not have it",
            with_params(
                &song_b,
                &[
                    ("u", u.clone()),
                    ("e", (now + 60).to_string()),
                    ("s", cover(&song_b, alice_id, now + 60)),
                ],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "a song nobody has, validly signed",
            with_params(
                "url:nope",
                &[
                    ("u", u.clone()),
                    ("e", (now + 60).to_string()),
                    ("s", cover("url:nope", alice_id, now + 60)),
                ],
            ),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, url, status) in cases {
        let response = http.get(url).send().await.unwrap();
        let (got, code, message) = error_of(response).await;
        assert_eq!(got, status, "{what}: {code} {message}");
        assert!(!message.is_empty(), "{what}: a message a person can read");
    }
    // A cover URL does not open the audio either.
    let mut as_audio = url_a.clone();
    as_audio.set_path(&url_a.path().replace("/covers/", "/stream/"));
    let (status, code, _) = error_of(http.get(as_audio).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "bad_signature")
    );

    // The untouched URL works, until the song leaves Alice's library.
    assert_eq!(
        http.get(url_a.clone()).send().await.unwrap().status(),
        StatusCode::OK
    );
    let removed = remove_from_library(&app, &alice, &song_a).await;
    assert_eq!(removed.status(), StatusCode::OK);
    let (status, code, _) = error_of(http.get(url_a).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "not_in_library")
    );
    app.cleanup().await;
}
