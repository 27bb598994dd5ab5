//! What the browser test checks on every page: the page fits the screen, every shown
//! control has a name, nothing went to the console as an error; and the session checks
//! it runs at each origin.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::webdriver::Browser;

pub const SECOND: Duration = Duration::from_secs(1);

pub fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/screenshots")
        .join(format!("{name}.png"))
}

/// True if the element matching `css` is shown.
pub fn shown(css: &str) -> String {
    format!("const e = document.querySelector('{css}'); return !!(e && e.getClientRects().length);")
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

pub async fn assert_controls_named(browser: &Browser, screen: &str) {
    let unnamed = browser.exec(UNNAMED_CONTROLS, vec![]).await;
    assert_eq!(unnamed, json!([]), "controls without a name on {screen}");
}

/// The page is no wider than the window: nothing scrolls sideways.
pub async fn assert_fits(browser: &Browser, screen: &str) {
    let widths = browser
        .exec(
            "return [document.documentElement.scrollWidth, window.innerWidth, \
               [...document.querySelectorAll('body *')].filter((e) => { \
                 const r = e.getBoundingClientRect(); \
                 return r.width && e.getClientRects().length && r.right > window.innerWidth + 1; }) \
                 .slice(0, 3).map((e) => e.outerHTML.slice(0, 120))];",
            vec![],
        )
        .await;
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "{screen} is wider than the {} px window: {widths}",
        widths[1]
    );
    // Tables scroll inside their own box: that must not be needed either.
    let scrolling = browser
        .exec(
            "return [...document.querySelectorAll('.table-wrap')]                .filter((e) => e.getClientRects().length && e.scrollWidth > e.clientWidth + 1)                .map((e) => [e.scrollWidth, e.clientWidth, e.innerText.slice(0, 60)]);",
            vec![],
        )
        .await;
    assert_eq!(scrolling, json!([]), "{screen}: a table scrolls sideways");
}

/// Opens each view (`#/name`, optionally an admin tab) and checks it fits and names its
/// controls.
pub async fn assert_views_fit(browser: &Browser, views: &[&str], size: &str) {
    for view in views {
        let (hash, tab) = view.split_once(':').unwrap_or((view, ""));
        browser
            .exec(
                "window.location.hash = '#/' + arguments[0];",
                vec![json!(hash)],
            )
            .await;
        browser
            .wait_for(
                &format!("the {hash} view"),
                &format!("return !document.getElementById('view-{hash}').hidden;"),
                5 * SECOND,
            )
            .await;
        if !tab.is_empty() {
            browser.click(&format!("[data-admin={tab}]")).await;
            browser
                .wait_for(
                    &format!("the admin {tab} tab loaded"),
                    &format!(
                        "const p = document.getElementById('admin-{tab}'); \
                         return !p.hidden && !p.innerText.includes('Loading');"
                    ),
                    10 * SECOND,
                )
                .await;
        }
        let screen = format!("{view} at {size}");
        assert_fits(browser, &screen).await;
        assert_controls_named(browser, &screen).await;
        browser
            .screenshot(&shot(&format!("fit-{size}-{}", view.replace(':', "-"))))
            .await;
    }
}

/// The console's errors since the last call, less the ones a step provoked on purpose
/// (each `allowed` entry is a substring of the message and says why in the caller).
pub async fn assert_no_console_errors(browser: &Browser, allowed: &[&str], during: &str) {
    let errors: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .map(|(_, message)| message)
        .filter(|message| !allowed.iter().any(|a| message.contains(a)))
        .collect();
    assert!(
        errors.is_empty(),
        "console errors during {during}: {errors:#?}"
    );
}

/// At `origin`: sign in, a reload keeps the session, sign-out ends it on the server
/// (the refresh cookie the browser held is refused afterwards).
pub async fn session_at(
    browser: &Browser,
    http: &reqwest::Client,
    origin: &str,
    email: &str,
    password: &str,
) {
    browser.goto(&format!("{origin}/")).await;
    browser
        .wait_for(
            &format!("the sign-in screen at {origin}"),
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
    browser.type_into("#signin-email", email).await;
    browser.type_into("#signin-password", password).await;
    browser.click("#signin-submit").await;
    browser
        .wait_for(
            &format!("signed in at {origin}"),
            &shown("#app-screen"),
            15 * SECOND,
        )
        .await;
    browser.reload().await;
    browser
        .wait_for(
            &format!("the session restored by a reload at {origin}"),
            "return document.body.dataset.ready === 'signed-in' \
             && !document.getElementById('app-screen').hidden;",
            10 * SECOND,
        )
        .await;
    let host = url::Url::parse(origin)
        .unwrap()
        .host_str()
        .unwrap()
        .to_owned();
    let cookie = browser
        .cookie(&host, "jukebox_refresh")
        .await
        .unwrap_or_else(|| panic!("no refresh cookie at {origin}"));
    browser.click("#signout").await;
    let said = browser
        .wait_for(
            &format!("signed out at {origin}"),
            "return document.body.dataset.ready === 'signed-out' \
               ? document.getElementById('auth-message').innerText : null;",
            10 * SECOND,
        )
        .await;
    assert_eq!(said, "You are signed out.", "at {origin}");
    let refused = http
        .post(format!("{origin}/api/auth/refresh"))
        .header("Origin", origin)
        .header("Cookie", format!("jukebox_refresh={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "the refresh cookie still works after sign-out at {origin}: {}",
        refused.text().await.unwrap()
    );
    // And a reload stays signed out, with nothing to say about it.
    browser.reload().await;
    browser
        .wait_for(
            "signed out after a reload",
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
}
