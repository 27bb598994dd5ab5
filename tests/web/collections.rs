//! A whole feed imported from the web app (issue 20): a loopback RSS feed of tones pasted
//! into "Import from a link" is previewed (entries, in my library, stored on the server,
//! skipped), confirmed from the keyboard, followed until every entry is done, and opens
//! as a playlist in the feed's order; pasted again it adds nothing. At 1280 and 390 px.

use jukebox_domain::TrackId;
use serde_json::{json, Value};

use crate::checks::{assert_controls_named, assert_fits, assert_no_console_errors, shot, SECOND};
use crate::helpers::tone;
use crate::{Story, PROVOKED};

const ENTER: &str = "\u{E007}";

/// The preview's facts as `[label, value]` pairs, once the preview is shown.
const FACTS: &str = "const c = document.getElementById('collection'); \
    const dts = [...document.querySelectorAll('#collection-facts dt')]; \
    return !c.hidden && dts.length > 0 && \
      dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent]);";

/// The status line once the import has finished.
const FINISHED: &str = "const s = document.getElementById('collection-status').textContent; \
    return s.includes('Finished') ? s : null;";

async fn paste(story: &Story, feed: &str) -> Value {
    let browser = &story.browser;
    browser
        .exec("window.location.hash = '#/search';", vec![])
        .await;
    browser
        .wait_for(
            "the search view",
            "return !document.getElementById('view-search').hidden;",
            5 * SECOND,
        )
        .await;
    browser.type_into("#import-url", feed).await;
    // Enter in the box submits it, as a person at the keyboard does.
    browser.keys("#import-url", ENTER).await;
    browser.wait_for("the preview", FACTS, 30 * SECOND).await
}

fn facts(pairs: &[(&str, u32)]) -> Value {
    json!(pairs
        .iter()
        .map(|(label, n)| json!([label, n.to_string()]))
        .collect::<Vec<_>>())
}

pub async fn import_a_feed_whole(story: &Story) {
    let browser = &story.browser;
    let system = &story.system;
    browser.resize(1280, 800).await;
    let urls: Vec<String> = (1..=4)
        .map(|n| system.tone(&format!("web-feed-{n}.mp3"), &tone(2)))
        .collect();
    let feed = system.media.feed(
        "web-tones.xml",
        "Web Tones",
        &[
            ("Tone one", &urls[0], Some(2)),
            ("Tone two", &urls[1], None),
            ("Tone three, too long", &urls[2], Some(99_999)),
            ("Tone four", &urls[3], Some(2)),
        ],
    );
    let ids: Vec<String> = [0, 1, 3]
        .iter()
        .map(|&n| TrackId::of_direct_link(&urls[n]).to_string())
        .collect();

    let shown = paste(story, &feed).await;
    assert_eq!(
        shown,
        facts(&[
            ("Entries", 4),
            ("Already in your library", 0),
            ("Already stored on the server", 0),
            ("New to your library", 3),
            ("Skipped", 1),
        ])
    );
    assert_eq!(browser.text("#collection-title").await, "Web Tones");
    assert_eq!(
        browser.text("#collection-skipped summary").await,
        "1 entry skipped"
    );
    // The focus is on Confirm, so Enter imports the list.
    let focused = browser
        .exec("return document.activeElement.id;", vec![])
        .await;
    assert_eq!(focused, "collection-confirm");
    assert_eq!(
        browser.text("#collection-confirm").await,
        "Import 3 entries"
    );
    for (width, height) in [(390, 844), (1280, 800)] {
        browser.resize(width, height).await;
        let screen = format!("the feed's preview at {width}");
        assert_fits(browser, &screen).await;
        assert_controls_named(browser, &screen).await;
        browser
            .screenshot(&shot(&format!("collection-1-preview-{width}")))
            .await;
    }

    browser.press(ENTER).await;
    let status = browser
        .wait_for("the feed imported", FINISHED, 180 * SECOND)
        .await;
    assert_eq!(status, "Finished: 3 done · 0 failed · 0 remaining.");
    browser
        .exec(
            "document.getElementById('collection-skipped').open = true;",
            vec![],
        )
        .await;
    assert_eq!(
        browser.text("#collection-skipped li").await,
        "3. Tone three, too long: too long"
    );
    for (width, height) in [(390, 844), (1280, 800)] {
        browser.resize(width, height).await;
        let screen = format!("the feed imported at {width}");
        assert_fits(browser, &screen).await;
        assert_controls_named(browser, &screen).await;
        browser
            .screenshot(&shot(&format!("collection-2-done-{width}")))
            .await;
    }

    // Its playlist holds the feed's entries in the feed's order.
    assert_eq!(
        browser.text("#collection-playlist").await,
        "Open the playlist “Web Tones”"
    );
    browser.click("#collection-playlist").await;
    let rows = browser
        .wait_for(
            "the feed's playlist",
            "const r = [...document.querySelectorAll('#playlist-entries li.playlist-row')]; \
             return !document.getElementById('view-playlist').hidden && r.length === 3 \
               && r.map((e) => e.dataset.trackId);",
            15 * SECOND,
        )
        .await;
    assert_eq!(rows, json!(ids));
    browser.screenshot(&shot("collection-3-playlist")).await;

    // The same feed again: all of it is mine and stored; importing it adds nothing.
    let again = paste(story, &feed).await;
    assert_eq!(
        again,
        facts(&[
            ("Entries", 4),
            ("Already in your library", 3),
            ("Already stored on the server", 3),
            ("New to your library", 0),
            ("Skipped", 1),
        ])
    );
    browser.press(ENTER).await;
    let status = browser
        .wait_for("the second import", FINISHED, 30 * SECOND)
        .await;
    assert_eq!(
        status,
        "Nothing new: every entry was imported before. Finished: 3 done · 0 failed · 0 remaining."
    );
    browser.click("#collection-cancel").await;
    browser
        .wait_for(
            "the preview closed",
            "return document.getElementById('collection').hidden;",
            5 * SECOND,
        )
        .await;
    assert_no_console_errors(browser, PROVOKED, "the feed's import").await;
}
