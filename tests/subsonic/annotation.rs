//! Issue 19 over Subsonic: real clients (py-opensonic, py-sonic) star, unstar, list their
//! stars, scrobble (a retry counts once) and find the plays in the recent and frequent
//! album lists and in `playCount`; bad and foreign ids change nothing.

use jukebox_projections::{Music, ReadModel};
use serde_json::{json, Value};

use crate::api::{Auth, Rest};
use crate::credentials::create;
use crate::helpers::{import_app, ImportApp, Options};
use crate::rest::{import_by, port_of, run_client};

/// Two tones for `token` (`<who>'s tone 1` and `2`, each its own album), and a secret.
async fn two_tones(app: &ImportApp, token: &str, who: &str) -> (Vec<String>, String) {
    let mut songs = Vec::new();
    for n in 1..=2 {
        let title = format!("{who}'s tone {n}");
        songs.push(import_by(app, token, &format!("{who}{n}.mp3"), &title, who, false).await);
    }
    let secret = create(app, token, "Phone").await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    (songs, secret)
}

#[tokio::test]
async fn real_clients_star_unstar_scrobble_and_list_what_was_played() {
    let app = import_app(Options::default()).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (anns, ann_secret) = two_tones(&app, &ann, "Ann").await;
    let (bobs, bob_secret) = two_tones(&app, &bob, "Bob").await;
    app.tracks_applied().await;
    app.app.applied_latest(&[ReadModel::of::<Music>()]).await;
    let port = port_of(&app.app.api("/"));

    for (client, user, who, songs, secret) in [
        (
            "annotate-opensonic",
            "ann@example.com",
            "Ann",
            &anns,
            &ann_secret,
        ),
        (
            "annotate-pysonic",
            "bob@example.com",
            "Bob",
            &bobs,
            &bob_secret,
        ),
    ] {
        let secret = secret.clone();
        let seen = tokio::task::spawn_blocking(move || run_client(client, port, user, &secret, 0))
            .await
            .unwrap();
        let (first, second) = (songs[0].as_str(), songs[1].as_str());
        assert_eq!(seen["songs"], json!([first, second]), "{client}: {seen}");
        assert_eq!(seen["starred_songs"], json!([first]), "{client}: {seen}");
        assert_eq!(
            seen["starred_albums"],
            json!([format!("{who}'s tone 2")]),
            "{client}: {seen}"
        );
        assert_eq!(seen["starred_song_flag"], true, "{client}: {seen}");
        // The first song: a scrobble sent twice (counted once) and another at a later
        // time; the second: once, latest of all.
        assert_eq!(seen["play_counts"], json!([2, 1]), "{client}: {seen}");
        assert_eq!(
            seen["recent"],
            json!([format!("{who}'s tone 2"), format!("{who}'s tone 1")]),
            "{client}: {seen}"
        );
        assert_eq!(
            seen["frequent"],
            json!([format!("{who}'s tone 1"), format!("{who}'s tone 2")]),
            "{client}: {seen}"
        );
        assert_eq!(seen["starred_songs_after"], json!([]), "{client}: {seen}");
        assert_eq!(seen["now_playing"], json!([second]), "{client}: {seen}");
    }
    // Three plays each in the log, whatever the retries: one `play` aggregate per play.
    let plays: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'play' AND event_type = 'PlayRecorded'",
    )
    .fetch_one(app.app.pool())
    .await
    .unwrap();
    assert_eq!(plays, 6);
    app.cleanup().await;
}

#[tokio::test]
async fn stars_and_plays_show_everywhere_and_bad_input_changes_nothing() {
    let app = import_app(Options::default()).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (anns, secret) = two_tones(&app, &ann, "Ann").await;
    let (bobs, _) = two_tones(&app, &bob, "Bob").await;
    app.tracks_applied().await;
    app.app.applied_latest(&[ReadModel::of::<Music>()]).await;
    let rest = Rest::new(app.app.api(""));
    let key = Auth::ApiKey(secret);
    let song = anns[0].as_str();
    let album = rest.call("getSong", &key, &[("id", song)]).await["song"]["albumId"]
        .as_str()
        .unwrap()
        .to_owned();
    let artist = rest.call("getSong", &key, &[("id", song)]).await["song"]["artistId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Star a song, its album and its artist, each as folder clients do (`id`).
    for id in [song, album.as_str(), artist.as_str()] {
        let answer = rest.call("star", &key, &[("id", id)]).await;
        assert_eq!(answer["status"], "ok", "{answer}");
    }
    let when = (time::OffsetDateTime::now_utc().unix_timestamp() - 60) * 1000;
    let answer = rest
        .call(
            "scrobble",
            &key,
            &[("id", song), ("time", &when.to_string())],
        )
        .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    let got = rest.call("getAlbum", &key, &[("id", &album)]).await;
    assert!(got["album"]["starred"].is_string(), "{got}");
    assert_eq!(got["album"]["playCount"], 1, "{got}");
    assert!(got["album"]["played"].is_string(), "{got}");
    assert!(got["album"]["song"][0]["starred"].is_string(), "{got}");
    assert_eq!(got["album"]["song"][0]["playCount"], 1, "{got}");
    let artists = rest.call("getArtists", &key, &[]).await;
    assert!(
        artists["artists"]["index"][0]["artist"][0]["starred"].is_string(),
        "{artists}"
    );
    let folders = rest.call("getStarred", &key, &[]).await;
    assert_eq!(folders["starred"]["song"][0]["id"], song);
    assert_eq!(folders["starred"]["album"][0]["id"], album.as_str());
    assert_eq!(folders["starred"]["artist"][0]["id"], artist.as_str());
    let starred = rest
        .call("getAlbumList2", &key, &[("type", "starred")])
        .await;
    assert_eq!(starred["albumList2"]["album"][0]["id"], album.as_str());

    // Bob's song, an unknown one, a malformed one: not found (70), nothing starred; a
    // request with one good and one foreign id changes nothing either.
    let before = rest.call("getStarred2", &key, &[]).await;
    for params in [
        vec![("id", bobs[0].as_str())],
        vec![("id", "yt:nosuchsong")],
        vec![("id", "not an id")],
        vec![("albumId", "6f9619ff-8b86-d011-b42d-00c04fc964ff")],
        vec![("id", anns[1].as_str()), ("id", bobs[1].as_str())],
    ] {
        assert_eq!(
            rest.error_code("star", &key, &params).await,
            70,
            "{params:?}"
        );
        if params[0].0 == "id" {
            let code = rest.error_code("scrobble", &key, &params).await;
            assert_eq!(code, 70, "{params:?}");
        }
    }
    assert_eq!(rest.error_code("star", &key, &[]).await, 10);
    for time in ["yesterday", "-5", "946684799999", "99999999999999"] {
        let params = [("id", anns[1].as_str()), ("time", time)];
        assert_eq!(
            rest.error_code("scrobble", &key, &params).await,
            10,
            "{time}"
        );
    }
    let params = [("id", anns[1].as_str()), ("submission", "maybe")];
    assert_eq!(rest.error_code("scrobble", &key, &params).await, 10);
    assert_eq!(rest.call("getStarred2", &key, &[]).await, before);
    let other = rest.call("getSong", &key, &[("id", &anns[1])]).await;
    assert!(other["song"].get("playCount").is_none(), "{other}");
    assert!(other["song"].get("starred").is_none(), "{other}");

    // The web app's view of the same: marks on the library routes.
    let library: Value = app
        .app
        .http
        .get(app.app.api("/library?sort=title"))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(library["items"][0]["starred"].is_string(), "{library}");
    assert_eq!(library["items"][0]["play_count"], 1, "{library}");
    assert!(library["items"][1]["starred"].is_null(), "{library}");
    assert_eq!(library["items"][1]["play_count"], 0, "{library}");
    app.cleanup().await;
}
