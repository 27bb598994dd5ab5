//! The web app end to end in real headless Chromium, driven over WebDriver (chromedriver),
//! against the whole system: Postgres, NATS JetStream, yt-dlp and ffmpeg importing a tone
//! from a loopback media server, the stream role serving it, and a fake YouTube Data API
//! for search. One browser session visits the app at `http://127.0.0.1:<port>` and at
//! `http://localhost:<port>` (the origins `jukebox dev` prints and the default base URL
//! names), at 1280x800 and 390x844, and fails on any console error it did not provoke.
//! Screenshots go to `target/screenshots/`. The file is long because it is one story.

mod checks;
#[allow(dead_code)]
#[path = "../import/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../../handlers/tests/pipeline/support.rs"]
mod media;
#[path = "../support/mod.rs"]
mod support;
mod webdriver;

use std::net::SocketAddr;
use std::time::Duration;

use jukebox::app::{self, Role, RoleOptions};
use jukebox::config::Config;
use jukebox_nats::FailPoints;
use serde_json::{json, Value};

use checks::{
    assert_controls_named, assert_fits, assert_no_console_errors, assert_views_fit, session_at,
    shot, shown, SECOND,
};
use helpers::{import_app, tone, Options, PASSWORD};
use webdriver::{Browser, Driver};

const USER: &str = "listener@example.com";
const ADMIN: &str = "admin@example.com";
/// The tags of the imported tone (`helpers::tone`).
const TITLE: &str = "Loopback Sunrise";
const ARTIST: &str = "The Test Tones";
/// Stream links live this long here, so a pause outlives one.
const STREAM_TTL_S: u64 = 8;
/// Console errors the run provokes on purpose: the fake YouTube's thumbnails point at a
/// host that does not exist, and a step damages a cover link's signature.
const PROVOKED: &[&str] = &["i.ytimg.test", "s=AAAA"];

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn audio_time() -> &'static str {
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

    // Sign up, confirm the address, sign in. No session yet: the page asks for none.
    browser.goto(&format!("{origin}/")).await;
    browser
        .wait_for(
            "the sign-in screen",
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
    assert_no_console_errors(&browser, &[], "the first page load").await;
    assert!(!browser
        .exec(&shown("#google-signin"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.screenshot(&shot("01-sign-in")).await;
    browser.click("#tab-signup").await;
    browser.type_into("#signup-email", USER).await;
    browser.type_into("#signup-password", PASSWORD).await;
    browser.click("#signup-submit").await;
    browser.find("#verify-link").await;
    let said = browser.text("#auth-message").await;
    assert!(
        said.contains(&format!("We sent a link to {USER}")),
        "{said}"
    );
    assert!(browser
        .exec(&shown("#resend-submit"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.screenshot(&shot("02-signed-up")).await;
    let link = browser
        .exec(
            "return document.getElementById('verify-link').href;",
            vec![],
        )
        .await;
    browser.click("#verify-link").await;
    browser
        .wait_for(
            "the address confirmed",
            "return document.getElementById('auth-message').innerText.includes('Address confirmed');",
            10 * SECOND,
        )
        .await;
    // The same link again: said plainly, with a way to ask for a new one.
    browser.goto(link.as_str().unwrap()).await;
    let reused = browser
        .wait_for(
            "the used link refused",
            "const m = document.getElementById('auth-message'); \
             return m.dataset.kind === 'error' ? m.innerText : null;",
            10 * SECOND,
        )
        .await;
    assert!(
        reused.as_str().unwrap().contains("already used"),
        "{reused}"
    );
    // Its one console error is the refused link's 400, which the step asked for.
    assert_no_console_errors(&browser, &["/api/auth/verify-email"], "the used link").await;
    assert!(browser
        .exec(&shown("#resend-form"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.resize(390, 844).await;
    assert_fits(&browser, "the sign-in screen with the resend form at 390").await;
    assert_controls_named(&browser, "the sign-in screen").await;
    browser.screenshot(&shot("02-link-used-phone")).await;
    browser.resize(1280, 800).await;
    browser.type_into("#signin-email", USER).await;
    browser.type_into("#signin-password", PASSWORD).await;
    browser.click("#signin-submit").await;
    browser
        .wait_for("the app", &shown("#app-screen"), 15 * SECOND)
        .await;
    assert_eq!(browser.text("#whoami").await, USER);
    assert!(!browser
        .exec(&shown("#admin-link"), vec![])
        .await
        .as_bool()
        .unwrap());
    // The access token is in memory only.
    let stored = browser
        .exec(
            "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage);",
            vec![],
        )
        .await;
    assert!(
        !stored.as_str().unwrap().contains("ey"),
        "a token in web storage: {stored}"
    );

    // A reload restores the session through the refresh cookie.
    browser.goto(&format!("{origin}/")).await;
    browser
        .wait_for(
            "the session restored",
            "return document.body.dataset.ready === 'signed-in';",
            10 * SECOND,
        )
        .await;
    let empty = browser
        .wait_for(
            "the empty library",
            "const m = document.getElementById('library-message'); \
             return m.dataset.kind !== 'error' && m.innerText.includes('empty') ? m.innerText : null;",
            10 * SECOND,
        )
        .await;
    assert!(
        empty.as_str().unwrap().starts_with("Your library is empty"),
        "{empty}"
    );
    browser.screenshot(&shot("03-library-empty")).await;

    // Search (the fake YouTube Data API).
    browser.click("a[data-view=search]").await;
    browser.type_into("#search-q", "loopback").await;
    browser.click("#search-form button[type=submit]").await;
    browser
        .wait_for(
            "two results",
            "return document.querySelectorAll('#search-results li').length === 2;",
            10 * SECOND,
        )
        .await;
    let results = browser.text("#search-results").await;
    assert!(
        results.contains("First Song") && results.contains("3:33"),
        "{results}"
    );
    assert_controls_named(&browser, "search results").await;
    browser.screenshot(&shot("04-search")).await;

    // A link with nothing behind it: the notice that said it started says how it ended,
    // in a sentence, not in the tool's words.
    browser.type_into("#import-url", &missing_url).await;
    browser.click("#url-form button[type=submit]").await;
    let failed = browser
        .wait_for(
            "the failed import's notice",
            "const m = document.getElementById('import-message'); \
             return m.dataset.kind === 'error' ? m.innerText : null;",
            30 * SECOND,
        )
        .await;
    let failed = failed.as_str().unwrap();
    assert!(
        failed.contains("That video or file is not available") && !failed.contains("HTTP Error"),
        "{failed}"
    );
    assert!(
        !browser
            .exec(&shown("#toast"), vec![])
            .await
            .as_bool()
            .unwrap(),
        "a second notice"
    );

    // Import from a link; the jobs panel follows it live until it completes.
    browser.type_into("#import-url", &media_url).await;
    browser.click("#url-form button[type=submit]").await;
    browser.click("a[data-view=jobs]").await;
    browser.find("#jobs-list li.job").await;
    browser.screenshot(&shot("05-job-running")).await;
    let done = browser
        .wait_for(
            "the job completed, labelled by its tags",
            &format!(
                "const j = document.querySelector('#jobs-list li.job[data-status=completed]'); \
                 return j && j.innerText.includes('{TITLE} — {ARTIST}') ? j.innerText : null;"
            ),
            60 * SECOND,
        )
        .await;
    assert!(done.as_str().unwrap().contains("Done"), "{done}");
    let jobs_text = browser.text("#jobs-list").await;
    assert!(!jobs_text.contains("null"), "{jobs_text}");
    let failed_job = browser
        .exec(
            "const j = document.querySelector('#jobs-list li.job[data-status=failed]'); \
             return [j.querySelector('.job-error').innerText, !!j.querySelector('button[aria-label^=Retry]'), \
                     !!j.querySelector('details')];",
            vec![],
        )
        .await;
    assert_eq!(
        failed_job,
        json!([
            "That video or file is not available (removed, private or blocked). Try another link.",
            true,
            false
        ]),
        "the failed job (no admin details for a listener)"
    );
    let job_id = browser
        .exec(
            "return document.querySelector('#jobs-list li.job[data-status=completed]').dataset.jobId;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    browser.screenshot(&shot("06-job-done")).await;
    // Retry starts the same link again as a new job, in place of the failed one.
    let failed_id = browser
        .exec(
            "return document.querySelector('#jobs-list li.job[data-status=failed]').dataset.jobId;",
            vec![],
        )
        .await;
    browser
        .click("#jobs-list li.job[data-status=failed] button[aria-label^=Retry]")
        .await;
    browser
        .wait_for(
            "the retried job failed again, alone",
            &format!(
                "const f = [...document.querySelectorAll('#jobs-list li.job[data-status=failed]')]; \
                 return f.length === 1 && f[0].dataset.jobId !== {failed_id} \
                   && !document.querySelector('li.job[data-job-id=' + JSON.stringify({failed_id}) + ']');"
            ),
            30 * SECOND,
        )
        .await;

    // The track is in the library (GET /api/library), with its tags and duration.
    browser.click("a[data-view=library]").await;
    let row = browser
        .wait_for(
            "the track in the library",
            "const t = document.querySelector('#library-list li.track'); \
             return t && [t.dataset.trackId, t.querySelector('.title').innerText, \
                          t.querySelector('.artist').innerText, \
                          t.querySelector('.track-duration').innerText];",
            20 * SECOND,
        )
        .await;
    let track_id = row[0].as_str().unwrap().to_owned();
    assert!(track_id.starts_with("url:"), "{row}");
    assert_eq!(row[1], TITLE, "{row}");
    assert_eq!(row[2], ARTIST, "{row}");
    assert_eq!(row[3], "0:40", "{row}");
    assert_eq!(
        browser
            .exec(
                "return document.querySelectorAll('#library-list li.track').length;",
                vec![]
            )
            .await,
        1
    );
    let message = browser.text("#library-message").await;
    assert_eq!(message, "", "the library view says: {message}");

    // Its cover (the tone carries a 64x64 picture) comes from the signed cover route of
    // the stream role and decodes in the browser.
    let covers = format!("http://{stream}/api/public/covers/");
    let cover = browser
        .wait_for(
            "the track's cover",
            "const i = document.querySelector('#library-list li.track img.cover'); \
             return i && i.complete && i.naturalWidth > 0 ? [i.currentSrc, i.naturalWidth] : null;",
            10 * SECOND,
        )
        .await;
    assert!(
        cover[0].as_str().unwrap().starts_with(&covers),
        "the row shows {cover}"
    );
    assert_eq!(cover[1], 64, "{cover}");
    browser
        .exec(
            "document.querySelector('#library-list li.track img.cover').dataset.seen = 'yes';",
            vec![],
        )
        .await;
    assert_controls_named(&browser, "the library").await;

    // Filter (q) and sort go to the server.
    browser.type_into("#library-q", "no such song").await;
    browser
        .wait_for(
            "the filter matching nothing",
            "return !document.querySelector('#library-list li.track') \
             && document.getElementById('library-message').innerText.includes('matches');",
            10 * SECOND,
        )
        .await;
    browser.type_into("#library-q", "sunrise").await;
    browser
        .exec(
            "const s = document.getElementById('library-sort'); s.value = 'title'; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await;
    let filtered = format!(
        "const t = document.querySelectorAll('#library-list li.track'); \
         return t.length === 1 && t[0].dataset.trackId === '{track_id}' \
             && document.getElementById('library-message').innerText === '';"
    );
    browser
        .wait_for("the filter matching the track", &filtered, 10 * SECOND)
        .await;
    // The rows were built anew; the cover shown before moved in as it was (not fetched
    // again, so it outlives its signed link).
    let kept = browser
        .exec(
            "const i = document.querySelector('#library-list li.track img.cover'); \
             return [i.dataset.seen || null, i.naturalWidth];",
            vec![],
        )
        .await;
    assert_eq!(kept, json!(["yes", 64]));

    // Play: the audio element's clock advances.
    browser.click("#library-list li.track .cover-button").await;
    let started = browser
        .wait_for(
            "playback",
            "const a = document.getElementById('audio'); return a.currentTime > 0.3 && !a.paused ? a.currentTime : 0;",
            20 * SECOND,
        )
        .await
        .as_f64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = browser.exec(audio_time(), vec![]).await.as_f64().unwrap();
    assert!(later > started + 0.5, "currentTime {started} -> {later}");
    let source = browser
        .exec(
            "return document.getElementById('audio').currentSrc;",
            vec![],
        )
        .await;
    assert!(
        source
            .as_str()
            .unwrap()
            .starts_with(&format!("http://{stream}/api/public/stream/")),
        "{source}"
    );
    let label = browser
        .exec(
            "return document.getElementById('playpause').getAttribute('aria-label');",
            vec![],
        )
        .await;
    assert_eq!(label, "Pause");
    // The player bar shows the cover too (from the player's own signed answer).
    let now_cover = browser
        .wait_for(
            "the cover in the player bar",
            "const i = document.getElementById('now-cover'); \
             return i.complete && i.naturalWidth > 0 && !i.src.endsWith('/icon.svg') ? i.currentSrc : null;",
            10 * SECOND,
        )
        .await;
    assert!(
        now_cover.as_str().unwrap().starts_with(&covers),
        "{now_cover}"
    );
    browser.screenshot(&shot("07-playing")).await;

    // Seek with the seek bar: it jumps.
    let before = browser.exec(audio_time(), vec![]).await.as_f64().unwrap();
    browser
        .exec(
            "const s = document.getElementById('seek'); s.value = String(Number(arguments[0])); \
             s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));",
            vec![json!(before + 20.0)],
        )
        .await;
    let jumped = browser.exec(audio_time(), vec![]).await.as_f64().unwrap();
    assert!(jumped >= before + 19.0, "seek {before} -> {jumped}");
    // And with the keyboard: left arrow goes back 5 s, space pauses.
    browser.keys("body", "\u{E012}").await;
    let back = browser.exec(audio_time(), vec![]).await.as_f64().unwrap();
    assert!(
        back < jumped - 3.0 && back > jumped - 7.0,
        "arrow left {jumped} -> {back}"
    );
    browser.keys("body", " ").await;
    browser
        .wait_for(
            "paused",
            "return document.getElementById('audio').paused;",
            5 * SECOND,
        )
        .await;

    // A cover link that fails (here: a damaged signature, refused by the stream role)
    // gives way to the app icon.
    let fallback = browser
        .exec(
            "const i = document.querySelector('#library-list li.track img.cover'); \
             i.src = i.src.replace(/([?&]s=)[^&]+/, '$1AAAA'); return i.src;",
            vec![],
        )
        .await;
    assert!(fallback.as_str().unwrap().contains("s=AAAA"), "{fallback}");
    browser
        .wait_for(
            "the icon instead of a broken cover",
            "return document.querySelector('#library-list li.track img.cover').src.endsWith('/icon.svg');",
            10 * SECOND,
        )
        .await;

    // Keyboard alone: from a fresh page, Tab reaches the row's play button (the skip
    // link first), and Enter plays the track.
    browser.reload().await;
    browser
        .wait_for(
            "the library after a reload",
            "return document.body.dataset.ready === 'signed-in' \
             && !!document.querySelector('#library-list li.track');",
            10 * SECOND,
        )
        .await;
    let mut stops = Vec::new();
    for _ in 0..30 {
        browser.press("\u{E004}").await;
        let at = browser
            .exec(
                "const e = document.activeElement; \
                 return e.matches('#library-list li.track .cover-button') ? 'row' \
                   : (e.getAttribute('aria-label') || e.textContent.trim() || e.tagName);",
                vec![],
            )
            .await;
        let reached = at == "row";
        stops.push(at);
        if reached {
            break;
        }
    }
    assert_eq!(
        stops.first(),
        Some(&json!("Skip to content")),
        "the first Tab stop: {stops:?}"
    );
    assert_eq!(stops.last(), Some(&json!("row")), "Tab stops: {stops:?}");
    let focused = browser
        .exec(
            "const e = document.activeElement; \
             return [e.getAttribute('aria-label'), e.matches(':focus-visible')];",
            vec![],
        )
        .await;
    assert_eq!(focused, json!([format!("Play {TITLE}"), true]));
    browser.screenshot(&shot("08-keyboard-focus")).await;
    let paused_at = browser.exec(audio_time(), vec![]).await.as_f64().unwrap();
    assert_eq!(paused_at, 0.0, "a reload starts with nothing playing");
    browser.press("\u{E007}").await;
    let started = browser
        .wait_for(
            "playback started from the keyboard",
            "const a = document.getElementById('audio'); return a.currentTime > 0.3 && !a.paused ? a.currentTime : 0;",
            20 * SECOND,
        )
        .await
        .as_f64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let later = browser.exec(audio_time(), vec![]).await.as_f64().unwrap();
    assert!(later > started + 0.3, "currentTime {started} -> {later}");
    // K (with focus still on the row's button) pauses.
    browser.press("k").await;
    browser
        .wait_for(
            "paused from the keyboard",
            "return document.getElementById('audio').paused;",
            5 * SECOND,
        )
        .await;

    // Paused longer than a stream link lives: play goes on from the same place, without
    // a stall and without anything to press but play.
    let paused_at = browser.exec(audio_time(), vec![]).await.as_f64().unwrap();
    let old_link = browser
        .exec(
            "return document.getElementById('audio').currentSrc;",
            vec![],
        )
        .await;
    tokio::time::sleep(Duration::from_secs(STREAM_TTL_S + 1)).await;
    browser.click("#playpause").await;
    let resumed = browser
        .wait_for(
            "playback resumed after the link expired",
            &format!(
                "const a = document.getElementById('audio'); \
                 return !a.paused && !a.error && a.currentTime > {paused_at} + 0.5 ? a.currentTime : 0;"
            ),
            15 * SECOND,
        )
        .await
        .as_f64()
        .unwrap();
    assert!(
        resumed < paused_at + 5.0,
        "did not keep its place: {paused_at} -> {resumed}"
    );
    let new_link = browser
        .exec(
            "return document.getElementById('audio').currentSrc;",
            vec![],
        )
        .await;
    assert_ne!(old_link, new_link, "the expired link was not replaced");
    browser.click("#playpause").await;
    browser
        .wait_for(
            "paused again",
            "return document.getElementById('audio').paused;",
            5 * SECOND,
        )
        .await;
    // And a seek after the next expiry lands where it was asked, and plays from there.
    tokio::time::sleep(Duration::from_secs(STREAM_TTL_S + 1)).await;
    browser
        .exec(
            "const s = document.getElementById('seek'); s.value = '30'; \
             s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await;
    browser
        .wait_for(
            "the seek after the link expired",
            "const a = document.getElementById('audio'); \
             return !a.error && a.readyState >= 1 && Math.abs(a.currentTime - 30) < 1;",
            15 * SECOND,
        )
        .await;
    browser.click("#playpause").await;
    browser
        .wait_for(
            "playback from the seek",
            "const a = document.getElementById('audio'); return !a.paused && a.currentTime > 30.5;",
            15 * SECOND,
        )
        .await;
    assert!(
        !browser
            .exec(&shown("#buffering"), vec![])
            .await
            .as_bool()
            .unwrap(),
        "the buffering indicator stayed on while playing"
    );
    browser.click("#playpause").await;
    assert_no_console_errors(&browser, PROVOKED, "import, library and playback").await;

    // Every view fits a phone and a desktop, and names its controls.
    let views = ["library", "search", "jobs", "queue"];
    browser.resize(390, 844).await;
    browser
        .wait_for(
            "the narrow layout",
            "return window.innerWidth <= 420;",
            5 * SECOND,
        )
        .await;
    assert_views_fit(&browser, &views, "390").await;
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    browser.find("#library-list li.track").await;
    let offscreen = browser
        .exec(
            "return ['#playpause', '#prev', '#next', '#seek', '#now-cover', \
                     '#library-list li.track .cover-button'] \
               .filter((css) => { const r = document.querySelector(css).getBoundingClientRect(); \
                 return !(r.width > 0 && r.left >= 0 && r.right <= window.innerWidth \
                          && r.top >= 0 && r.bottom <= window.innerHeight); });",
            vec![],
        )
        .await;
    assert_eq!(offscreen, json!([]), "off the phone screen");
    browser.screenshot(&shot("08-phone-library")).await;
    browser.resize(1280, 800).await;
    browser
        .wait_for(
            "the wide layout",
            "return window.innerWidth >= 1200;",
            5 * SECOND,
        )
        .await;
    assert_views_fit(&browser, &views, "1280").await;
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    browser.find("#library-list li.track").await;

    // Remove it from the library: it goes, a reload does not bring it back, and its job
    // no longer offers to play it.
    browser.click("#library-list li.track button.danger").await;
    browser.accept_dialog().await;
    let message = browser
        .wait_for(
            "the removal answered",
            "const m = document.getElementById('library-message').innerText; \
             return m.startsWith('Removed') || m.startsWith('Could not remove') ? m : null;",
            10 * SECOND,
        )
        .await;
    assert_eq!(message, format!("Removed “{TITLE}”."));
    assert_eq!(browser.text("#now-title").await, "Nothing playing");
    browser.reload().await;
    browser
        .wait_for(
            "the library reloaded",
            "return document.body.dataset.ready === 'signed-in' \
             && document.getElementById('library-message').innerText.startsWith('Your library is empty');",
            10 * SECOND,
        )
        .await;
    browser.click("a[data-view=jobs]").await;
    let play = browser
        .wait_for(
            "the completed job after a reload",
            &format!(
                "const j = document.querySelector(\"#jobs-list li.job[data-job-id='{job_id}']\"); \
                 return j ? [!!j.querySelector('button[aria-label^=Play]')] : null;"
            ),
            10 * SECOND,
        )
        .await;
    assert_eq!(play, json!([false]), "Play offered for a removed track");
    // Clear finished: both jobs go, and stay gone after a reload.
    browser.click("#jobs-clear").await;
    assert_eq!(
        browser
            .exec(
                "return document.querySelectorAll('#jobs-list li.job').length;",
                vec![]
            )
            .await,
        0
    );
    browser.reload().await;
    browser
        .wait_for(
            "the jobs view after a reload",
            "return document.body.dataset.ready === 'signed-in' \
             && document.getElementById('jobs-message').innerText.startsWith('No imports');",
            10 * SECOND,
        )
        .await;
    browser.screenshot(&shot("09-removed")).await;

    // Several files at once, then one dropped on the page: each becomes an import.
    let files: Vec<String> = [5, 6, 7]
        .iter()
        .map(|n| {
            let name = format!("upload-{n}.mp3");
            system.tone(&name, &tone(*n));
            system.media_dir.path().join(name).display().to_string()
        })
        .collect();
    browser.click("a[data-view=search]").await;
    browser
        .keys("#upload-file", &format!("{}\n{}", files[0], files[1]))
        .await;
    browser.click("#upload-form button[type=submit]").await;
    browser
        .wait_for(
            "two uploads received",
            "return document.getElementById('import-message').innerText \
               .startsWith('2 files received');",
            30 * SECOND,
        )
        .await;
    browser.keys("#upload-file", &files[2]).await;
    browser
        .exec(
            "const input = document.getElementById('upload-file'); \
             const dt = new DataTransfer(); dt.items.add(input.files[0]); input.value = ''; \
             document.body.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true })); \
             document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await;
    browser
        .wait_for(
            "the dropped file received",
            "return document.getElementById('import-message').innerText \
               .startsWith('Upload received');",
            30 * SECOND,
        )
        .await;
    assert!(!browser
        .exec(&shown("#drop-zone"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.click("a[data-view=jobs]").await;
    browser
        .wait_for(
            "three uploads imported",
            "return document.querySelectorAll('#jobs-list li.job[data-status=completed]').length === 3;",
            60 * SECOND,
        )
        .await;

    // A site that keeps answering 503: the job says it is retrying, and when, then
    // gives up with a sentence.
    let down = system.media.flaky_url(1000, "upload-5.mp3");
    browser.click("a[data-view=search]").await;
    browser.type_into("#import-url", &down).await;
    browser.click("#url-form button[type=submit]").await;
    browser.click("a[data-view=jobs]").await;
    let retrying = browser
        .wait_for(
            "the job retrying",
            "const s = [...document.querySelectorAll('#jobs-list li.job .job-stage')] \
               .map((e) => e.innerText).find((t) => t.startsWith('Retrying')); return s || null;",
            30 * SECOND,
        )
        .await;
    let retrying = retrying.as_str().unwrap();
    assert!(
        retrying.starts_with("Retrying (attempt 2 of 3, next in ") && retrying.ends_with(" s)"),
        "{retrying}"
    );
    browser.screenshot(&shot("09-retrying")).await;
    let gave_up = browser
        .wait_for(
            "the job given up",
            "const j = document.querySelector('#jobs-list li.job[data-status=failed]'); \
             return j ? j.querySelector('.job-error').innerText : null;",
            60 * SECOND,
        )
        .await;
    assert_eq!(
        gave_up,
        "Jukebox could not reach the site, even after several tries. Check the link, or try again later."
    );

    // Sign out here; then, at both origins, a reload keeps the session and sign-out ends
    // it on the server.
    browser.click("#signout").await;
    browser
        .wait_for("signed out", &shown("#auth-screen"), 10 * SECOND)
        .await;
    let http = system.app.http.clone();
    session_at(&browser, &http, &local, USER, PASSWORD).await;
    session_at(&browser, &http, &named, USER, PASSWORD).await;
    assert_no_console_errors(&browser, PROVOKED, "the session checks").await;

    // The admin (the bootstrap address, verified) at the other origin sees the user, the
    // song, the job and the job's audit timeline.
    let origin = named.clone();
    let signup: Value = http
        .post(system.app.api("/auth/signup"))
        .json(&json!({ "email": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = http
        .post(system.app.api("/auth/verify-email"))
        .json(&json!({ "token": signup["verification_token"] }))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    support::eventually("the admin role", || async {
        let (roles,): (Vec<String>,) =
            sqlx::query_as("SELECT roles FROM accounts WHERE email = $1")
                .bind(ADMIN)
                .fetch_one(system.app.pool())
                .await
                .unwrap_or_default();
        roles.iter().any(|r| r == "admin")
    })
    .await;
    browser.goto(&format!("{origin}/")).await;
    browser
        .wait_for(
            "the sign-in screen",
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
    browser.type_into("#signin-email", ADMIN).await;
    browser.type_into("#signin-password", PASSWORD).await;
    browser.click("#signin-submit").await;
    browser.click("#admin-link").await;
    let users = browser
        .wait_for(
            "the users table",
            &format!(
                "const t = document.getElementById('admin-users').innerText; \
                 return t.includes('{USER}') ? t : null;"
            ),
            10 * SECOND,
        )
        .await;
    assert!(users.as_str().unwrap().contains(ADMIN));
    assert_controls_named(&browser, "the admin's users").await;
    browser.screenshot(&shot("10-admin-users")).await;

    // Disable asks first, and the row says so at once; enable puts it back.
    browser
        .click(&format!("#admin-users button[aria-label='Disable {USER}']"))
        .await;
    browser.accept_dialog().await;
    let row = browser
        .wait_for(
            "the row disabled in place",
            &format!(
                "const r = [...document.querySelectorAll('#admin-users tr')].find((r) => r.innerText.includes('{USER}')); \
                 return r && r.innerText.includes('disabled') ? r.innerText : null;"
            ),
            10 * SECOND,
        )
        .await;
    assert!(row.as_str().unwrap().contains("Enable"), "{row}");
    browser
        .click(&format!("#admin-users button[aria-label='Enable {USER}']"))
        .await;
    browser
        .wait_for(
            "the row enabled in place",
            &format!(
                "const r = [...document.querySelectorAll('#admin-users tr')].find((r) => r.innerText.includes('{USER}')); \
                 return r && r.innerText.includes('active');"
            ),
            10 * SECOND,
        )
        .await;

    // The song and the job, each in its own row of the admin tables.
    for (tab, panel, row, expects, name) in [
        (
            "songs",
            "#admin-songs",
            format!("tr[data-track-id='{track_id}']"),
            vec![TITLE, ARTIST, "0:40", "aac"],
            "11-admin-songs",
        ),
        (
            "jobs",
            "#admin-jobs-table",
            format!("tr[data-job-id='{job_id}']"),
            vec![
                &job_id[job_id.len() - 8..],
                "completed",
                USER,
                media_url.as_str(),
            ],
            "12-admin-jobs",
        ),
    ] {
        browser.click(&format!("[data-admin={tab}]")).await;
        let found = browser
            .wait_for(
                &format!("the admin {tab}"),
                &format!(
                    "const p = document.querySelector('{panel}'); \
                     if (!p.querySelector('table') && !p.querySelector('[data-kind=error]')) return null; \
                     const r = p.querySelector(\"{row}\"); \
                     return [r ? r.innerText : null, p.innerText];"
                ),
                10 * SECOND,
            )
            .await;
        let text = found[0]
            .as_str()
            .unwrap_or_else(|| panic!("no {row} in admin {tab}: {}", found[1]));
        for expect in &expects {
            assert!(text.contains(expect), "admin {tab} lacks {expect}: {text}");
        }
        browser.screenshot(&shot(name)).await;
    }

    // The job's history, from its row in the jobs table: the events in order.
    browser
        .click(&format!(
            "#admin-jobs-table button[aria-label='History of job {job_id}']"
        ))
        .await;
    let timeline = browser
        .wait_for(
            "the job's audit timeline",
            "const r = document.getElementById('audit-result'); \
             if (r.querySelector('[data-kind=error]')) return [r.innerText]; \
             return [...r.querySelectorAll('ol.timeline li')].map((li) => li.dataset.type);",
            10 * SECOND,
        )
        .await;
    let types: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"ImportRequested"), "{types:?}");
    assert_eq!(types.last(), Some(&"ImportCompleted"), "{types:?}");
    assert!(
        types[1..types.len() - 1]
            .iter()
            .all(|t| *t == "ImportStageChanged"),
        "{types:?}"
    );
    assert!(types.len() >= 3, "no stage changes: {types:?}");
    let audit = browser.text("#audit-result").await;
    assert!(
        audit.contains(&format!("import {job_id}")) && audit.contains("Current state"),
        "{audit}"
    );
    browser
        .exec(
            "document.querySelector('#audit-result ol.timeline').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot(&shot("13-admin-audit")).await;
    // The audit page: the folded state as a table, the events beside it.
    let layout = browser
        .exec(
            "const s = document.querySelector('#audit-result .state-table'); \
             const t = document.querySelector('#audit-result ol.timeline'); \
             return s && t ? [s.innerText.includes('Finished'), \
               Math.round(t.getBoundingClientRect().top - s.getBoundingClientRect().top)] : null;",
            vec![],
        )
        .await;
    assert_eq!(
        layout[0], true,
        "no Finished row in the state table: {layout}"
    );
    assert!(
        layout[1].as_i64().unwrap().abs() < 80,
        "the timeline is not beside the state: {layout}"
    );
    assert!(
        !browser.text("#audit-result").await.contains("{\""),
        "state shown as JSON"
    );

    browser.exec("window.scrollTo(0, 0);", vec![]).await;

    // "State as of" a moment before the job: no events yet.
    browser
        .exec(
            "document.getElementById('audit-asof').value = '2000-01-01T00:00:00';",
            vec![],
        )
        .await;
    browser.click("#audit-form button[type=submit]").await;
    let before = browser
        .wait_for(
            "the history as of 2000",
            "const t = document.getElementById('audit-result').innerText; \
             return t.includes('State as of') || t.includes('Could not') ? t : null;",
            10 * SECOND,
        )
        .await;
    let before = before.as_str().unwrap();
    assert!(
        before.contains("No events for this aggregate at that moment")
            && before.contains("version 0"),
        "{before}"
    );

    for (size, width, height) in [("1280", 1280, 800), ("390", 390, 844)] {
        browser.resize(width, height).await;
        assert_views_fit(
            &browser,
            &["admin:users", "admin:songs", "admin:jobs", "admin:audit"],
            &format!("admin-{size}"),
        )
        .await;
    }
    browser.resize(1280, 800).await;
    browser.click("#signout").await;
    browser
        .wait_for("the admin signed out", &shown("#auth-screen"), 10 * SECOND)
        .await;
    assert_no_console_errors(&browser, PROVOKED, "the admin pages").await;

    // A server with no YouTube key and no way out to the internet: search says so, and
    // points to what still works. (A second web role on the same system, configured
    // without the key.)
    let web2 = free_addr();
    let mut bare = system.app.config.clone();
    bare.youtube_api_key = None;
    // Nor does it accept sessions from its own address: only from the base URL's.
    bare.allowed_origins = vec![named.clone()];
    let mut options = RoleOptions::from_config(&bare, &[Role::Web]).unwrap();
    options.web = web2;
    options.health = "127.0.0.1:0".parse().unwrap();
    options.fail_points = FailPoints::default();
    let second = app::start(&system.app.services, options).await.unwrap();
    browser.goto(&format!("http://{web2}/")).await;
    browser
        .wait_for(
            "the sign-in screen of the second web role",
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
    browser.type_into("#signin-email", USER).await;
    browser.type_into("#signin-password", PASSWORD).await;
    browser.click("#signin-submit").await;
    browser.click("a[data-view=search]").await;
    browser.type_into("#search-q", "anything").await;
    browser.click("#search-form button[type=submit]").await;
    let said = browser
        .wait_for(
            "search without a key or network",
            "const m = document.getElementById('search-message'); \
             return m.dataset.kind === 'error' ? m.innerText : null;",
            60 * SECOND,
        )
        .await;
    let said = said.as_str().unwrap();
    assert!(
        said.starts_with("YouTube search is not available right now")
            && said.contains("import from a link or upload a file"),
        "{said}"
    );
    for raw in ["HTTPSConnection", "proxy", "yt-dlp", "ERROR"] {
        assert!(!said.contains(raw), "{raw} in {said}");
    }
    browser.screenshot(&shot("14-search-offline")).await;
    // Its one console error is that search's 503, which the step asked for.
    let mut allowed = PROVOKED.to_vec();
    allowed.push("/api/songs/search");
    assert_no_console_errors(&browser, &allowed, "the search without network").await;

    // Sign-out refused (this address is not an allowed origin): said, and still signed
    // in, since the server session lives on. A reload says why it cannot sign you in.
    browser.click("#signout").await;
    let toast = browser
        .wait_for(
            "the refused sign-out",
            "const t = document.getElementById('toast'); return t.hidden ? null : t.innerText;",
            10 * SECOND,
        )
        .await;
    assert!(
        toast
            .as_str()
            .unwrap()
            .starts_with("You are still signed in"),
        "{toast}"
    );
    assert!(browser
        .exec(&shown("#app-screen"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.reload().await;
    let refused = browser
        .wait_for(
            "the refused refresh explained",
            "const m = document.getElementById('auth-message'); \
             return document.body.dataset.ready === 'signed-out' && m.dataset.kind === 'error' \
               ? m.innerText : null;",
            10 * SECOND,
        )
        .await;
    let refused = refused.as_str().unwrap();
    assert!(
        refused.contains(&format!("does not accept sessions from http://{web2}"))
            && refused.contains(&format!("Open {named} instead")),
        "{refused}"
    );
    browser.screenshot(&shot("15-foreign-origin")).await;
    assert_no_console_errors(
        &browser,
        &["/api/auth/logout", "/api/auth/refresh"],
        "the refused sign-out and refresh",
    )
    .await;
    second.shutdown.cancel();
    second.wait().await.unwrap();

    browser.close().await;
    drop(driver);
    system.cleanup().await;
}
