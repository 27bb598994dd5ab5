//! The web app end to end in real headless Chromium, driven over WebDriver (chromedriver),
//! against the whole system: Postgres, NATS JetStream, yt-dlp and ffmpeg importing a tone
//! from a loopback media server, the stream role serving it, and a fake YouTube Data API
//! for search. One browser session visits the app at `http://127.0.0.1:<port>` and at
//! `http://localhost:<port>` (the origins `jukebox dev` prints and the default base URL
//! names), at 1280x800 and 390x844, and fails on any console error it did not provoke.
//! Screenshots go to `target/screenshots/`. One story, told in order by the modules
//! below; `Story` is what they share.

mod account;
mod admin;
mod checks;
mod collections;
mod favourites;
mod jobs;
mod listener;
mod music;
mod offline;
mod oidc;
mod playback;
mod playlists;
mod queue;
mod subscriptions;
mod webdriver;

use std::net::SocketAddr;
use std::time::Duration;

use jukebox::app::{self, Role, RoleOptions};
use jukebox::config::Config;
use jukebox_nats::FailPoints;
pub use jukebox_test_support::free_addr;
use jukebox_test_support::imports::{import_app, tone, ImportApp, Options};
// The chapters say `crate::helpers` and `crate::support`.
use jukebox_test_support::imports as helpers;

use webdriver::{Browser, Driver};

pub const USER: &str = "listener@example.com";
pub const ADMIN: &str = "admin@example.com";
/// The tags of the imported tone (`imports::tone`).
pub const TITLE: &str = "Loopback Sunrise";
pub const ARTIST: &str = "The Test Tones";
/// Stream links live this long here, so a pause outlives one.
pub const STREAM_TTL_S: u64 = 8;
/// Console errors the run provokes on purpose: the fake YouTube's thumbnails point at a
/// host that does not exist, and a step damages a cover link's signature.
pub const PROVOKED: &[&str] = &["i.ytimg.test", "s=AAAA"];

/// What the story's chapters share: one browser, one system, its two origins.
pub struct Story {
    pub browser: Browser,
    pub system: ImportApp,
    /// `http://127.0.0.1:<port>`, the address `jukebox dev` prints.
    pub local: String,
    /// `http://localhost:<port>`, the one `PUBLIC_BASE_URL` names.
    pub named: String,
    /// The stream role's address.
    pub stream: SocketAddr,
    /// A 40 s tone with tags and a cover, on the loopback media server.
    pub media_url: String,
    /// A 404 on the same server.
    pub missing_url: String,
}

pub fn audio_time() -> &'static str {
    "return document.getElementById('audio').currentTime;"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_and_an_admin_use_the_web_app_in_chromium() {
    // No network for https here (the media and the fake APIs are plain http on loopback):
    // yt-dlp's YouTube search, the one https client, meets a closed port. Set before
    // anything starts a child process.
    let nowhere = free_addr();
    std::env::set_var("HTTPS_PROXY", format!("http://{nowhere}"));
    std::env::set_var("https_proxy", format!("http://{nowhere}"));

    let (web, stream) = (free_addr(), free_addr());
    // Mail goes to an SMTP server on loopback, where the reset chapter reads it.
    let (smtp_url, inbox) = jukebox_test_support::smtp::smtp_server();
    let mut system = import_app(Options {
        roles: &[],
        youtube: true,
        extra: vec![
            (
                "STREAM_SIGNING_SECRET",
                "stream-secret-for-tests-only-0123456789".into(),
            ),
            ("STREAM_URL_TTL_S", STREAM_TTL_S.to_string()),
            // Long enough to read "retrying ... next in 2 s" (helpers say 200 ms).
            ("IMPORT_RETRY_BASE_MS", "2000".into()),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
            ("EMAIL_VERIFY_REQUIRED", "1".into()),
            ("ADMIN_BOOTSTRAP_EMAIL", ADMIN.into()),
            ("SMTP_URL", smtp_url),
            ("MAIL_FROM", "Jukebox <jukebox@mail.test>".into()),
        ],
        ..Default::default()
    })
    .await;
    // The origins the configuration accepts by default for this web port (the shared
    // test support pins ALLOWED_ORIGINS; this is what a deployment without it gets).
    let port = web.port().to_string();
    let defaults = Config::from_lookup(|name| (name == "WEB_PORT").then(|| port.clone())).unwrap();
    let local = format!("http://127.0.0.1:{port}");
    let named = format!("http://localhost:{port}");
    assert!(
        defaults.allowed_origins.contains(&local),
        "{:?}",
        defaults.allowed_origins
    );
    assert!(
        defaults.allowed_origins.contains(&named),
        "{:?}",
        defaults.allowed_origins
    );
    system.app.config.allowed_origins = defaults.allowed_origins.clone();
    system.app.config.public_base_url = named.clone();
    system.app.config.public_stream_base_url = format!("http://{stream}");
    let mut options = RoleOptions::from_config(&system.app.config, &[Role::All]).unwrap();
    options.api = "127.0.0.1:0".parse().unwrap();
    options.web = web;
    options.stream = stream;
    options.fail_points = FailPoints::default();
    options.ack_wait = Duration::from_secs(2);
    system.app.running = Some(app::start(&system.app.services, options).await.unwrap());
    let media_url = system.tone("sunrise.mp3", &tone(40));
    let missing_url = system.media.url("missing.mp3");
    let origin = local.clone();

    // The page's policy: own files only, audio from the stream role.
    let page = system
        .app
        .http
        .get(format!("{origin}/"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in [
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        &format!("media-src 'self' http://{stream}"),
        &format!("img-src 'self' http://{stream} "),
    ] {
        assert!(csp.contains(part), "CSP {csp} lacks {part}");
    }

    let driver = Driver::start().await;
    let browser = Browser::open(&driver, 1280, 800).await;

    let story = Story {
        browser,
        system,
        local,
        named,
        stream,
        media_url,
        missing_url,
    };
    let job_id = listener::sign_up_search_import(&story).await;
    let track_id = playback::library_and_playback(&story).await;
    music::artists_albums_and_edit_details(&story).await;
    favourites::star_a_track_and_find_it_in_favourites(&story).await;
    jobs::views_removal_uploads_retries(&story, &job_id).await;
    queue::shuffle_queue_and_resume(&story).await;
    playlists::create_reorder_share_import_and_play(&story).await;
    collections::import_a_feed_whole(&story).await;
    subscriptions::subscribe_back_off_pause_and_unsubscribe(&story).await;
    admin::sessions_and_admin(&story, &job_id, &track_id).await;
    offline::offline_search_and_refused_origin(&story).await;
    account::reset_and_devices(&story, &inbox).await;

    let Story {
        browser, system, ..
    } = story;
    browser.close().await;
    drop(driver);
    system.cleanup().await;
}
