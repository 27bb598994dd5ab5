//! Erasure (issue 21, ADR 42), end to end on real imports, an upload and s3s-fs. Ann has
//! a track she shares with Bob, an upload only she has, a playlist, a star, a play and an
//! app credential; then she deletes her account. After that:
//! - no table of the database but the write side's `events` and `user_keys` holds her
//!   address or the names she typed (each table's rows read as text, `t::text ILIKE`),
//!   and no read-model, access or edge table holds a row of her user id;
//! - no object key in the S3 store names her, and her upload's objects are gone while
//!   the shared track's stay (Bob still streams it);
//! - her upload was discarded (`TrackDiscarded`): the catalog no longer lists it, and
//!   when Bob uploads the same file it is stored again and streams;
//! - no `playlist_entries` row of her playlist is left;
//! - no message on `EVENTS`, read whole with a stock ordered consumer, holds them;
//! - `jukebox events show` prints her events with "erased" in place of the address;
//! - `jukebox projections rebuild --all` (which can no longer open her fields) equals
//!   the live read models;
//! - her address signs up again, as a new person with an empty library, and
//!   `jukebox admin grant <address>` makes that new person an admin.

use std::path::Path;

use reqwest::multipart::{Form, Part};
use reqwest::{header, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::{import_app, tone, ImportApp, Options};
use crate::media::{files_under, make_tone};
use jukebox_handlers::downloader::source_lock::SourceLock;
use jukebox_test_support::{eventually, raw_stream_payloads};

const ANN: &str = "ann.erasable@example.com";
const PLAYLIST: &str = "Anns secret mixtape";
const CREDENTIAL: &str = "Anns kitchen radio";

/// Uploads a fresh tone as `token`'s user; returns the track id.
async fn upload(app: &ImportApp, token: &str, name: &str) -> String {
    let path = app.media_dir.path().join(name);
    make_tone(&path, &tone(3));
    upload_file(app, token, &path).await
}

/// Uploads the file at `path` as `token`'s user; returns the track id.
async fn upload_file(app: &ImportApp, token: &str, path: &Path) -> String {
    let job_id = start_upload(app, token, path).await;
    let job = app.finished_job(token, &job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    job["track_id"].as_str().unwrap().to_owned()
}

/// Sends the file at `path` as `token`'s user; returns the job id.
async fn start_upload(app: &ImportApp, token: &str, path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let form = Form::new().part(
        "file",
        Part::bytes(std::fs::read(path).unwrap())
            .file_name(name)
            .mime_str("audio/mpeg")
            .unwrap(),
    );
    let response = app
        .app
        .http
        .post(app.app.api("/songs/upload"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.app.position_of(&response);
    let body: Value = response.json().await.unwrap();
    body["job_id"].as_str().unwrap().to_owned()
}

/// How many libraries hold `track_id`, as the admin's catalog (`GET /admin/songs`)
/// shows it, read after the latest write.
async fn holders(app: &ImportApp, admin: &str, track_id: &str) -> i64 {
    let response = app.read(admin, "/admin/songs").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let songs = body["songs"].as_array().unwrap();
    let song = songs
        .iter()
        .find(|s| s["track_id"] == track_id)
        .unwrap_or_else(|| panic!("{track_id} not in the catalog: {body:#}"));
    song["libraries"].as_i64().unwrap()
}

/// Imports a tone by URL for `token`'s user; returns the track id.
async fn import(app: &ImportApp, token: &str, url: &str) -> String {
    let job_id = app.start_import(token, url).await;
    let job = app.finished_job(token, &job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    job["track_id"].as_str().unwrap().to_owned()
}

/// Streams `track_id` as `token`'s user through the signed stream URL; the bytes served.
async fn stream(app: &ImportApp, token: &str, track_id: &str) -> usize {
    let response = app
        .app
        .http
        .get(app.app.api(&format!("/stream/{track_id}")))
        .bearer_auth(token)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{track_id}");
    let body: Value = response.json().await.unwrap();
    let addr = app.app.running.as_ref().unwrap().stream_addr.unwrap();
    let mut signed = url::Url::parse(body["url"].as_str().unwrap()).unwrap();
    signed.set_host(Some(&addr.ip().to_string())).unwrap();
    signed.set_port(Some(addr.port())).unwrap();
    let streamed = reqwest::get(signed).await.unwrap();
    assert_eq!(streamed.status(), StatusCode::OK, "{track_id}");
    streamed.bytes().await.unwrap().len()
}

/// The types of a track's events, in order.
async fn track_history(app: &ImportApp, track_id: &str) -> Vec<String> {
    let events = app.history("track", track_id).await;
    events.into_iter().map(|(t, _)| t).collect()
}

/// Every object key in the store (s3s-fs keeps `<bucket>/<key>` as files).
fn object_keys(root: &Path) -> Vec<String> {
    let mut keys: Vec<String> = files_under(root)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    keys.sort();
    keys
}

/// Each read model's rows as JSON text, sorted.
async fn read_models(app: &ImportApp) -> Vec<(String, Vec<String>)> {
    let mut models = Vec::new();
    for name in jukebox_projections::ALL {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM {name} t ORDER BY 1"
        ))
        .fetch_all(app.app.pool())
        .await
        .unwrap();
        models.push((name.to_string(), rows));
    }
    models
}

/// `jukebox <args>` against the test's database and namespace; its standard output.
async fn jukebox(app: &ImportApp, args: &[&str]) -> String {
    let config = &app.app.config;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_jukebox"));
    command
        .args(args)
        .env("DATABASE_URL", config.database_url.expose_secret())
        .env("NATS_URL", &config.nats_url)
        .env("NATS_NAMESPACE", &config.nats_namespace);
    // Waited for on a thread of its own: the app runs on the test's runtime, and its
    // processor answers the commands the CLI sends (`admin grant`).
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "jukebox {args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn an_erased_account_leaves_no_trace_and_its_address_signs_up_again() {
    let app = import_app(Options {
        s3: true,
        extra: vec![
            (
                "STREAM_SIGNING_SECRET",
                "stream-secret-for-tests-0123456789".into(),
            ),
            // An admin reads the catalog's holder counts.
            ("ADMIN_BOOTSTRAP_EMAIL", "root@example.com".into()),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let root = app._s3.as_ref().unwrap().root().to_owned();
    let ann = app.user(ANN).await;
    let bob = app.user("bob@example.com").await;
    let ann_id = app.user_id(&ann).await;
    let admin = app.admin("root@example.com").await;

    // A track both have, and an upload only Ann has.
    let url = app.tone("shared.mp3", &tone(3));
    let shared = import(&app, &ann, &url).await;
    assert_eq!(import(&app, &bob, &url).await, shared);
    let own = upload(&app, &ann, "mine.mp3").await;
    assert!(own.starts_with("upload:"), "{own}");
    let post = reqwest::Method::POST;
    app.write(
        &ann,
        post.clone(),
        "/playlists",
        json!({"name": PLAYLIST, "description": "for Ann only", "track_ids": [shared, own]}),
    )
    .await;
    let star = format!("/me/favourites/track/{shared}");
    app.write(&ann, reqwest::Method::PUT, &star, Value::Null)
        .await;
    let played = json!({"track_id": own, "played_at": "2026-01-02T03:04:05Z"});
    app.write(&ann, post.clone(), "/me/plays", played).await;
    let credential = json!({"name": CREDENTIAL});
    app.write(&ann, post.clone(), "/me/app-credentials", credential)
        .await;
    let own_objects: Vec<String> = object_keys(&root)
        .into_iter()
        .filter(|k| k.contains(&own))
        .collect();
    assert_eq!(
        own_objects.len(),
        2,
        "the upload and its cover: {own_objects:?}"
    );

    // Without the password: refused, nothing erased.
    let erase = |body: Value| {
        app.app
            .http
            .delete(app.app.api("/me"))
            .bearer_auth(&ann)
            .json(&body)
            .send()
    };
    let refused = erase(json!({})).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "password_required", "{body}");
    let wrong = erase(json!({"password": "not her password"}))
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.library(&ann).await.len(), 2);
    assert_eq!(holders(&app, &admin, &shared).await, 2, "Ann and Bob");

    let erased = erase(json!({"password": crate::helpers::PASSWORD}))
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::OK);
    let cleared = erased
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let body: Value = erased.json().await.unwrap();
    assert_eq!(
        (&body["user_id"], &body["erased"]),
        (&json!(ann_id), &json!(true))
    );
    // Her token no longer opens anything.
    let me = app
        .app
        .http
        .get(app.app.api("/auth/me"))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // The reactor deletes her own upload; the shared track stays.
    eventually("the erased user's upload leaves the store", || async {
        !object_keys(&root).iter().any(|k| k.contains(&own))
    })
    .await;
    assert!(
        object_keys(&root)
            .iter()
            .any(|k| k.ends_with(&format!("{shared}.m4a"))),
        "{:?}",
        object_keys(&root)
    );
    app.app.projections_caught_up().await;

    // Bob still streams the shared track, and the catalog counts him alone.
    assert!(stream(&app, &bob, &shared).await > 1_000);
    assert_eq!(holders(&app, &admin, &shared).await, 1, "Bob alone");

    // Her upload was discarded: no longer stored, so the catalog no longer lists it...
    assert_eq!(
        track_history(&app, &own).await,
        ["TrackStored", "TrackDiscarded"]
    );
    let catalog: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM tracks WHERE track_id = $1)
              + (SELECT count(*) FROM library WHERE track_id = $1)
              + (SELECT count(*) FROM music WHERE id = $1)",
    )
    .bind(&own)
    .fetch_one(app.app.pool())
    .await
    .unwrap();
    assert_eq!(catalog, 0, "a read model still lists the discarded upload");
    // ... and the same file uploaded by Bob is stored again, and streams.
    let restored = upload_file(&app, &bob, &app.media_dir.path().join("mine.mp3")).await;
    assert_eq!(restored, own);
    assert_eq!(
        track_history(&app, &own).await,
        ["TrackStored", "TrackDiscarded", "TrackStored"]
    );
    assert!(stream(&app, &bob, &own).await > 1_000);
    assert_eq!(
        object_keys(&root)
            .iter()
            .filter(|k| k.contains(&own))
            .count(),
        2,
        "the upload and its cover, stored again"
    );

    let needles = [ANN, PLAYLIST, CREDENTIAL];
    // Every table but the log and the key table: nothing of hers as text...
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'
           AND tablename NOT IN ('events', 'user_keys') ORDER BY 1",
    )
    .fetch_all(app.app.pool())
    .await
    .unwrap();
    assert!(tables.len() > 20, "{tables:?}");
    let mut found = Vec::new();
    for table in &tables {
        for needle in needles {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT t::text FROM {table} t WHERE t::text ILIKE '%' || $1 || '%'"
            ))
            .bind(needle)
            .fetch_all(app.app.pool())
            .await
            .unwrap();
            found.extend(rows.into_iter().map(|r| format!("{table}: {r}")));
        }
    }
    assert!(found.is_empty(), "her data is still in: {found:#?}");
    // ... and no row of hers in a read model or in what the edge and the access state keep.
    let mut with_user = jukebox_projections::ALL.to_vec();
    with_user.extend([
        "access_users",
        "access_sessions",
        "session_use",
        "app_credential_use",
        "now_playing",
    ]);
    for table in with_user {
        let rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'"
        ))
        .bind(ann_id.to_string())
        .fetch_one(app.app.pool())
        .await
        .unwrap();
        assert_eq!(rows, 0, "{table} still has rows of the erased user");
    }
    // Not even the entries of her playlist (which name no user).
    let entries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM playlist_entries WHERE playlist_id::text IN (
             SELECT aggregate_id FROM events
             WHERE aggregate_type = 'playlist' AND event_type = 'PlaylistCreated'
               AND payload::jsonb -> 'PlaylistCreated' ->> 'owner' = $1)",
    )
    .bind(ann_id.to_string())
    .fetch_one(app.app.pool())
    .await
    .unwrap();
    assert_eq!(entries, 0, "playlist_entries of her playlist remain");
    // The key is gone; the row stays, so nothing is sealed for her again.
    let key: (Option<Vec<u8>>, bool) =
        sqlx::query_as("SELECT key, erased_at IS NOT NULL FROM user_keys WHERE user_id = $1")
            .bind(ann_id)
            .fetch_one(app.app.pool())
            .await
            .unwrap();
    assert_eq!(key, (None, true));
    // No object key names her.
    for key in object_keys(&root) {
        for needle in needles {
            assert!(!key.contains(needle), "{key}");
        }
    }
    // The whole EVENTS stream, read by a stock consumer.
    let stream = app.app.services.topology.namespace.events_stream();
    let published = raw_stream_payloads(&app.app, &stream).await;
    assert!(
        published.iter().any(|m| m.contains("UserErased")),
        "the erasure is published"
    );
    for message in &published {
        for needle in needles {
            assert!(!message.contains(needle), "on EVENTS: {message}");
        }
    }
    // The audit trail, as the operator's CLI prints it.
    let shown = jukebox(&app, &["events", "show", "user", &ann_id.to_string()]).await;
    assert!(
        shown.contains("UserSignedUp") && shown.contains("UserErased"),
        "{shown}"
    );
    assert!(shown.contains("\"erased\""), "{shown}");
    for needle in needles {
        assert!(!shown.contains(needle), "{shown}");
    }
    let shown = jukebox(&app, &["events", "show", "track", &own]).await;
    assert!(shown.contains("TrackDiscarded"), "{shown}");

    // A rebuild of every read model from the log equals the live models.
    let live = read_models(&app).await;
    jukebox(&app, &["projections", "rebuild", "--all"]).await;
    let rebuilt = read_models(&app).await;
    for ((name, live), (_, rebuilt)) in live.iter().zip(&rebuilt) {
        assert_eq!(live, rebuilt, "read model {name}: live and rebuilt differ");
    }

    // The rebuild counts Bob alone too.
    assert_eq!(
        holders(&app, &admin, &shared).await,
        1,
        "Bob alone, rebuilt"
    );

    // The address signs up again, as a new person.
    let again = app.user(ANN).await;
    let new_id = app.user_id(&again).await;
    assert_ne!(new_id, ann_id);
    assert!(app.library(&again).await.is_empty());
    // The operator's CLI finds the address's holder now, not its first one.
    let granted = jukebox(&app, &["admin", "grant", ANN]).await;
    assert!(granted.contains(&new_id.to_string()), "{granted}");
    let me: Value = app
        .app
        .http
        .get(app.app.api("/auth/me"))
        .bearer_auth(&again)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], json!(["admin"]), "{me}");
    app.cleanup().await;
}

/// The race ADR 42 closes: Bob's upload finds the track stored, a discard lands before his
/// job completes (the test holds the source's lock, as the reactor does while it
/// discards, and sends `DiscardTrack` itself), and then `CompleteImport` is refused
/// (`track_not_stored`) and the job stores the file again instead of completing into a
/// library entry whose objects are gone.
#[tokio::test]
async fn a_completion_racing_a_discard_stores_the_track_again() {
    let app = import_app(Options {
        s3: true,
        extra: vec![(
            "STREAM_SIGNING_SECRET",
            "stream-secret-for-tests-0123456789".into(),
        )],
        ..Default::default()
    })
    .await;
    let ann = app.user(ANN).await;
    let bob = app.user("bob@example.com").await;
    let own = upload(&app, &ann, "raced.mp3").await;
    let track_id = jukebox_domain::TrackId::parse(&own).unwrap();

    // The source's lock, held by the test.
    let lock = SourceLock::acquire(app.app.pool(), &track_id, || {})
        .await
        .unwrap();
    let job_id = start_upload(&app, &bob, &app.media_dir.path().join("raced.mp3")).await;
    // Bob's job found the track stored and waits for its shared hold on the lock.
    eventually(
        "the job waits to complete from the stored track",
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND query LIKE 'SELECT pg_try_advisory_lock_shared%'",
            )
            .fetch_one(app.app.pool())
            .await
            .unwrap();
            waiting > 0
        },
    )
    .await;
    let bus = app.app.bus().await;
    let discard = jukebox_nats::CommandEnvelope {
        command_id: uuid::Uuid::now_v7(),
        correlation_id: uuid::Uuid::now_v7(),
        issued_by: None,
        issued_at: time::OffsetDateTime::now_utc(),
        command: jukebox_domain::Command::DiscardTrack { track_id },
    };
    let outcome = bus
        .send(&discard, std::time::Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, jukebox_nats::OutcomeStatus::Committed);
    lock.release().await;

    let job = app.finished_job(&bob, &job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["track_id"], own.as_str());
    // Its first completion was refused, typed; the file was stored again.
    let complete = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("jukebox:import:{job_id}:complete").as_bytes(),
    );
    let refused: Value =
        sqlx::query_scalar("SELECT outcome FROM command_outcomes WHERE command_id = $1")
            .bind(complete)
            .fetch_one(app.app.pool())
            .await
            .unwrap();
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert_eq!(refused["error"]["code"], "track_not_stored", "{refused}");
    assert_eq!(
        track_history(&app, &own).await,
        ["TrackStored", "TrackDiscarded", "TrackStored"]
    );
    assert!(stream(&app, &bob, &own).await > 1_000);
    app.cleanup().await;
}
