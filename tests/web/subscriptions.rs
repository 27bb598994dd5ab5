//! Subscriptions (issue 20, ADR 40): subscribe to a loopback feed that answers 429; the
//! first check backs off and the page says the site asked us to slow down and when the
//! next try is; pause and resume say so; unsubscribe empties the list. At 1280 and 390 px.

use crate::checks::{assert_controls_named, assert_fits, assert_no_console_errors, shot, SECOND};
use crate::{Story, PROVOKED};

const STATUS: &str =
    "const s = document.querySelector('#subscriptions-list li .subscription-status'); \
    return s ? s.innerText : null;";

async fn status_is(story: &Story, what: &str, starts: &str) -> String {
    let script = format!(
        "const s = document.querySelector('#subscriptions-list li .subscription-status'); \
         return !!s && s.innerText.startsWith({starts:?}) && s.innerText;"
    );
    story
        .browser
        .wait_for(what, &script, 30 * SECOND)
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn subscribe_back_off_pause_and_unsubscribe(story: &Story) {
    let browser = &story.browser;
    browser.resize(1280, 800).await;
    browser.click("a[data-view=subscriptions]").await;
    browser
        .wait_for(
            "the subscriptions view",
            "return !document.getElementById('view-subscriptions').hidden \
               && document.getElementById('subscriptions-message').innerText === 'No subscriptions yet.';",
            10 * SECOND,
        )
        .await;
    let busy = story.system.media.status_url(429, "busy-feed.xml");
    browser.type_into("#subscription-url", &busy).await;
    browser.type_into("#subscription-latest", "5").await;
    browser.click("#subscription-new button[type=submit]").await;

    // The first check meets 429: the row says who asked us to slow down, and until when.
    let said = status_is(
        story,
        "the backoff shown",
        "127.0.0.1 asked us to slow down",
    )
    .await;
    let next_try = ends_with_a_time(&said);
    assert!(
        said.starts_with("127.0.0.1 asked us to slow down; next try at ") && next_try,
        "{said}"
    );
    let row = browser.text("#subscriptions-list li").await;
    assert!(row.contains(&busy), "{row}");
    assert_fits(browser, "subscriptions at 1280").await;
    assert_controls_named(browser, "subscriptions").await;
    browser
        .screenshot(&shot("subscriptions-1-backing-off"))
        .await;
    browser.resize(390, 844).await;
    browser
        .wait_for(
            "the narrow layout",
            "return window.innerWidth <= 420;",
            5 * SECOND,
        )
        .await;
    assert_fits(browser, "subscriptions at 390").await;
    browser
        .exec(
            "document.querySelector('#subscriptions-list li').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot(&shot("subscriptions-2-390")).await;
    browser.resize(1280, 800).await;

    // Pause, then resume: the backoff still stands after it.
    browser
        .click("#subscriptions-list li button[aria-label^='Pause']")
        .await;
    status_is(story, "paused", "Paused: no checks until you resume it.").await;
    browser
        .click("#subscriptions-list li button[aria-label^='Resume']")
        .await;
    status_is(story, "resumed", "127.0.0.1 asked us to slow down").await;

    // Unsubscribe: the list is empty.
    browser
        .click("#subscriptions-list li button[aria-label^='Unsubscribe']")
        .await;
    browser.accept_dialog().await;
    browser
        .wait_for(
            "the list emptied",
            "return document.querySelectorAll('#subscriptions-list li').length === 0 \
               && document.getElementById('subscriptions-message').innerText.startsWith('Unsubscribed from');",
            10 * SECOND,
        )
        .await;
    assert_eq!(browser.exec(STATUS, vec![]).await, serde_json::Value::Null);
    assert_no_console_errors(browser, PROVOKED, "subscriptions").await;
}

/// The sentence ends with a time of day ("… next try at 14:05.", or with a date first).
fn ends_with_a_time(said: &str) -> bool {
    let Some(tail) = said.strip_suffix('.') else {
        return false;
    };
    let time = tail.rsplit(' ').next().unwrap_or_default();
    let parts: Vec<&str> = time.split(':').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}
