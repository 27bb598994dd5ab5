//! Playlists (issue 19): create one, add three tracks from the library rows' menus, drag
//! the third to the top, reload, the order holds; move one with Alt+Down (announced),
//! reload, it holds; remove one; make it public; import an M3U8 file that lists what it
//! could not match; and the web player records a play (a 5-7 s tone played past half),
//! which Favourites then shows (recently played, one more play), read after the play's
//! own answer (its position), at 1280 and 390 px.

use serde_json::{json, Value};

use crate::checks::{assert_controls_named, assert_fits, assert_no_console_errors, shot, SECOND};
use crate::{Story, PROVOKED};

/// The open playlist's rows as track ids, in order.
const ROWS: &str =
    "return [...document.querySelectorAll('#playlist-entries li.playlist-row')].map((r) => r.dataset.trackId);";
/// The open playlist's edits have all been answered.
const SAVED: &str = "const l = document.getElementById('playlist-entries'); \
    return l.dataset.pending === '0' && document.getElementById('playlist-message').dataset.kind !== 'error';";
const ALT: &str = "\u{E00A}";
const ARROW_DOWN: &str = "\u{E015}";

async fn rows(story: &Story) -> Vec<String> {
    serde_json::from_value(story.browser.exec(ROWS, vec![]).await).unwrap()
}

/// Waits for the playlist view to show `count` rows, and answers them.
async fn shown(story: &Story, count: usize) -> Vec<String> {
    let script = format!(
        "const r = [...document.querySelectorAll('#playlist-entries li.playlist-row')]; \
         return !document.getElementById('view-playlist').hidden && r.length === {count} \
           && r.map((e) => e.dataset.trackId);"
    );
    let rows = story
        .browser
        .wait_for(&format!("{count} playlist rows"), &script, 10 * SECOND)
        .await;
    serde_json::from_value(rows).unwrap()
}

/// Reloads the page and waits for the playlist's `count` rows.
async fn reloaded(story: &Story, count: usize) -> Vec<String> {
    story.browser.reload().await;
    story
        .browser
        .wait_for(
            "signed in again",
            "return document.body.dataset.ready === 'signed-in';",
            15 * SECOND,
        )
        .await;
    shown(story, count).await
}

/// Plays answered by the server so far (`POST /api/me/plays`, from the page's own timing).
const PLAYS_ANSWERED: &str = "return performance.getEntriesByType('resource').filter((e) => \
    e.name.endsWith('/api/me/plays') && e.responseStatus >= 200 && e.responseStatus < 300).length;";

/// The Favourites view once loaded: `[recent track ids, {track id: plays}]`.
const FAVOURITES: &str = "const v = document.getElementById('view-favourites'); \
    const m = document.getElementById('favourites-message'); \
    if (v.hidden || m.innerText.startsWith('Loading')) return null; \
    const recent = [...document.querySelectorAll('#recent-tracks li.track')].map((r) => r.dataset.trackId); \
    const counts = {}; \
    for (const r of document.querySelectorAll('#frequent-tracks li.track')) \
      counts[r.dataset.trackId] = parseInt(r.querySelector('.plays').innerText, 10); \
    return [recent, counts];";

async fn favourites(story: &Story) -> Value {
    let browser = &story.browser;
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    browser
        .exec("window.location.hash = '#/favourites';", vec![])
        .await;
    browser
        .wait_for("the Favourites view", FAVOURITES, 10 * SECOND)
        .await
}

pub async fn create_reorder_share_import_and_play(story: &Story) {
    let browser = &story.browser;
    browser.resize(1280, 800).await;
    browser.click("a[data-view=playlists]").await;
    browser
        .wait_for(
            "no playlists yet",
            "return !document.getElementById('playlists-mine-empty').hidden;",
            10 * SECOND,
        )
        .await;
    browser.type_into("#playlist-new-name", "Road trip").await;
    browser.click("#playlist-new button[type=submit]").await;
    let id = browser
        .wait_for(
            "the new playlist open",
            "const m = window.location.hash.match(/^#\\/playlist\\/([\\w-]+)$/); \
             return m && !document.getElementById('view-playlist').hidden \
               && document.getElementById('playlist-title').innerText === 'Road trip' && m[1];",
            10 * SECOND,
        )
        .await;
    let id = id.as_str().unwrap().to_owned();

    // Three tracks, each from its library row's menu.
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    let library = browser
        .wait_for(
            "the three tracks in the library",
            "const t = [...document.querySelectorAll('#library-list li.track')]; \
             return !document.getElementById('view-library').hidden && t.length === 3 \
               && t.map((e) => e.dataset.trackId);",
            10 * SECOND,
        )
        .await;
    let library: Vec<String> = serde_json::from_value(library).unwrap();
    for n in 1..=3 {
        let row = format!("#library-list li.track:nth-child({n})");
        browser.click(&format!("{row} details.menu summary")).await;
        // (Pressed by script: a row rebuilt by a play update would close the menu.)
        browser
            .exec(
                &format!(
                    "[...document.querySelectorAll('{row} details.menu button')] \
                       .find((b) => b.innerText.startsWith('Add to playlist')).click();"
                ),
                vec![],
            )
            .await;
        browser
            .wait_for(
                "my playlists in the dialog",
                "return document.getElementById('playlist-pick').open \
                   && !!document.querySelector('#playlist-pick-list button');",
                10 * SECOND,
            )
            .await;
        if n == 1 {
            assert_controls_named(browser, "the add-to-playlist dialog").await;
            browser.screenshot(&shot("playlists-1-add")).await;
        }
        browser.click("#playlist-pick-list button").await;
        browser
            .wait_for(
                "the dialog closed",
                "return !document.getElementById('playlist-pick').open;",
                10 * SECOND,
            )
            .await;
    }
    browser
        .exec(
            &format!("window.location.hash = '#/playlist/{id}';"),
            vec![],
        )
        .await;
    assert_eq!(shown(story, 3).await, library);

    // Drag the third to the top: the order holds after a reload.
    browser
        .exec(
            "const r = document.querySelectorAll('#playlist-entries li.playlist-row'); const dt = new DataTransfer(); \
             r[2].dispatchEvent(new DragEvent('dragstart', { dataTransfer: dt, bubbles: true })); \
             r[0].dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true })); \
             r[0].dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await;
    let dragged = vec![library[2].clone(), library[0].clone(), library[1].clone()];
    assert_eq!(rows(story).await, dragged);
    browser.wait_for("the move saved", SAVED, 10 * SECOND).await;
    assert_eq!(reloaded(story, 3).await, dragged, "after a reload");

    // The keyboard: Alt+Down on the focused second row moves it down, keeps the focus on
    // it and says so.
    browser
        .exec(
            "document.querySelector('#playlist-entries li.playlist-row:nth-child(2)').focus();",
            vec![],
        )
        .await;
    browser.chord(ALT, ARROW_DOWN).await;
    let keyed = vec![library[2].clone(), library[1].clone(), library[0].clone()];
    assert_eq!(rows(story).await, keyed);
    let focus = browser
        .exec(
            "return [document.activeElement.dataset.index, document.getElementById('playlist-announce').innerText];",
            vec![],
        )
        .await;
    assert_eq!(focus[0], "2", "{focus}");
    assert!(
        focus[1]
            .as_str()
            .unwrap()
            .ends_with("moved to number 3 of 3."),
        "{focus}"
    );
    browser
        .wait_for("the keyboard move saved", SAVED, 10 * SECOND)
        .await;
    assert_eq!(reloaded(story, 3).await, keyed, "after a reload");
    assert_fits(browser, "a playlist at 1280").await;
    assert_controls_named(browser, "a playlist").await;
    browser.screenshot(&shot("playlists-2-reordered")).await;

    // Remove the second entry by its button; make the playlist public.
    browser
        .click("#playlist-entries li.playlist-row:nth-child(2) button.danger")
        .await;
    browser
        .wait_for("the removal saved", SAVED, 10 * SECOND)
        .await;
    browser.click("#playlist-edit-open").await;
    browser
        .type_into("#playlist-edit-description", "For the drive")
        .await;
    browser.click("#playlist-edit-public").await;
    browser.click("#playlist-edit button[type=submit]").await;
    browser
        .wait_for(
            "the details saved",
            "return document.getElementById('playlist-edit').hidden \
               && document.getElementById('playlist-message').innerText === 'Saved.';",
            10 * SECOND,
        )
        .await;
    let left = vec![library[2].clone(), library[0].clone()];
    assert_eq!(reloaded(story, 2).await, left, "after the removal");
    assert_eq!(browser.text("#playlist-description").await, "For the drive");
    let sub = browser.text("#playlist-sub").await;
    assert!(
        sub.starts_with("2 tracks · ") && sub.ends_with(" · Public: everyone can play and copy it"),
        "{sub}"
    );
    browser.resize(390, 844).await;
    browser
        .wait_for(
            "the narrow layout",
            "return window.innerWidth <= 420;",
            5 * SECOND,
        )
        .await;
    assert_fits(browser, "a playlist at 390").await;
    browser.screenshot(&shot("playlists-3-390")).await;
    browser.resize(1280, 800).await;

    // An M3U8 file: the tones' artist and title match; an entry of nothing is listed.
    let file = story.system.file(
        "trip.m3u8",
        b"#EXTM3U\n#EXTINF:5,The Test Tones - Loopback Sunrise\nhttps://example.com/sunrise.mp3\n\
          #EXTINF:1,Nobody - Nothing\nfile:///music/nothing.mp3\n",
    );
    let path = story
        .system
        .media_dir
        .path()
        .join("trip.m3u8")
        .display()
        .to_string();
    assert!(file.ends_with("trip.m3u8"));
    browser.click("a[data-view=playlists]").await;
    browser.keys("#playlist-import-file", &path).await;
    browser.click("#playlist-import button[type=submit]").await;
    let said = browser
        .wait_for(
            "the import's answer",
            "const m = document.getElementById('playlists-message'); \
             return m.dataset.kind === 'ok' && !document.getElementById('playlist-unmatched').hidden \
               && [m.innerText, document.querySelector('#playlist-unmatched ul').innerText, \
                   [...document.querySelectorAll('#playlists-mine li .title')].map((t) => t.innerText)];",
            10 * SECOND,
        )
        .await;
    assert_eq!(
        said[0],
        "Imported “trip”: 1 track found in your library, 1 not found (below)."
    );
    assert!(
        said[1]
            .as_str()
            .unwrap()
            .starts_with("Entry 2: Nobody – Nothing"),
        "{said}"
    );
    assert_fits(browser, "playlists at 1280").await;
    assert_controls_named(browser, "playlists").await;
    browser.screenshot(&shot("playlists-4-imported")).await;

    // The web player records a play once past half the track: Favourites shows it as the
    // latest and counts one more, read after the play's answer (its position).
    let before = favourites(story).await;
    let played = &left[1];
    let count_before = before[1][played].as_i64().unwrap_or(0);
    let answered = browser.exec(PLAYS_ANSWERED, vec![]).await;
    browser
        .exec(
            &format!("window.location.hash = '#/playlist/{id}';"),
            vec![],
        )
        .await;
    shown(story, 2).await;
    browser
        .click("#playlist-entries li.playlist-row:nth-child(2) button.meta")
        .await;
    browser
        .wait_for(
            "the play recorded",
            &PLAYS_ANSWERED.replace(".length;", &format!(".length > {answered};")),
            20 * SECOND,
        )
        .await;
    let after = favourites(story).await;
    assert_eq!(after[0][0], json!(played), "{after}");
    assert_eq!(after[1][played], count_before + 1, "{before} then {after}");
    browser
        .exec("document.getElementById('audio').pause();", vec![])
        .await;
    browser.screenshot(&shot("playlists-5-played")).await;
    assert_no_console_errors(browser, PROVOKED, "playlists").await;
    // Leave the queue empty for what follows.
    browser
        .exec("document.getElementById('queue-clear').click();", vec![])
        .await;
}
