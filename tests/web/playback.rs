//! The library (tags, cover, filter and sort) and the player: mouse, keyboard, a cover
//! link that fails, and pauses and seeks past the stream link's lifetime.

use std::time::Duration;

use serde_json::json;

use crate::checks::{assert_controls_named, assert_no_console_errors, shot, shown, SECOND};
use crate::{audio_time, Story, ARTIST, PROVOKED, STREAM_TTL_S, TITLE};

pub async fn library_and_playback(story: &Story) -> String {
    let Story {
        browser,
        system: _,
        local: _,
        named: _,
        stream,
        media_url: _,
        missing_url: _,
    } = story;
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

    // Its cover (the tone carries a 64x48 picture) comes from the signed cover route of
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
    assert_controls_named(browser, "the library").await;

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
    let paused_place = browser.exec(audio_time(), vec![]).await.as_f64().unwrap();

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
    // link first), and Enter plays the track. The reload resumed the queue where it was,
    // paused (issue 19).
    browser.reload().await;
    let resumed_at = browser
        .wait_for(
            "the library after a reload, the track paused where it was",
            &format!(
                "const a = document.getElementById('audio'); \
                 return document.body.dataset.ready === 'signed-in' \
                   && !!document.querySelector('#library-list li.track') && a.readyState > 0 && a.paused \
                   && document.getElementById('now-title').innerText === {} ? [a.currentTime] : null;",
                json!(TITLE)
            ),
            10 * SECOND,
        )
        .await[0]
        .as_f64()
        .unwrap();
    assert!(
        (resumed_at - paused_place).abs() < 0.5,
        "paused at {paused_place}, resumed at {resumed_at}"
    );
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
    assert_no_console_errors(browser, PROVOKED, "import, library and playback").await;

    track_id
}
