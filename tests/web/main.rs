//! The web app (issue 7) end to end in real headless Chromium, driven over WebDriver
//! (chromedriver), against the whole system: Postgres, NATS JetStream, yt-dlp and
//! ffmpeg importing a tone from a loopback media server, the stream role serving it,
//! and a fake YouTube Data API for search. Screenshots go to `target/screenshots/`.

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
use std::path::PathBuf;
use std::time::Duration;

use jukebox::app::{self, Role, RoleOptions};
use jukebox_nats::FailPoints;
use serde_json::{json, Value};

use helpers::{import_app, tone, Options, PASSWORD};
use webdriver::{Browser, Driver};

const USER: &str = "listener@example.com";
const ADMIN: &str = "admin@example.com";
const SECOND: Duration = Duration::from_secs(1);
/// The tags of the imported tone (`helpers::tone`).
const TITLE: &str = "Loopback Sunrise";
const ARTIST: &str = "The Test Tones";

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/screenshots")
        .join(format!("{name}.png"))
}

/// True if the element matching `css` is shown.
fn shown(css: &str) -> String {
    format!("const e = document.querySelector('{css}'); return !!(e && e.getClientRects().length);")
}

fn audio_time() -> &'static str {
    "return document.getElementById('audio').currentTime;"
}

/// The shown controls that have no accessible name (aria-label, aria-labelledby, a
/// <label>, their own text, or a title), as HTML snippets.
const UNNAMED_CONTROLS: &str = "
    const named = (el) => (el.getAttribute('aria-label') || '').trim()
      || (el.getAttribute('aria-labelledby') || '').split(/\\s+/)
           .map((id) => document.getElementById(id)?.textContent || '').join(' ').trim()
      || [...(el.labels || [])].map((l) => l.textContent).join(' ').trim()
      || (['BUTTON', 'A', 'SUMMARY'].includes(el.tagName) ? el.textContent.trim() : '')
      || (el.getAttribute('title') || '').trim();
    const controls = [...document.querySelectorAll(
      'button, a[href], input, select, textarea, [role=tab], [tabindex]:not([tabindex=\"-1\"])')]
      .filter((el) => el.getClientRects().length && el.type !== 'hidden');
    return controls.filter((el) => !named(el)).map((el) => el.outerHTML.slice(0, 160));";

async fn assert_controls_named(browser: &Browser, screen: &str) {
    let unnamed = browser.exec(UNNAMED_CONTROLS, vec![]).await;
    assert_eq!(unnamed, json!([]), "controls without a name on {screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_and_an_admin_use_the_web_app_in_chromium() {
    // The app, with the web and stream roles on ports the browser and the signed URLs
    // agree on.
    let mut system = import_app(Options {
        roles: &[],
        youtube: true,
        extra: vec![
            (
                "STREAM_SIGNING_SECRET",
                "stream-secret-for-tests-only-0123456789".into(),
            ),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
            ("EMAIL_VERIFY_REQUIRED", "1".into()),
            ("ADMIN_BOOTSTRAP_EMAIL", ADMIN.into()),
        ],
        ..Default::default()
    })
    .await;
    let (web, stream) = (free_addr(), free_addr());
    let origin = format!("http://{web}");
    system.app.config.public_stream_base_url = format!("http://{stream}");
    system.app.config.allowed_origins = vec![origin.clone()];
    let mut options = RoleOptions::from_config(&system.app.config, &[Role::All]).unwrap();
    options.api = "127.0.0.1:0".parse().unwrap();
    options.web = web;
    options.stream = stream;
    options.fail_points = FailPoints::default();
    options.ack_wait = Duration::from_secs(2);
    system.app.running = Some(app::start(&system.app.services, options).await.unwrap());
    let media_url = system.tone("sunrise.mp3", &tone(40));

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
    let browser = Browser::open(&driver, 1280, 900).await;

    // Sign up, confirm the address, sign in.
    browser.goto(&format!("{origin}/")).await;
    browser
        .wait_for(
            "the sign-in screen",
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
    browser.screenshot(&shot("01-sign-in")).await;
    browser.click("#tab-signup").await;
    browser.type_into("#signup-email", USER).await;
    browser.type_into("#signup-password", PASSWORD).await;
    browser.click("#signup-submit").await;
    browser.find("#verify-link").await;
    browser.screenshot(&shot("02-signed-up")).await;
    browser.click("#verify-link").await;
    browser
        .wait_for(
            "the address confirmed",
            "return document.getElementById('auth-message').innerText.includes('is confirmed');",
            10 * SECOND,
        )
        .await;
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

    // Import from a link; the jobs panel follows it live until it completes.
    browser.type_into("#import-url", &media_url).await;
    browser.click("#url-form button[type=submit]").await;
    browser.click("a[data-view=jobs]").await;
    browser.find("#jobs-list li.job").await;
    browser.screenshot(&shot("05-job-running")).await;
    let stages = browser
        .wait_for(
            "the job completed",
            "const j = document.querySelector('#jobs-list li.job'); \
             return j && j.dataset.status === 'completed' ? j.innerText : null;",
            60 * SECOND,
        )
        .await;
    assert!(stages.as_str().unwrap().contains("Done"), "{stages}");
    let job_id = browser
        .exec(
            "return document.querySelector('#jobs-list li.job').dataset.jobId;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    browser.screenshot(&shot("06-job-done")).await;

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

    // Phone-sized screen: nothing wider than the screen, the player's buttons on it,
    // every control still named.
    browser.resize(390, 844).await;
    let phone = browser
        .wait_for(
            "the narrow layout",
            "return window.innerWidth <= 420 ? [window.innerWidth, \
               document.documentElement.scrollWidth] : null;",
            5 * SECOND,
        )
        .await;
    assert!(
        phone[1].as_u64() <= phone[0].as_u64(),
        "page wider than the screen: {phone}"
    );
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
    assert_controls_named(&browser, "the library on a phone").await;
    browser.screenshot(&shot("08-phone-library")).await;
    browser.resize(1280, 900).await;

    // Remove it from the library: it goes, and a reload (a fresh GET /api/library)
    // does not bring it back.
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
    assert!(!browser
        .exec(
            "return !!document.querySelector('#library-list li.track');",
            vec![]
        )
        .await
        .as_bool()
        .unwrap());
    browser.reload().await;
    browser
        .wait_for(
            "the library reloaded",
            "return document.body.dataset.ready === 'signed-in' \
             && document.getElementById('library-message').innerText.startsWith('Your library is empty');",
            10 * SECOND,
        )
        .await;
    assert!(!browser
        .exec(
            "return !!document.querySelector('#library-list li.track');",
            vec![]
        )
        .await
        .as_bool()
        .unwrap());
    browser.screenshot(&shot("09-removed")).await;

    // Sign out.
    browser.click("#signout").await;
    browser
        .wait_for("signed out", &shown("#auth-screen"), 10 * SECOND)
        .await;

    // The admin (the bootstrap address, verified) sees the user, the song, the job and
    // the job's audit timeline.
    let http = &system.app.http;
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
            vec![&job_id[..8], "completed", USER, media_url.as_str()],
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

    browser.close().await;
    drop(driver);
    system.cleanup().await;
}
