//! Bulk import benchmark (issue 20). Not a test: it prints figures for
//! `docs/benchmarks.md`. Run with `cargo bench --bench bulk_import` (release build),
//! against the Postgres and NATS at TEST_DATABASE_ADMIN_URL / TEST_NATS_URL, with yt-dlp
//! installed (it lists the feed).
//!
//! A feed of N (default 200, `--entries N`) already-stored sources: every entry's track is
//! stored beforehand (`StoreTrack` on the bus, never fetched), so the import is the
//! system's own work: the listing, one `ImportCollection` (collection, playlist, N jobs),
//! and N jobs the downloader completes without running any media tool. Timed from
//! `POST /imports/collections/confirm` until the progress says nothing remains and the
//! playlist lists all N; reported as time and entries/s (target >= 50/s).

use std::time::{Duration, Instant};

use jukebox_domain::{Command, StoredTrack, TrackId};
use jukebox_test_support::bench::{arg, send, Server};
use serde_json::{json, Value};

/// Serves one RSS feed of `urls` at `/feed.xml`.
async fn feed_server(urls: Vec<String>) -> anyhow::Result<String> {
    let items: String = urls
        .iter()
        .enumerate()
        .map(|(n, url)| {
            format!(
                "<item><title>Stored {n}</title><guid>s{n}</guid>\
                 <enclosure url=\"{url}\" type=\"audio/mpeg\" length=\"1\"/></item>"
            )
        })
        .collect();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
         <title>Stored tones</title><link>http://127.0.0.1/</link><description>d</description>\
         {items}</channel></rss>"
    );
    let app = axum::Router::new().route(
        "/feed.xml",
        axum::routing::get(move || {
            let xml = xml.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/rss+xml")],
                    xml,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("{base}/feed.xml"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let entries = arg("--entries", 200);
    let work = tempfile::tempdir()?;
    let vars = [
        ("COOKIE_SECURE", "0".into()),
        ("IMPORT_ALLOW_PRIVATE_NETWORKS", "1".into()),
        ("IMPORT_WORK_DIR", work.path().display().to_string()),
        ("DOWNLOAD_CONCURRENCY", "2".into()),
    ];
    let mut server = Server::start(
        env!("CARGO_BIN_EXE_jukebox"),
        "bulk_import",
        &["api", "processor", "relay", "projector"],
        &vars,
    )
    .await?;
    if let Err(e) = server.spawn(&["downloader"]) {
        server.stop().await?;
        return Err(e);
    }
    let result = run(&server, entries).await;
    server.stop().await?;
    result
}

async fn run(server: &Server, entries: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (user_id, token) = server.account(&http).await?;
    // Stored sources: tracks named as the downloader names a direct link, never fetched.
    let urls: Vec<String> = (0..entries)
        .map(|n| format!("http://127.0.0.1:9/stored-{n}.mp3"))
        .collect();
    let bus = server.bus().await?;
    for url in &urls {
        let track_id = TrackId::of_direct_link(url);
        let track = StoredTrack {
            object_key: format!("tracks/{track_id}.m4a"),
            track_id,
            size: 1000,
            duration_ms: 1000,
            codec: "aac".into(),
            bitrate: 256_000,
            title: Some("Stored".into()),
            artist: None,
            album: None,
            artists: Vec::new(),
            year: None,
            has_cover: false,
            origin: url.clone(),
            cover: None,
        };
        send(&bus, Command::StoreTrack { track }, user_id).await?;
    }
    let feed = feed_server(urls).await?;

    let started = Instant::now();
    let confirmed: Value = http
        .post(format!("{}/imports/collections/confirm", server.api))
        .bearer_auth(&token)
        .json(&json!({ "url": feed }))
        .send()
        .await?
        .json()
        .await?;
    let answered = started.elapsed();
    let collection = confirmed["collection_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("confirm answered {confirmed}"))?
        .to_owned();
    let playlist = confirmed["playlist_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not done in 10 min"
        );
        let progress: Value = http
            .get(format!("{}/imports/collections/{collection}", server.api))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        if progress["remaining"] == 0 && progress["total"] == entries {
            anyhow::ensure!(progress["failed"] == 0, "failures: {progress}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed: Value = http
        .get(format!("{}/playlists/{playlist}?limit=500", server.api))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let in_playlist = listed["entries"].as_array().map_or(0, Vec::len);
    let took = started.elapsed();
    println!(
        "bulk import of {entries} stored sources: confirm answered in {:.2} s, all done in {:.2} s \
         ({:.1} entries/s); playlist lists {in_playlist}",
        answered.as_secs_f64(),
        took.as_secs_f64(),
        entries as f64 / took.as_secs_f64()
    );
    Ok(())
}
