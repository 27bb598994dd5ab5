//! The library read model (issue 5): `GET /library` pages, filters and sorts one user's
//! tracks; `DELETE /library/{id}` takes one out. Tracks come in through the commands the
//! downloader sends (`RequestImport`, `StoreTrack`, `CompleteImport`) on the real bus, so
//! these tests need no media tools.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jukebox::app::Role;
use jukebox_domain::{Command, SourceRef, StoredCover, StoredTrack, TrackId};
use jukebox_nats::{CommandBus, CommandEnvelope, OutcomeStatus};
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::{error_of, import_app, ImportApp, Options};
use jukebox_test_support::{TestApp, POSITION};

/// Everything but the downloader: the test plays its part.
pub const ROLES: &[Role] = &[
    Role::Api,
    Role::Processor,
    Role::Relay,
    Role::Projector,
    Role::Reactor,
];

/// Sends commands as the downloader would, noting each outcome's position in the app, so
/// the test's reads (`get`) pass it.
pub struct Seeder<'a> {
    bus: CommandBus,
    app: &'a TestApp,
}

impl<'a> Seeder<'a> {
    pub async fn new(app: &'a ImportApp) -> Self {
        let bus = app.app.bus().await;
        Self { bus, app: &app.app }
    }

    pub async fn send(&self, user: Option<Uuid>, command: Command) {
        let envelope = CommandEnvelope {
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            issued_by: user,
            issued_at: OffsetDateTime::now_utc(),
            command,
        };
        let outcome = self
            .bus
            .send(&envelope, Duration::from_secs(10))
            .await
            .unwrap()
            .expect("an outcome");
        assert_eq!(outcome.status, OutcomeStatus::Committed, "{outcome:?}");
        self.app.note(
            outcome
                .position
                .as_deref()
                .expect("a committed command's position"),
        );
    }

    /// Imports video `video_id` for `user` as the downloader would: request, store (once
    /// per track), complete. Returns the track id.
    pub async fn import(
        &self,
        user: Uuid,
        video_id: &str,
        title: &str,
        artist: Option<&str>,
        seconds: u64,
    ) -> String {
        let track_id = TrackId::parse(&format!("yt:{video_id}")).unwrap();
        let track = StoredTrack {
            track_id: track_id.clone(),
            object_key: format!("tracks/{track_id}.m4a"),
            size: 1_000 + seconds * 32_000,
            duration_ms: seconds * 1_000,
            codec: "aac".into(),
            bitrate: 256_000,
            title: Some(title.into()),
            artist: artist.map(Into::into),
            album: None,
            artists: Vec::new(),
            year: None,
            has_cover: seconds.is_multiple_of(2),
            origin: format!("https://www.youtube.com/watch?v={video_id}"),
            // Some with a cover object, so rebuilds carry those columns too.
            cover: seconds.is_multiple_of(2).then(|| StoredCover {
                object_key: format!("tracks/{track_id}.jpg"),
                size: 20_000 + seconds,
                content_type: "image/jpeg".into(),
            }),
        };
        self.import_stored(user, track).await
    }

    /// Imports `track` (a `yt:` one) for `user` as the downloader would: request, store
    /// (once per track), complete. Returns the track id.
    pub async fn import_stored(&self, user: Uuid, track: StoredTrack) -> String {
        let job_id = Uuid::now_v7();
        let track_id = track.track_id.clone();
        let video_id = track_id.as_str().strip_prefix("yt:").expect("a yt: track");
        let source = SourceRef::video(video_id).unwrap();
        self.send(
            Some(user),
            Command::RequestImport {
                job_id,
                user_id: user,
                source,
            },
        )
        .await;
        // A second import of a stored source skips StoreTrack, as the downloader does.
        let envelope = CommandEnvelope {
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            issued_by: None,
            issued_at: OffsetDateTime::now_utc(),
            command: Command::StoreTrack { track },
        };
        let stored = self
            .bus
            .send(&envelope, Duration::from_secs(10))
            .await
            .unwrap()
            .expect("an outcome");
        if let Some(position) = &stored.position {
            self.app.note(position);
        }
        self.send(
            Some(user),
            Command::CompleteImport {
                job_id,
                user_id: user,
                track_id: track_id.clone(),
            },
        )
        .await;
        track_id.to_string()
    }
}

/// A video id (11 characters) from a number.
pub fn video(n: usize) -> String {
    format!("vid{n:08}")
}

/// `GET /library?{query}`, passing the latest position the test's writes had.
pub async fn get(app: &ImportApp, token: &str, query: &str) -> reqwest::Response {
    let mut request = app
        .app
        .http
        .get(app.app.api(&format!("/library?{query}")))
        .bearer_auth(token);
    if let Some(after) = app.app.try_latest() {
        request = request.header(POSITION, after);
    }
    request.send().await.unwrap()
}

pub async fn page(app: &ImportApp, token: &str, query: &str) -> (Vec<Value>, Option<String>) {
    let response = get(app, token, query).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let body: Value = response.json().await.unwrap();
    (
        body["items"].as_array().unwrap().clone(),
        body["next_cursor"].as_str().map(str::to_owned),
    )
}

pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["track_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of a listing, following the cursor.
async fn all_pages(app: &ImportApp, token: &str, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let (items, next) = page(app, token, &q).await;
        seen.extend(ids(&items));
        match next {
            Some(next) => cursor = Some(next),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn each_user_sees_only_their_library_filtered_and_sorted() {
    let app = import_app(Options {
        roles: ROLES,
        ..Default::default()
    })
    .await;
    let seeder = Seeder::new(&app).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (alice_id, bob_id) = (app.user_id(&alice).await, app.user_id(&bob).await);
    let songs = [
        ("Yellow Submarine", Some("The Beatles"), 160),
        ("bohemian Rhapsody", Some("Queen"), 355),
        ("Alpha 100%", None, 61),
        ("Come Together", Some("the beatles"), 259),
        ("Zebra", Some("Beach House"), 280),
    ];
    let mut alice_tracks = Vec::new();
    for (i, (title, artist, seconds)) in songs.iter().enumerate() {
        alice_tracks.push(
            seeder
                .import(alice_id, &video(i), title, *artist, *seconds)
                .await,
        );
    }
    // Bob shares one stored track with Alice and has one of his own.
    let shared = seeder.import(bob_id, &video(1), "ignored", None, 1).await;
    let own = seeder
        .import(bob_id, &video(9), "Bob's own", Some("Bob"), 99)
        .await;

    // Newest first by default; the copied tags are there.
    let (items, next) = page(&app, &alice, "").await;
    assert_eq!(next, None);
    let mut newest_first = alice_tracks.clone();
    newest_first.reverse();
    assert_eq!(ids(&items), newest_first);
    let zebra = &items[0];
    assert_eq!(zebra["title"], "Zebra");
    assert_eq!(zebra["artist"], "Beach House");
    assert_eq!(zebra["duration_ms"], 280_000);
    assert_eq!(zebra["has_cover"], true);
    assert!(OffsetDateTime::parse(
        zebra["added_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    let bobs = ids(&page(&app, &bob, "sort=title").await.0);
    assert_eq!(bobs, vec![own.clone(), shared.clone()]);
    assert!(!bobs.iter().any(|t| t == &alice_tracks[0]));

    let t = |i: usize| alice_tracks[i].clone();
    assert_eq!(
        ids(&page(&app, &alice, "sort=title").await.0),
        [t(2), t(1), t(3), t(0), t(4)],
        "case-insensitive title order"
    );
    assert_eq!(
        ids(&page(&app, &alice, "sort=duration&order=desc").await.0),
        [t(1), t(4), t(3), t(0), t(2)]
    );
    // Artist: missing sorts first; equal artists fall back to the track id.
    assert_eq!(
        ids(&page(&app, &alice, "sort=artist").await.0),
        [t(2), t(4), t(1), t(0), t(3)]
    );
    let filtered: HashSet<String> = ids(&page(&app, &alice, "q=BEATLES").await.0)
        .into_iter()
        .collect();
    assert_eq!(filtered, HashSet::from([t(0), t(3)]));
    assert_eq!(ids(&page(&app, &alice, "q=zeb").await.0), [t(4)]);
    // Wildcards are literal: "%" matches only the title that has one.
    assert_eq!(ids(&page(&app, &alice, "q=%25").await.0), [t(2)]);
    assert!(page(&app, &alice, "q=nothing+like+this").await.0.is_empty());

    // Bad input: 4xx with the error shape, never 500.
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=1000", "invalid_limit"),
        ("sort=size", "invalid_sort"),
        ("order=sideways", "invalid_order"),
        ("cursor=garbage", "invalid_cursor"),
    ] {
        let (status, got, message) = error_of(get(&app, &alice, query).await).await;
        assert_eq!(
            (status, got.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{query}"
        );
        assert!(!message.is_empty());
    }
    let (_, title_cursor) = page(&app, &alice, "sort=title&limit=2").await;
    let (status, code, _) = error_of(
        get(
            &app,
            &alice,
            &format!("sort=artist&cursor={}", title_cursor.unwrap()),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_cursor")
    );
    let anonymous = app
        .app
        .http
        .get(app.app.api("/library"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Removing leaves Alice's list, not Bob's.
    let removed = app
        .app
        .http
        .delete(app.app.api(&format!("/library/{}", shared)))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK);
    app.app.position_of(&removed);
    assert!(!ids(&page(&app, &alice, "").await.0).contains(&shared));
    assert!(ids(&page(&app, &bob, "").await.0).contains(&shared));

    // Alice's library is not empty, and nothing of it is answered once she is disabled:
    // the access check gates the page's own statement.
    seeder
        .send(None, Command::DisableUser { user_id: alice_id })
        .await;
    let (status, code, _) = error_of(get(&app, &alice, "sort=title").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "account_disabled")
    );
    assert_eq!(get(&app, &bob, "").await.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn paging_never_skips_or_repeats_a_row_while_new_rows_arrive() {
    let app = import_app(Options {
        roles: ROLES,
        ..Default::default()
    })
    .await;
    let seeder = Seeder::new(&app).await;
    let alice = app.user("alice@example.com").await;
    let alice_id = app.user_id(&alice).await;
    let mut original = Vec::new();
    for i in 0..12 {
        // Titles repeat, so the track id must break ties.
        let title = format!("song {}", i % 4);
        original.push(
            seeder
                .import(alice_id, &video(i), &title, Some("x"), 30 + (i as u64 % 3))
                .await,
        );
    }

    let mut next_video = 100;
    for query in [
        "sort=title&limit=5",
        "sort=added&limit=5",
        "sort=duration&order=desc&limit=5",
        "sort=artist&order=asc&limit=5",
    ] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("{query}&cursor={c}"),
                None => query.to_owned(),
            };
            let (items, next) = page(&app, &alice, &q).await;
            seen.extend(ids(&items));
            // New rows land between pages: before and after the cursor in every sort.
            for title in ["a early", "song 2", "zz late"] {
                seeder
                    .import(alice_id, &video(next_video), title, Some("x"), 31)
                    .await;
                next_video += 1;
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut counts: HashMap<&String, usize> = HashMap::new();
        for id in &seen {
            *counts.entry(id).or_default() += 1;
        }
        assert!(
            counts.values().all(|&n| n == 1),
            "{query}: a row came twice: {counts:?}"
        );
        for id in &original {
            assert!(counts.contains_key(id), "{query}: {id} was skipped");
        }
    }
    // Without concurrent writes, every row exactly once, in the sort's order.
    let everything = all_pages(&app, &alice, "sort=title&limit=7").await;
    let total = 12 + next_video - 100;
    assert_eq!(everything.len(), total);
    assert_eq!(everything.iter().collect::<HashSet<_>>().len(), total);
    app.cleanup().await;
}

/// A read model's full contents, in key order.
async fn contents(app: &ImportApp, name: &str) -> Vec<String> {
    let key: String = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = $1::regclass AND i.indisprimary",
    )
    .bind(name)
    .fetch_one(app.app.pool())
    .await
    .unwrap();
    sqlx::query_scalar(&format!(
        "SELECT row_to_json(t)::text FROM {name} t ORDER BY {key}"
    ))
    .fetch_all(app.app.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn every_projection_rebuilds_to_its_live_contents_while_reads_answer() {
    let app = import_app(Options {
        roles: ROLES,
        ..Default::default()
    })
    .await;
    let seeder = Seeder::new(&app).await;
    // Mixed commands: accounts, sign-ins, imports (one shared), a removal, a failure.
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (alice_id, bob_id) = (app.user_id(&alice).await, app.user_id(&bob).await);
    for i in 0..6 {
        seeder
            .import(
                alice_id,
                &video(i),
                &format!("t{i}"),
                Some("a"),
                10 + i as u64,
            )
            .await;
    }
    let shared = seeder.import(bob_id, &video(0), "t0", None, 10).await;
    let removed = app
        .app
        .http
        .delete(app.app.api(&format!("/library/{}", video_track(1))))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK);
    app.app.position_of(&removed);
    // A correction moves one of Alice's tracks to another album and artist.
    let corrected = app
        .app
        .http
        .patch(app.app.api(&format!("/library/{}", video_track(2))))
        .bearer_auth(&alice)
        .json(&serde_json::json!({"artists": ["b", "c"], "album": "LP", "year": 1990}))
        .send()
        .await
        .unwrap();
    assert_eq!(corrected.status(), StatusCode::OK);
    app.app.position_of(&corrected);
    // Stars (one taken back) and plays (one sent twice): issue 19's read models.
    for (star, track) in [(true, 0), (true, 3), (false, 3)] {
        let url = app
            .app
            .api(&format!("/me/favourites/track/{}", video_track(track)));
        let request = if star {
            app.app.http.put(url)
        } else {
            app.app.http.delete(url)
        };
        let response = request
            .bearer_auth(&alice)
            .header("jukebox-position", app.app.latest())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        app.app.position_of(&response);
    }
    for at in [
        "2026-01-01T10:00:00Z",
        "2026-01-01T11:00:00Z",
        "2026-01-01T11:00:00Z",
    ] {
        let response = app
            .app
            .http
            .post(app.app.api("/me/plays"))
            .bearer_auth(&alice)
            .header("jukebox-position", app.app.latest())
            .json(&serde_json::json!({"track_id": video_track(0), "played_at": at}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        app.app.saw(&response);
    }
    // Saved play queues (ADR 28): Alice saves twice (the later one is kept), Bob once.
    for (token, ids, at) in [
        (&alice, vec![video_track(2), video_track(3)], 5_000),
        (&alice, vec![video_track(4), video_track(2)], 9_000),
        (&bob, vec![video_track(0)], 0),
    ] {
        let saved = app
            .app
            .http
            .put(app.app.api("/me/play-queue"))
            .bearer_auth(token)
            .json(
                &serde_json::json!({"track_ids": ids, "current_track": ids[0], "position_ms": at}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), StatusCode::OK);
        app.app.position_of(&saved);
    }
    let job_id = Uuid::now_v7();
    seeder
        .send(
            Some(bob_id),
            Command::RequestImport {
                job_id,
                user_id: bob_id,
                source: SourceRef::video(&video(50)).unwrap(),
            },
        )
        .await;
    seeder
        .send(
            None,
            Command::FailImport {
                job_id,
                code: "unavailable".into(),
                reason: "gone".into(),
            },
        )
        .await;
    // Playlists (issue 19): a bulk create, a move, a removal, a deleted one.
    let track = |n: usize| jukebox_domain::TrackId::parse(&video_track(n)).unwrap();
    let (kept, gone) = (Uuid::now_v7(), Uuid::now_v7());
    for (playlist_id, name) in [(kept, "Kept"), (gone, "Gone")] {
        let tracks = vec![track(0), track(2), track(3), track(0)];
        seeder
            .send(
                Some(alice_id),
                Command::CreatePlaylist {
                    playlist_id,
                    user_id: alice_id,
                    name: name.into(),
                    description: String::new(),
                    public: true,
                    tracks,
                },
            )
            .await;
    }
    for command in [
        Command::MovePlaylistEntry {
            playlist_id: kept,
            user_id: alice_id,
            entry: 4,
            to: 0,
        },
        Command::EditPlaylist {
            playlist_id: kept,
            user_id: alice_id,
            edit: jukebox_domain::playlist::Edit {
                remove_positions: vec![2],
                ..Default::default()
            },
        },
        Command::DeletePlaylist {
            playlist_id: gone,
            user_id: alice_id,
        },
    ] {
        seeder.send(Some(alice_id), command).await;
    }
    // `contents` reads every table directly: every model has applied the last write.
    app.app.applied_latest(jukebox_projections::MODELS).await;

    let mut live = HashMap::new();
    for name in jukebox_projections::ALL {
        live.insert(*name, contents(&app, name).await);
    }
    assert_eq!(ids(&page(&app, &alice, "").await.0).len(), 5);
    // Cover objects are part of what is rebuilt.
    assert!(live["tracks"]
        .iter()
        .any(|r| r.contains(r#""cover_key":"tracks/"#)));
    assert!(live["library"]
        .iter()
        .any(|r| r.contains(r#""cover_stored":true"#)));
    assert!(live["music"]
        .iter()
        .any(|r| r.contains(r#""kind":"album","#) && r.contains(r#""name":"LP","#)));
    assert_eq!(live["favourites"].len(), 1, "{:?}", live["favourites"]);
    assert_eq!(live["plays"].len(), 1, "{:?}", live["plays"]);
    assert!(
        live["plays"][0].contains(r#""play_count":2"#),
        "{:?}",
        live["plays"]
    );
    assert_eq!(live["play_queues"].len(), 2, "{:?}", live["play_queues"]);
    assert!(live["play_queues"]
        .iter()
        .any(|r| r.contains(r#""position_ms":9000"#)));

    // The marks ride on Alice's entries: track 0 starred and played twice, track 3's
    // star taken back.
    let (items, _) = page(&app, &alice, "sort=title").await;
    let marks = |n: usize| {
        let item = items
            .iter()
            .find(|i| i["track_id"] == video_track(n))
            .unwrap_or_else(|| panic!("track {n} in {items:?}"));
        (
            item["starred"].is_string(),
            item["play_count"].clone(),
            item["last_played"].clone(),
        )
    };
    assert_eq!(marks(0), (true, json!(2), json!("2026-01-01T11:00:00Z")));
    assert_eq!(marks(3), (false, json!(0), Value::Null));

    // Migration 0030 gives a library from before it what the fold gives (ADR 49): the
    // marks columns and rows taken away, the migration run again, the table as it was.
    sqlx::raw_sql(
        "DELETE FROM library WHERE entry_id LIKE 'marks/%';
         DROP INDEX library_owner;
         ALTER TABLE library DROP COLUMN owner_id, DROP COLUMN starred_at,
                             DROP COLUMN play_count, DROP COLUMN last_played;
         DELETE FROM _sqlx_migrations WHERE version = 30;",
    )
    .execute(app.app.pool())
    .await
    .unwrap();
    jukebox::ops::migrate(&app.app.config).await.unwrap();
    assert_eq!(
        contents(&app, "library").await,
        live["library"],
        "library after migration 0030"
    );

    // Alice keeps reading her library (and Bob his) through every rebuild and swap.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (http, url, stop) = (
            app.app.http.clone(),
            app.app.api("/library?sort=title"),
            stop.clone(),
        );
        let alice = alice.clone();
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = http.get(&url).bearer_auth(&alice).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["items"].as_array().unwrap().len(), 5, "{body}");
                reads += 1;
            }
            reads
        })
    };
    for name in jukebox_projections::ALL {
        let report = jukebox::ops::rebuild_projection(app.app.pool(), name, false)
            .await
            .unwrap();
        assert!(report.events > 0, "{name}");
        assert_eq!(
            contents(&app, name).await,
            live[name],
            "{name} after rebuild"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);

    // Events after the swaps are applied once by the live consumers.
    seeder.import(bob_id, &video(7), "late", None, 5).await;
    app.app.applied_latest(jukebox_projections::MODELS).await;
    assert_eq!(ids(&page(&app, &bob, "").await.0).len(), 2);
    assert!(ids(&page(&app, &bob, "").await.0).contains(&shared));
    for name in jukebox_projections::ALL {
        let before = contents(&app, name).await;
        jukebox::ops::rebuild_projection(app.app.pool(), name, false)
            .await
            .unwrap();
        assert_eq!(
            contents(&app, name).await,
            before,
            "{name} after new events"
        );
    }
    app.cleanup().await;
}

fn video_track(n: usize) -> String {
    format!("yt:{}", video(n))
}
