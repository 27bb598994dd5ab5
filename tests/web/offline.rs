//! A second web role with no YouTube key, no https way out, and an allowed origin that
//! is not its own: search says what still works; a refused sign-out and refresh say why.

use crate::checks::{assert_no_console_errors, shot, shown, SECOND};
use crate::helpers::PASSWORD;
use crate::{free_addr, Story, PROVOKED, USER};
use jukebox::app::{self, Role, RoleOptions};
use jukebox_nats::FailPoints;

pub async fn offline_search_and_refused_origin(story: &Story) {
    let Story {
        browser,
        system,
        local: _,
        named,
        stream: _,
        media_url: _,
        missing_url: _,
    } = story;
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
    assert_no_console_errors(browser, &allowed, "the search without network").await;

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
        browser,
        &["/api/auth/logout", "/api/auth/refresh"],
        "the refused sign-out and refresh",
    )
    .await;
    second.shutdown.cancel();
    second.wait().await.unwrap();
}
