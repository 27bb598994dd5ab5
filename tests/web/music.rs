//! Artists and albums (issue 18): the Artists grid, an artist's page, an album's page with
//! its tracks and cover, playing the album, and "Edit details" moving the track to the
//! album and artists its owner names.

use crate::checks::{assert_controls_named, assert_fits, assert_no_console_errors, shot, SECOND};
use crate::{Story, ARTIST, PROVOKED, TITLE};

/// A string as a JavaScript literal.
fn json(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

pub async fn artists_albums_and_edit_details(story: &Story) {
    let browser = &story.browser;
    let covers = format!("http://{}/api/public/covers/", story.stream);

    // Artists: the tone's artist, one album (its single), one track.
    browser.click("a[data-view=artists]").await;
    let card = browser
        .wait_for(
            "the artist's card",
            "const c = document.querySelector('#artists-grid li.card'); \
             return c && [c.querySelector('.card-title').innerText, c.querySelector('.card-sub').innerText];",
            10 * SECOND,
        )
        .await;
    assert_eq!(card, serde_json::json!([ARTIST, "1 album · 1 track"]));
    assert_controls_named(browser, "the artists").await;
    browser.screenshot(&shot("music-1-artists")).await;

    // The artist's page lists the single, named by its track.
    browser
        .click(&format!("#artists-grid a[aria-label='Artist {ARTIST}']"))
        .await;
    let album = browser
        .wait_for(
            "the artist's albums",
            "const c = document.querySelector('#artist-albums li.card .card-title'); \
             return !document.getElementById('view-artist').hidden && c && c.innerText;",
            10 * SECOND,
        )
        .await;
    assert_eq!(album, TITLE);
    assert_eq!(browser.text("#artist-title").await, ARTIST);
    browser.screenshot(&shot("music-2-artist")).await;

    // The album's page: its track, its cover (the first track's), and play from there.
    browser.click("#artist-albums li.card a").await;
    let tracks = browser
        .wait_for(
            "the album's tracks",
            "const t = [...document.querySelectorAll('#album-tracks li.track .title')]; \
             return !document.getElementById('view-album').hidden && t.length && t.map((e) => e.innerText);",
            10 * SECOND,
        )
        .await;
    assert_eq!(tracks, serde_json::json!([TITLE]));
    let cover = browser
        .wait_for(
            "the album's cover",
            "const i = document.getElementById('album-cover'); \
             return i.complete && i.naturalWidth > 0 && !i.src.endsWith('/icon.svg') ? i.currentSrc : null;",
            10 * SECOND,
        )
        .await;
    assert!(cover.as_str().unwrap().starts_with(&covers), "{cover}");
    assert_controls_named(browser, "an album").await;
    browser.screenshot(&shot("music-3-album")).await;
    // And on a phone.
    browser.resize(390, 844).await;
    browser
        .wait_for(
            "the narrow layout",
            "return window.innerWidth <= 420;",
            5 * SECOND,
        )
        .await;
    assert_fits(browser, "an album at 390").await;
    browser.screenshot(&shot("music-3-album-390")).await;
    browser.exec("window.history.back();", vec![]).await;
    browser
        .wait_for(
            "the artist's page again",
            "return !document.getElementById('view-artist').hidden \
               && document.querySelector('#artist-albums li.card');",
            10 * SECOND,
        )
        .await;
    assert_fits(browser, "an artist at 390").await;
    browser.screenshot(&shot("music-2-artist-390")).await;
    browser.exec("window.history.forward();", vec![]).await;
    browser.resize(1280, 800).await;
    browser
        .wait_for(
            "the album at 1280 again",
            "return window.innerWidth >= 1200 && !document.getElementById('view-album').hidden \
               && document.querySelector('#album-tracks li.track');",
            10 * SECOND,
        )
        .await;
    browser.click("#album-play").await;
    browser
        .wait_for(
            "the album playing",
            &format!(
                "const a = document.getElementById('audio'); \
                 return !a.paused && a.currentTime > 0.2 \
                   && document.getElementById('now-title').innerText === {};",
                json(TITLE)
            ),
            15 * SECOND,
        )
        .await;
    browser.click("#playpause").await;

    // Edit details: my album, year and a guest. The single is gone; the album and the
    // guest artist appear.
    browser
        .click(&format!(
            "#album-tracks button[aria-label='Edit details of {TITLE}']"
        ))
        .await;
    browser
        .wait_for(
            "the edit dialog",
            &format!(
                "return document.getElementById('edit-dialog').open \
                   && document.getElementById('edit-title').value === {};",
                json(TITLE)
            ),
            5 * SECOND,
        )
        .await;
    assert_controls_named(browser, "the edit dialog").await;
    browser
        .type_into("#edit-artists", &format!("{ARTIST}, Guest Singer"))
        .await;
    browser.type_into("#edit-album", "Sunrise Sessions").await;
    browser.type_into("#edit-year", "2024").await;
    browser.screenshot(&shot("music-4-edit-details")).await;
    browser.click("#edit-save").await;
    let albums = browser
        .wait_for(
            "the corrected album in the list",
            "const c = [...document.querySelectorAll('#albums-grid li.card')]; \
             return !document.getElementById('view-albums').hidden && c.length \
               && c.map((e) => [e.querySelector('.card-title').innerText, e.querySelector('.card-sub').innerText]);",
            10 * SECOND,
        )
        .await;
    assert_eq!(
        albums,
        serde_json::json!([["Sunrise Sessions", format!("{ARTIST} · 2024")]])
    );
    browser.screenshot(&shot("music-5-albums")).await;
    browser.click("a[data-view=artists]").await;
    let artists = browser
        .wait_for(
            "both artists",
            "const c = [...document.querySelectorAll('#artists-grid li.card .card-title')]; \
             return c.length === 2 && c.map((e) => e.innerText);",
            10 * SECOND,
        )
        .await;
    assert_eq!(artists, serde_json::json!(["Guest Singer", ARTIST]));

    // Back to the tone's own artist, as the rest of the story expects.
    browser.click("a[data-view=library]").await;
    // The list is drawn again once the read (after the correction's position) answers.
    browser
        .wait_for(
            "the corrected library row",
            &format!(
                "const t = document.querySelector('#library-list li.track .artist'); \
                 return t && t.innerText === {};",
                json(&format!("{ARTIST}, Guest Singer"))
            ),
            10 * SECOND,
        )
        .await;
    browser
        .click(&format!(
            "#library-list button[aria-label='Edit details of {TITLE}']"
        ))
        .await;
    browser
        .wait_for(
            "the edit dialog from the library",
            "return document.getElementById('edit-dialog').open;",
            5 * SECOND,
        )
        .await;
    browser.type_into("#edit-artists", ARTIST).await;
    browser.click("#edit-save").await;
    browser
        .wait_for(
            "the library row with its one artist",
            &format!(
                "const t = document.querySelector('#library-list li.track .artist'); \
                 return !document.getElementById('edit-dialog').open && t && t.innerText === {};",
                json(ARTIST)
            ),
            10 * SECOND,
        )
        .await;
    assert_no_console_errors(browser, PROVOKED, "artists and albums").await;
}
