//! The OpenSubsonic API over real imports: real PyPI clients sync, stream and fetch
//! covers; every answer the test reads is checked against the spec and its XML twin;
//! bad input gets the spec's codes; users never see each other's tracks.

use std::path::Path;
use std::process::Command;

use image::{GenericImageView, ImageFormat};
use jukebox_projections::library::{playable, Playable};
use jukebox_projections::{Music, ReadModel};
use jukebox_test_support::media::Tone;
use jukebox_test_support::tool;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::{Auth, Rest};
use crate::credentials::{create, revoke};
use crate::helpers::{import_app, ImportApp, Options};

/// Imports a tone for `token` and returns its track id once the library has it.
pub(crate) async fn import_tone(
    app: &ImportApp,
    token: &str,
    name: &str,
    title: &str,
    cover: bool,
) -> String {
    import_by(app, token, name, title, "The Test Tones", cover).await
}

pub(crate) async fn import_by(
    app: &ImportApp,
    token: &str,
    name: &str,
    title: &str,
    artist: &str,
    cover: bool,
) -> String {
    let tone = Tone {
        seconds: 3,
        title,
        artist,
        cover,
    };
    let url = app.tone(name, &tone);
    let job = app.start_import(token, &url).await;
    let job = app.finished_job(token, &job).await;
    assert_eq!(job["status"], "completed", "{job}");
    job["track_id"].as_str().unwrap().to_owned()
}

/// The stored audio of a track, read from the object store's folder.
async fn stored_bytes(app: &ImportApp, user: uuid::Uuid, track_id: &str) -> Vec<u8> {
    let Playable::InLibrary(track) = playable(app.app.pool(), user, track_id).await.unwrap() else {
        panic!("{track_id} is not in the library");
    };
    std::fs::read(app.objects.path().join(&track.object_key)).unwrap()
}

/// Runs one real client (tests/subsonic/clients.py) and returns what it saw.
pub(crate) fn run_client(
    client: &str,
    port: u16,
    username: &str,
    secret: &str,
    page: impl std::fmt::Display,
) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/subsonic/clients.py");
    let output = Command::new(tool("subsonic-clients-python"))
        .arg(script)
        .args([
            client,
            &port.to_string(),
            username,
            secret,
            &page.to_string(),
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

pub(crate) fn port_of(url: &str) -> u16 {
    url::Url::parse(url).unwrap().port().unwrap()
}

#[tokio::test]
async fn real_clients_sync_stream_and_fetch_covers() {
    let app = import_app(Options::default()).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut anns = Vec::new();
    for (n, cover) in [(1, true), (2, false), (3, false)] {
        let title = format!("Ann's tone {n}");
        anns.push(import_tone(&app, &ann, &format!("ann{n}.mp3"), &title, cover).await);
    }
    let bobs = import_by(&app, &bob, "bob.mp3", "Bob's tone", "Bob's Band", true).await;
    app.tracks_applied().await;
    app.app.applied_latest(&[ReadModel::of::<Music>()]).await;
    let ann_id = app.user_id(&ann).await;
    let secret = create(&app, &ann, "Phone").await["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let port = port_of(&app.app.api("/"));
    for client in [
        "opensonic-apikey",
        "opensonic-token",
        "opensonic-get",
        "pysonic",
    ] {
        let secret = secret.clone();
        let seen = tokio::task::spawn_blocking(move || {
            run_client(client, port, "ann@example.com", &secret, 2)
        })
        .await
        .unwrap();
        assert_eq!(seen["ping"], true, "{client}");
        // Ann's one artist, her three singles (a track without album data is its own),
        // and the first one's song; none of Bob's.
        assert_eq!(seen["artists"], json!(["The Test Tones"]), "{client}");
        assert_eq!(
            seen["albums"],
            json!(["Ann's tone 1", "Ann's tone 2", "Ann's tone 3"]),
            "{client}"
        );
        let album_songs = seen["album_songs"].as_array().unwrap();
        assert_eq!(album_songs.len(), 1, "{client}");
        assert!(
            anns.iter().any(|a| album_songs[0] == a.as_str()),
            "{client}"
        );
        assert_eq!(seen["newest"].as_array().unwrap().len(), 3, "{client}");
        // Three songs in pages of two: a full page, then the last one.
        assert_eq!(seen["pages"], 2, "{client}: {seen}");
        let mut ids: Vec<String> = seen["songs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        let mut expected = anns.clone();
        expected.sort();
        assert_eq!(ids, expected, "{client}: exactly Ann's songs, once each");
        assert!(!ids.contains(&bobs));
        let first = seen["songs"][0]["id"].as_str().unwrap();
        assert_eq!(seen["song_title"], seen["songs"][0]["title"], "{client}");
        let bytes = stored_bytes(&app, ann_id, first).await;
        assert_eq!(seen["stream_len"], bytes.len(), "{client}");
        assert_eq!(
            seen["stream_sha256"],
            hex::encode(Sha256::digest(&bytes)),
            "{client}"
        );
        assert_eq!(seen["songs"][0]["size"], bytes.len(), "{client}");
        if client.starts_with("opensonic") {
            assert_eq!(seen["range_status"], 206, "{client}");
            assert_eq!(
                seen["range_bytes"],
                hex::encode(&bytes[10..100]),
                "{client}"
            );
            assert_eq!(
                seen["content_range"],
                format!("bytes 10-99/{}", bytes.len()),
                "{client}"
            );
        }
        // Only the first tone has a cover; the client found it and got the picture.
        assert_eq!(seen["cover_type"], "image/jpeg", "{client}: {seen}");
        assert_eq!(seen["cover_sha256"].as_str().map(str::len), Some(64));
    }

    // The credential shows its last use and the app that made it.
    let listed = crate::credentials::list(&app, &ann).await;
    let client = listed["credentials"][0]["last_client"]
        .as_str()
        .unwrap_or("");
    assert!(client.starts_with("py"), "{listed}");
    assert!(listed["credentials"][0]["last_used_at"].is_string());
    app.cleanup().await;
}

#[tokio::test]
async fn every_method_answers_by_the_spec_in_json_and_xml_on_both_ports() {
    let app = import_app(Options::default()).await;
    let ann = app.user("ann@example.com").await;
    let song = import_tone(&app, &ann, "a.mp3", "Morning & <Night>", true).await;
    app.tracks_applied().await;
    app.app.applied_latest(&[ReadModel::of::<Music>()]).await;
    let secret = create(&app, &ann, "Phone").await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    for base in [app.app.api(""), app.app.web("")] {
        let rest = Rest::new(base);
        let key = Auth::ApiKey(secret.clone());
        let token = Auth::Token("ann@example.com".into(), secret.clone());
        let plain = Auth::Password("ANN@example.com".into(), secret.clone());
        let enc = Auth::Password(
            "ann@example.com".into(),
            format!("enc:{}", hex::encode(&secret)),
        );
        for auth in [&key, &token, &plain, &enc] {
            let ping = rest.call("ping", auth, &[]).await;
            assert_eq!(ping["status"], "ok", "{auth:?}");
            assert_eq!(ping["openSubsonic"], true);
            assert_eq!(ping["version"], "1.16.1");
        }
        let extensions = rest
            .call("getOpenSubsonicExtensions", &Auth::None, &[])
            .await;
        let names: Vec<&str> = extensions["openSubsonicExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["apiKeyAuthentication", "formPost"]);
        assert_eq!(
            rest.call("getLicense", &key, &[]).await["license"]["valid"],
            true
        );
        let info = rest.call("tokenInfo", &key, &[]).await;
        assert_eq!(info["tokenInfo"]["username"], "ann@example.com");
        let user = rest
            .call("getUser", &token, &[("username", "ann@example.com")])
            .await;
        assert_eq!(user["user"]["username"], "ann@example.com");
        assert_eq!(user["user"]["streamRole"], true);
        let folders = rest.call("getMusicFolders", &key, &[]).await;
        assert_eq!(
            folders["musicFolders"]["musicFolder"],
            json!([{"id": 1, "name": "Library"}])
        );
        let got = rest.call("getSong", &key, &[("id", &song)]).await;
        assert_eq!(got["song"]["id"], song.as_str());
        assert_eq!(got["song"]["title"], "Morning & <Night>");
        assert_eq!(got["song"]["artist"], "The Test Tones");
        assert_eq!(got["song"]["coverArt"], song.as_str());
        assert_eq!(got["song"]["duration"], 3);
        assert_eq!(got["song"]["suffix"], "m4a");
        let random = rest.call("getRandomSongs", &key, &[("size", "5")]).await;
        assert_eq!(random["randomSongs"]["song"][0]["id"], song.as_str());
        let found = rest.call("search3", &key, &[("query", "morning")]).await;
        assert_eq!(found["searchResult3"]["song"][0]["id"], song.as_str());
        let none = rest.call("search3", &key, &[("query", "evening")]).await;
        assert_eq!(none["searchResult3"]["song"], json!([]));
        let all = rest.call("search3", &key, &[("query", "\"\"")]).await;
        assert_eq!(all["searchResult3"]["song"].as_array().unwrap().len(), 1);
        rest.call("getGenres", &key, &[]).await;

        // Browsing: the ID3 methods and the folders.
        let artists = rest.call("getArtists", &key, &[]).await;
        let index = &artists["artists"]["index"];
        assert_eq!(index[0]["name"], "T");
        assert_eq!(index[0]["artist"][0]["name"], "The Test Tones");
        let artist_id = index[0]["artist"][0]["id"].as_str().unwrap().to_owned();
        let artist = rest.call("getArtist", &token, &[("id", &artist_id)]).await;
        assert_eq!(artist["artist"]["albumCount"], 1);
        let album = &artist["artist"]["album"][0];
        assert_eq!(album["name"], "Morning & <Night>");
        assert_eq!(album["coverArt"], song.as_str());
        let album_id = album["id"].as_str().unwrap().to_owned();
        let got_album = rest.call("getAlbum", &key, &[("id", &album_id)]).await;
        assert_eq!(got_album["album"]["songCount"], 1);
        assert_eq!(got_album["album"]["song"][0]["id"], song.as_str());
        assert_eq!(got_album["album"]["song"][0]["albumId"], album_id.as_str());
        assert_eq!(
            got_album["album"]["song"][0]["artistId"],
            artist_id.as_str()
        );
        for kind in [
            "newest",
            "alphabeticalByName",
            "alphabeticalByArtist",
            "random",
        ] {
            let list = rest
                .call("getAlbumList2", &key, &[("type", kind), ("size", "500")])
                .await;
            assert_eq!(
                list["albumList2"]["album"][0]["id"],
                album_id.as_str(),
                "{kind}"
            );
        }
        let years = rest
            .call(
                "getAlbumList2",
                &key,
                &[("type", "byYear"), ("fromYear", "1900"), ("toYear", "2100")],
            )
            .await;
        let with_year = usize::from(got_album["album"]["year"].is_number());
        assert_eq!(
            years["albumList2"]["album"].as_array().unwrap().len(),
            with_year
        );
        let indexes = rest.call("getIndexes", &key, &[]).await;
        assert_eq!(
            indexes["indexes"]["index"][0]["artist"][0]["id"],
            artist_id.as_str()
        );
        let library = rest.call("getMusicDirectory", &key, &[("id", "1")]).await;
        assert_eq!(library["directory"]["child"][0]["id"], artist_id.as_str());
        let of_artist = rest
            .call("getMusicDirectory", &key, &[("id", &artist_id)])
            .await;
        assert_eq!(of_artist["directory"]["child"][0]["id"], album_id.as_str());
        assert_eq!(of_artist["directory"]["child"][0]["isDir"], true);
        let of_album = rest
            .call("getMusicDirectory", &key, &[("id", &album_id)])
            .await;
        assert_eq!(of_album["directory"]["child"][0]["id"], song.as_str());
        let searched = rest.call("search3", &key, &[("query", "tones")]).await;
        assert_eq!(
            searched["searchResult3"]["artist"][0]["id"],
            artist_id.as_str()
        );
        assert_eq!(
            searched["searchResult3"]["album"][0]["id"],
            album_id.as_str()
        );
        assert_eq!(searched["searchResult3"]["song"][0]["id"], song.as_str());

        // Form POST, and JSONP.
        let response = rest
            .http
            .post(format!("{}/rest/getSong.view", rest.base))
            .form(&[
                ("apiKey", secret.as_str()),
                ("f", "json"),
                ("id", song.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        crate::spec::assert_valid("getSong", &answer);
        assert_eq!(answer["subsonic-response"]["song"]["id"], song.as_str());
        let jsonp = rest
            .http
            .get(format!("{}/rest/ping", rest.base))
            .query(&[
                ("apiKey", secret.as_str()),
                ("f", "jsonp"),
                ("callback", "cb"),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            jsonp.starts_with("cb({\"subsonic-response\":") && jsonp.ends_with("});"),
            "{jsonp}"
        );
    }

    // getCoverArt: without `size` the stored picture byte for byte; `size=32` scales the
    // tone's 64x48 cover to a 32x24 JPEG; a size it fits in, or above 2048, as stored.
    let ann_id = app.user_id(&ann).await;
    let Playable::InLibrary(track) = playable(app.app.pool(), ann_id, &song).await.unwrap() else {
        panic!("{song} is not in the library");
    };
    let (cover_key, _, _) = track.cover.expect("the tone's cover is stored");
    let stored = std::fs::read(app.objects.path().join(&cover_key)).unwrap();
    let stored_picture = image::load_from_memory(&stored).unwrap();
    assert_eq!(stored_picture.dimensions(), (64, 48));
    let rest = Rest::new(app.app.api(""));
    let key = Auth::ApiKey(secret.clone());
    let (kind, original, original_tag) = cover_art(&rest, &key, &song, &[]).await;
    assert_eq!(kind, "image/jpeg");
    assert_eq!(original, stored);
    let (kind, small, small_tag) = cover_art(&rest, &key, &song, &[("size", "32")]).await;
    assert_eq!(kind, "image/jpeg");
    let decoded = image::load_from_memory_with_format(&small, ImageFormat::Jpeg).unwrap();
    assert_eq!(decoded.dimensions(), (32, 24));
    assert_ne!(
        small_tag, original_tag,
        "a scaled cover needs a tag of its own"
    );
    let again = rest
        .http
        .get(format!("{}/rest/getCoverArt", rest.base))
        .query(&[("apiKey", secret.as_str()), ("id", &song), ("size", "32")])
        .header("if-none-match", &small_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    for size in ["64", "300", "2049", "8192"] {
        let (kind, bytes, _) = cover_art(&rest, &key, &song, &[("size", size)]).await;
        assert_eq!(
            (kind.as_str(), bytes == stored),
            ("image/jpeg", true),
            "{size}"
        );
    }
    for size in ["0", "8193", "-5", "big"] {
        let answer = rest
            .json("getCoverArt", &key, &[("id", &song), ("size", size)])
            .await;
        assert_eq!(answer["error"]["code"], 10, "{size}: {answer}");
    }
    // A stored cover that does not decode is answered as stored, not as a failure.
    let broken = vec![0x55; stored.len()];
    std::fs::write(app.objects.path().join(&cover_key), &broken).unwrap();
    let (_, bytes, _) = cover_art(&rest, &key, &song, &[("size", "32")]).await;
    assert_eq!(bytes, broken);
    app.cleanup().await;
}

/// `getCoverArt`'s picture: its type, its bytes and its ETag.
async fn cover_art(
    rest: &Rest,
    auth: &Auth,
    id: &str,
    params: &[(&str, &str)],
) -> (String, Vec<u8>, String) {
    let Auth::ApiKey(secret) = auth else {
        panic!("cover_art takes an API key");
    };
    let response = rest
        .http
        .get(format!("{}/rest/getCoverArt", rest.base))
        .query(&[("apiKey", secret.as_str()), ("id", id)])
        .query(params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{params:?}");
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    let (kind, tag) = (header("content-type"), header("etag"));
    (kind, response.bytes().await.unwrap().to_vec(), tag)
}

#[tokio::test]
async fn bad_input_gets_the_spec_codes_and_users_stay_apart() {
    let app = import_app(Options::default()).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let anns = import_tone(&app, &ann, "a.mp3", "Ann's", true).await;
    let bobs = import_by(&app, &bob, "b.mp3", "Bob's", "Bob's Band", true).await;
    app.tracks_applied().await;
    app.app.applied_latest(&[ReadModel::of::<Music>()]).await;
    let ann_credential = create(&app, &ann, "Phone").await;
    let ann_secret = ann_credential["secret"].as_str().unwrap().to_owned();
    let bob_secret = create(&app, &bob, "Phone").await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let rest = Rest::new(app.app.api(""));
    let key = Auth::ApiKey(ann_secret.clone());
    let token = Auth::Token("ann@example.com".into(), ann_secret.clone());

    // Missing parameters: 10.
    assert_eq!(rest.error_code("getSong", &key, &[]).await, 10);
    assert_eq!(rest.error_code("ping", &Auth::None, &[]).await, 10);
    assert_eq!(rest.error_code("search3", &key, &[]).await, 10);
    assert_eq!(
        rest.error_code("getRandomSongs", &key, &[("size", "501")])
            .await,
        10
    );
    assert_eq!(
        rest.error_code("search3", &key, &[("query", ""), ("songCount", "x")])
            .await,
        10
    );
    // Wrong credentials: 40; the account password is never accepted.
    let password = Auth::Password("ann@example.com".into(), "correct horse battery".into());
    assert_eq!(rest.error_code("ping", &password, &[]).await, 40);
    let wrong_user = Auth::Token("nobody@example.com".into(), ann_secret.clone());
    assert_eq!(rest.error_code("ping", &wrong_user, &[]).await, 40);
    let bobs_with_anns = Auth::Token("bob@example.com".into(), ann_secret.clone());
    assert_eq!(rest.error_code("ping", &bobs_with_anns, &[]).await, 40);
    assert_eq!(
        rest.error_code("ping", &Auth::ApiKey("0".repeat(64)), &[])
            .await,
        44
    );
    assert_eq!(
        rest.error_code("ping", &Auth::ApiKey("junk".into()), &[])
            .await,
        44
    );
    // u with apiKey: 43.
    let both = rest.json("ping", &key, &[("u", "ann@example.com")]).await;
    assert_eq!(both["error"]["code"], 43);
    // Unknown and foreign ids: 70, for metadata and bytes alike.
    assert_eq!(
        rest.error_code("getSong", &key, &[("id", "yt:nonexistent")])
            .await,
        70
    );
    assert_eq!(rest.error_code("getSong", &key, &[("id", &bobs)]).await, 70);
    for method in ["stream", "download", "getCoverArt"] {
        let answer = rest.json(method, &key, &[("id", &bobs)]).await;
        assert_eq!(answer["error"]["code"], 70, "{method}");
    }
    let bob_key = Auth::ApiKey(bob_secret);
    let bob_song = rest.call("getSong", &bob_key, &[("id", &bobs)]).await;
    let bob_album = bob_song["song"]["albumId"].as_str().unwrap().to_owned();
    let bob_artist = bob_song["song"]["artistId"].as_str().unwrap().to_owned();
    assert_eq!(
        rest.error_code("getAlbum", &key, &[("id", &bob_album)])
            .await,
        70
    );
    assert_eq!(
        rest.error_code("getArtist", &key, &[("id", &bob_artist)])
            .await,
        70
    );
    for id in [&bob_album, &bob_artist, &bobs] {
        assert_eq!(
            rest.error_code("getMusicDirectory", &key, &[("id", id)])
                .await,
            70
        );
    }
    assert_eq!(rest.error_code("getAlbumList2", &key, &[]).await, 10);
    assert_eq!(
        rest.error_code("getAlbumList2", &key, &[("type", "sideways")])
            .await,
        10
    );
    assert_eq!(
        rest.error_code("getAlbumList2", &key, &[("type", "byYear")])
            .await,
        10
    );
    assert_eq!(
        rest.error_code(
            "getAlbumList2",
            &key,
            &[("type", "newest"), ("size", "501")]
        )
        .await,
        10
    );
    let anns_artists = rest.call("getArtists", &key, &[]).await;
    assert!(!anns_artists.to_string().contains("Bob's Band"));
    let bob_sees = rest.call("search3", &bob_key, &[("query", "")]).await;
    let ids: Vec<&str> = bob_sees["searchResult3"]["song"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bobs.as_str()]);
    let ann_sees = rest.call("search3", &key, &[("query", "")]).await;
    assert_eq!(ann_sees["searchResult3"]["song"][0]["id"], anns.as_str());
    assert_eq!(
        ann_sees["searchResult3"]["song"].as_array().unwrap().len(),
        1
    );
    // getUser is about oneself only.
    assert_eq!(
        rest.error_code("getUser", &key, &[("username", "bob@example.com")])
            .await,
        50
    );
    // A method Jukebox does not have: the spec's 404, in the envelope.
    let response = rest
        .http
        .get(format!("{}/rest/getPodcasts.view", rest.base))
        .query(&[("apiKey", ann_secret.as_str()), ("f", "json")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["subsonic-response"]["status"], "failed");
    // CORS preflight.
    let response = rest
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/rest/ping.view", rest.base),
        )
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");

    // Revoking makes the very next call fail: 44 for the key, 40 for token auth.
    assert_eq!(rest.call("ping", &token, &[]).await["status"], "ok");
    let id = ann_credential["id"].as_str().unwrap();
    assert_eq!(
        revoke(&app, &ann, id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(rest.error_code("ping", &key, &[]).await, 44);
    assert_eq!(rest.error_code("ping", &token, &[]).await, 40);
    app.cleanup().await;
}

#[tokio::test]
async fn failed_attempts_are_limited_per_account() {
    let app = import_app(Options {
        extra: vec![("RATE_LIMIT_PER_ACCOUNT", "3".into())],
        ..Options::default()
    })
    .await;
    let ann = app.user("ann@example.com").await;
    let secret = create(&app, &ann, "Phone").await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let rest = Rest::new(app.app.api(""));
    let wrong = Auth::Password("ann@example.com".into(), "guess".into());
    for _ in 0..3 {
        assert_eq!(rest.error_code("ping", &wrong, &[]).await, 40);
    }
    // The right secret is refused too until the window ends: guesses cannot continue.
    let right = Auth::Password("ann@example.com".into(), secret);
    assert_eq!(rest.error_code("ping", &right, &[]).await, 40);
    app.cleanup().await;
}
