//! Playlists over the Subsonic API (issue 19): the real py-opensonic and py-sonic
//! clients create, update (add and remove in one call), replace to reorder and delete;
//! then the spec's answers for another user's playlists and for bad input.

use jukebox_projections::{Music, ReadModel};
use serde_json::{json, Value};

use crate::api::{Auth, Rest};
use crate::credentials::create;
use crate::helpers::{import_app, Options};
use crate::rest::{import_by, port_of, run_client};

#[tokio::test]
async fn real_clients_create_update_reorder_and_delete_playlists() {
    let app = import_app(Options::default()).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut songs = Vec::new();
    for n in 1..=3 {
        let title = format!("Tone {n}");
        songs.push(import_by(&app, &ann, &format!("t{n}.mp3"), &title, "Tones", false).await);
    }
    let bobs = import_by(&app, &bob, "b.mp3", "Bob's", "Bob", false).await;
    app.tracks_applied().await;
    app.app.applied_latest(&[ReadModel::of::<Music>()]).await;
    let secret = |v: Value| v["secret"].as_str().unwrap().to_owned();
    let ann_secret = secret(create(&app, &ann, "Phone").await);
    let bob_secret = secret(create(&app, &bob, "Phone").await);
    let (a, b, c) = (&songs[0], &songs[1], &songs[2]);

    let port = port_of(&app.app.api("/"));
    for client in ["opensonic-playlists", "pysonic-playlists"] {
        let (secret, list) = (ann_secret.clone(), songs.join(","));
        let seen = tokio::task::spawn_blocking(move || {
            run_client(client, port, "ann@example.com", &secret, &list)
        })
        .await
        .unwrap();
        assert_eq!(seen["after_create"], json!([a, b, c]), "{client}: {seen}");
        // Add `a` and remove index 0, in one call.
        assert_eq!(seen["after_update"], json!([b, c, a]), "{client}: {seen}");
        assert_eq!(seen["comment"], "for the drive", "{client}");
        // createPlaylist with the playlistId replaces the list: the reversed order holds.
        assert_eq!(seen["after_replace"], json!([a, c, b]), "{client}: {seen}");
        assert_eq!(seen["left"], json!([]), "{client}: {seen}");
    }

    let rest = Rest::new(app.app.api(""));
    let ann = Auth::ApiKey(ann_secret);
    let bob = Auth::ApiKey(bob_secret);
    let created = rest
        .json(
            "createPlaylist",
            &ann,
            &[("name", "Shared"), ("songId", a), ("songId", a)],
        )
        .await;
    let shared = created["playlist"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["playlist"]["songCount"], 2);
    let private = rest
        .json("createPlaylist", &ann, &[("name", "Mine"), ("songId", b)])
        .await["playlist"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let made_public = rest
        .json(
            "updatePlaylist",
            &ann,
            &[("playlistId", &shared), ("public", "true")],
        )
        .await;
    assert_eq!(made_public["status"], "ok");
    // Bob sees Ann's public playlist, read-only and without her address; not her private one.
    let listed = rest.call("getPlaylists", &bob, &[]).await;
    assert_eq!(
        listed["playlists"]["playlist"],
        json!([listed["playlists"]["playlist"][0].clone()])
    );
    let theirs = &listed["playlists"]["playlist"][0];
    assert_eq!(
        (&theirs["name"], &theirs["readonly"], &theirs["owner"]),
        (&json!("Shared"), &json!(true), &json!(""))
    );
    let got = rest.call("getPlaylist", &bob, &[("id", &shared)]).await;
    assert_eq!(got["playlist"]["entry"][1]["id"], a.as_str());
    assert_eq!(
        rest.error_code("getPlaylist", &bob, &[("id", &private)])
            .await,
        70
    );
    assert_eq!(
        rest.error_code("deletePlaylist", &bob, &[("id", &shared)])
            .await,
        50
    );
    assert_eq!(
        rest.error_code(
            "updatePlaylist",
            &bob,
            &[("playlistId", &shared), ("name", "Mine now")]
        )
        .await,
        50
    );
    // Bad input: nothing of it is applied.
    assert_eq!(
        rest.error_code(
            "updatePlaylist",
            &ann,
            &[
                ("playlistId", &shared),
                ("songIdToAdd", c),
                ("songIndexToRemove", "2")
            ]
        )
        .await,
        10
    );
    assert_eq!(
        rest.error_code(
            "updatePlaylist",
            &ann,
            &[("playlistId", &shared), ("songIdToAdd", &bobs)]
        )
        .await,
        70
    );
    assert_eq!(
        rest.error_code("createPlaylist", &ann, &[("songId", a)])
            .await,
        10
    );
    assert_eq!(
        rest.error_code("createPlaylist", &ann, &[("name", " ")])
            .await,
        10
    );
    assert_eq!(
        rest.error_code("getPlaylist", &ann, &[("id", "nope")])
            .await,
        70
    );
    let unchanged = rest.call("getPlaylist", &ann, &[("id", &shared)]).await;
    assert_eq!(unchanged["playlist"]["songCount"], 2);
    assert_eq!(unchanged["playlist"]["name"], "Shared");
    app.cleanup().await;
}
