//! The player's queue (issue 19): shuffle plays every queued track once per cycle,
//! repeat, "Play next" from a track's menu, the queue view reordered by its buttons, the
//! keyboard and a drag, and a reload that resumes the same track near the same place
//! from the server's saved queue (this browser's copy removed first).

use serde_json::{json, Value};

use crate::checks::{assert_controls_named, assert_fits, assert_no_console_errors, shot, SECOND};
use crate::{Story, PROVOKED};

/// The queue view's rows as track ids, in order.
const ROWS: &str = "return [...document.querySelectorAll('#queue-list li.queue-row')].map((r) => r.dataset.trackId);";
/// The track the player is on, from the queue view's marked row.
const PLAYING: &str = "const r = document.querySelector('#queue-list li.queue-row.playing'); return r ? r.dataset.trackId : null;";

async fn rows(story: &Story) -> Vec<String> {
    let rows = story.browser.exec(ROWS, vec![]).await;
    serde_json::from_value(rows).unwrap()
}

/// Waits until the player is on another track than `before`, and answers it.
async fn moved_on(story: &Story, before: &str) -> String {
    let script = format!(
        "const r = document.querySelector('#queue-list li.queue-row.playing'); \
         return r && r.dataset.trackId !== {} ? r.dataset.trackId : null;",
        json!(before)
    );
    let id = story
        .browser
        .wait_for("the next track", &script, 10 * SECOND)
        .await;
    id.as_str().unwrap().to_owned()
}

pub async fn shuffle_queue_and_resume(story: &Story) {
    let browser = &story.browser;
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    let library = browser
        .wait_for(
            "the three uploads in the library",
            "const t = [...document.querySelectorAll('#library-list li.track')]; \
             return t.length === 3 && t.map((e) => e.dataset.trackId);",
            10 * SECOND,
        )
        .await;
    let mut library: Vec<String> = serde_json::from_value(library).unwrap();

    // Shuffle on, then Play all: three tracks, each once, in some order; the end of the
    // cycle stops there with repeat off.
    browser.click("#shuffle").await;
    assert_eq!(
        browser
            .exec(
                "return document.getElementById('shuffle').getAttribute('aria-pressed');",
                vec![]
            )
            .await,
        "true"
    );
    browser.click("#library-play-all").await;
    browser
        .exec("window.location.hash = '#/queue';", vec![])
        .await;
    let first = browser
        .wait_for("a track playing", PLAYING, 10 * SECOND)
        .await;
    let mut played = vec![first.as_str().unwrap().to_owned()];
    for _ in 0..2 {
        browser.click("#next").await;
        let last = played.last().unwrap().clone();
        played.push(moved_on(story, &last).await);
    }
    let mut once = played.clone();
    once.sort();
    library.sort();
    assert_eq!(once, library, "shuffle played {played:?}");
    browser.click("#next").await;
    tokio::time::sleep(SECOND / 2).await;
    assert_eq!(
        browser.exec(PLAYING, vec![]).await,
        json!(played[2]),
        "past the end without repeat"
    );
    // Repeat all: a new cycle, which does not start with the track just played.
    browser.click("#repeat").await;
    assert_eq!(
        browser
            .exec(
                "return document.getElementById('repeat').getAttribute('aria-label');",
                vec![]
            )
            .await,
        "Repeat: all"
    );
    browser.click("#next").await;
    let again = moved_on(story, &played[2]).await;
    assert!(library.contains(&again));
    // The keyboard: R cycles to one, then off; S turns shuffle off.
    browser.press("r").await;
    browser.press("r").await;
    browser.press("s").await;
    let modes = browser
        .exec(
            "return [document.getElementById('repeat').getAttribute('aria-label'), \
                     document.getElementById('shuffle').getAttribute('aria-pressed')];",
            vec![],
        )
        .await;
    assert_eq!(modes, json!(["Repeat: off", "false"]));

    // The queue view: move down and up with the buttons, Alt+Up on a focused row, and a drag.
    let before = rows(story).await;
    assert_eq!(before.len(), 3);
    browser
        .click("#queue-list li.queue-row:nth-child(1) button[title='Move down']")
        .await;
    assert_eq!(
        rows(story).await,
        [before[1].clone(), before[0].clone(), before[2].clone()]
    );
    browser
        .exec(
            "document.querySelector('#queue-list li.queue-row:nth-child(2)').focus();",
            vec![],
        )
        .await;
    browser
        .exec(
            "document.activeElement.dispatchEvent(new KeyboardEvent('keydown', \
               { key: 'ArrowUp', altKey: true, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await;
    assert_eq!(rows(story).await, before);
    browser
        .exec(
            "const r = document.querySelectorAll('#queue-list li.queue-row'); const dt = new DataTransfer(); \
             r[0].dispatchEvent(new DragEvent('dragstart', { dataTransfer: dt, bubbles: true })); \
             r[2].dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true })); \
             r[2].dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await;
    assert_eq!(
        rows(story).await,
        [before[1].clone(), before[2].clone(), before[0].clone()]
    );
    assert_controls_named(browser, "the queue").await;
    browser.screenshot(&shot("queue-1-1280")).await;

    // "Play next" from a library row's menu: right after the current track.
    // Paused, so no track change rebuilds the rows while the menu is open.
    browser
        .exec("document.getElementById('audio').pause();", vec![])
        .await;
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    browser
        .click("#library-list li.track:nth-child(1) details.menu summary")
        .await;
    // (Pressed by script: a row rebuilt by a star or play update would close the menu.)
    browser
        .exec(
            "document.querySelector('#library-list li.track:nth-child(1) details.menu button').click();",
            vec![],
        )
        .await;
    browser
        .exec("window.location.hash = '#/queue';", vec![])
        .await;
    let now = browser
        .wait_for("the queue view", PLAYING, 5 * SECOND)
        .await;
    let queue = rows(story).await;
    assert_eq!(queue.len(), 4, "{queue:?}");
    let at = queue.iter().position(|id| json!(id) == now).unwrap();
    assert_eq!(
        json!(queue[at + 1]),
        library_first(story).await,
        "{queue:?}"
    );

    // On a phone.
    browser.resize(390, 844).await;
    browser
        .wait_for(
            "the narrow layout",
            "return window.innerWidth <= 420;",
            5 * SECOND,
        )
        .await;
    assert_fits(browser, "the queue at 390").await;
    browser.screenshot(&shot("queue-2-390")).await;
    browser.resize(1280, 800).await;
    browser
        .wait_for(
            "the wide layout",
            "return window.innerWidth >= 1200;",
            5 * SECOND,
        )
        .await;

    // Resume: the last entry whose track is queued once (the server keeps the current
    // track by id, ADR 28), 2.5 s in, paused (a pause saves the queue).
    let last = (0..queue.len())
        .rev()
        .find(|&i| queue.iter().filter(|id| **id == queue[i]).count() == 1)
        .unwrap();
    // Counts the loads from here: the chosen track's link may be the very same URL.
    browser
        .exec(
            "window.loadsSeen = 0; document.getElementById('audio') \
               .addEventListener('loadstart', () => { window.loadsSeen += 1; });",
            vec![],
        )
        .await;
    browser
        .click(&format!(
            "#queue-list li.queue-row:nth-child({}) button.meta",
            last + 1
        ))
        .await;
    browser
        .wait_for(
            "the chosen track playing",
            &format!(
                "const a = document.getElementById('audio'); \
                 return window.loadsSeen > 0 && !a.paused && a.currentTime > 0.2 && ({PLAYING_INDEX}) === '{last}';"
            ),
            10 * SECOND,
        )
        .await;
    browser
        .exec(
            "const s = document.getElementById('seek'); s.value = '2.5'; \
             s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); \
             document.getElementById('audio').pause();",
            vec![],
        )
        .await;
    let place = browser
        .exec(
            "return document.getElementById('audio').currentTime;",
            vec![],
        )
        .await;
    let place = place.as_f64().unwrap();
    // The save's answer is in: this browser's copy names the server's date of it.
    browser
        .wait_for(
            "the pause saved",
            "const k = Object.keys(localStorage).find((k) => k.startsWith('jukebox.queue.')); \
             const r = k && JSON.parse(localStorage.getItem(k)); \
             return !!(r && r.server_position_ms != null && Math.abs(r.server_position_ms / 1000 - PLACE) < 0.05);"
                .replace("PLACE", &place.to_string())
                .as_str(),
            10 * SECOND,
        )
        .await;
    // This browser forgets its copy: what comes back is the server's.
    browser
        .exec(
            "Object.keys(localStorage).filter((k) => k.startsWith('jukebox.queue.')) \
               .forEach((k) => localStorage.removeItem(k));",
            vec![],
        )
        .await;
    browser.reload().await;
    let resumed = browser
        .wait_for(
            "the queue resumed after a reload",
            &format!(
                "const a = document.getElementById('audio'); \
                 return document.body.dataset.ready === 'signed-in' && a.readyState > 0 \
                   && [{PLAYING_INDEX}, a.currentTime, a.paused, \
                       [...document.querySelectorAll('#queue-list li.queue-row')].map((r) => r.dataset.trackId)];"
            ),
            15 * SECOND,
        )
        .await;
    assert_eq!(resumed[0], json!(last.to_string()), "{resumed}");
    let at = resumed[1].as_f64().unwrap();
    assert!(
        (at - place).abs() < 0.5,
        "resumed at {at}, paused at {place}"
    );
    assert_eq!(resumed[2], true, "paused, ready to play");
    assert_eq!(resumed[3], json!(queue), "the same queue");
    browser.screenshot(&shot("queue-3-resumed")).await;
    // Play goes on from there.
    browser.click("#playpause").await;
    browser
        .wait_for(
            "playing on from the place",
            &format!("const a = document.getElementById('audio'); return !a.paused && a.currentTime > {place};"),
            10 * SECOND,
        )
        .await;
    browser.click("#playpause").await;
    assert_no_console_errors(browser, PROVOKED, "the queue").await;
    // Leave the queue empty for what follows.
    browser.click("#queue-clear").await;
    assert_eq!(browser.text("#now-title").await, "Nothing playing");
}

/// The id of the library's first row.
async fn library_first(story: &Story) -> Value {
    story
        .browser
        .exec(
            "return document.querySelector('#library-list li.track').dataset.trackId;",
            vec![],
        )
        .await
}

/// The queue index of the entry playing (a track may be queued twice).
const PLAYING_INDEX: &str =
    "(document.querySelector('#queue-list li.queue-row.playing') || {dataset: {}}).dataset.index";
