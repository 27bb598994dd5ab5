//! Favourites (issue 19): star a track in the library, find it in Favourites (at 1280 and
//! 390 px), unstar it there.

use crate::checks::{assert_controls_named, assert_fits, assert_no_console_errors, shot, SECOND};
use crate::{Story, PROVOKED};

pub async fn star_a_track_and_find_it_in_favourites(story: &Story) {
    let browser = &story.browser;
    browser.resize(1280, 800).await;
    browser.click("a[data-view=library]").await;
    let title = browser
        .wait_for(
            "a library row with its star",
            "const r = document.querySelector('#library-list li.track'); \
             return !document.getElementById('view-library').hidden && r && r.querySelector('button.star') \
               && r.querySelector('.title').innerText;",
            10 * SECOND,
        )
        .await;
    let title = title.as_str().unwrap().to_owned();
    browser.click("#library-list li.track button.star").await;
    browser
        .wait_for(
            "the star to be on",
            "const b = document.querySelector('#library-list li.track button.star'); \
             return b && !b.disabled && b.getAttribute('aria-pressed') === 'true';",
            10 * SECOND,
        )
        .await;
    browser
        .screenshot(&shot("favourites-1-starred-in-library"))
        .await;

    // The Favourites view lists it (the read waits for the star's position).
    browser.click("a[data-view=favourites]").await;
    let listed = browser
        .wait_for(
            "the starred track in Favourites",
            "const t = [...document.querySelectorAll('#favourite-tracks li.track .title')]; \
             return !document.getElementById('view-favourites').hidden && t.length && t.map((e) => e.innerText);",
            10 * SECOND,
        )
        .await;
    assert_eq!(listed, serde_json::json!([title]));
    assert_eq!(
        browser
            .exec(
                "return document.querySelector('#favourite-tracks button.star').getAttribute('aria-pressed');",
                vec![],
            )
            .await,
        "true"
    );
    assert_fits(browser, "favourites at 1280").await;
    assert_controls_named(browser, "favourites").await;
    browser.screenshot(&shot("favourites-2-view")).await;
    browser.resize(390, 844).await;
    browser
        .wait_for(
            "the narrow layout",
            "return window.innerWidth <= 420;",
            5 * SECOND,
        )
        .await;
    assert_fits(browser, "favourites at 390").await;
    browser.screenshot(&shot("favourites-2-view-390")).await;
    browser.resize(1280, 800).await;

    // Unstarred there, it is gone from Favourites after a reload of the view.
    browser.click("#favourite-tracks button.star").await;
    browser
        .wait_for(
            "the star to be off",
            "const b = document.querySelector('#favourite-tracks button.star'); \
             return b && !b.disabled && b.getAttribute('aria-pressed') === 'false';",
            10 * SECOND,
        )
        .await;
    browser.click("a[data-view=library]").await;
    browser.click("a[data-view=favourites]").await;
    browser
        .wait_for(
            "Favourites without the track",
            "return !document.getElementById('view-favourites').hidden \
               && document.getElementById('favourites-message').innerText.startsWith('Nothing starred') \
               && !document.querySelector('#favourite-tracks li');",
            10 * SECOND,
        )
        .await;
    assert_no_console_errors(browser, PROVOKED, "favourites").await;
}
