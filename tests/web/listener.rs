//! Signing up (the mailed link, used twice), search, a failed import read as a
//! sentence, an import followed live and labelled by its song, retrying a failed job.

use serde_json::json;

use crate::checks::{
    assert_controls_named, assert_fits, assert_no_console_errors, shot, shown, SECOND,
};
use crate::helpers::PASSWORD;
use crate::{Story, ARTIST, TITLE, USER};

pub async fn sign_up_search_import(story: &Story) -> String {
    let Story {
        browser,
        system: _,
        local,
        named: _,
        stream: _,
        media_url,
        missing_url,
    } = story;
    let origin = local.clone();
    // Sign up, confirm the address, sign in. No session yet: the page asks for none.
    browser.goto(&format!("{origin}/")).await;
    browser
        .wait_for(
            "the sign-in screen",
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
    assert_no_console_errors(browser, &[], "the first page load").await;
    assert!(!browser
        .exec(&shown("#provider-signin"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.screenshot(&shot("01-sign-in")).await;
    browser.click("#tab-signup").await;
    browser.type_into("#signup-email", USER).await;
    browser.type_into("#signup-password", PASSWORD).await;
    browser.click("#signup-submit").await;
    browser.find("#verify-link").await;
    let said = browser.text("#auth-message").await;
    assert!(
        said.contains(&format!("We sent a link to {USER}")),
        "{said}"
    );
    assert!(browser
        .exec(&shown("#resend-submit"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.screenshot(&shot("02-signed-up")).await;
    let link = browser
        .exec(
            "return document.getElementById('verify-link').href;",
            vec![],
        )
        .await;
    browser.click("#verify-link").await;
    browser
        .wait_for(
            "the address confirmed",
            "return document.getElementById('auth-message').innerText.includes('Address confirmed');",
            10 * SECOND,
        )
        .await;
    // The same link again: said plainly, with a way to ask for a new one.
    browser.goto(link.as_str().unwrap()).await;
    let reused = browser
        .wait_for(
            "the used link refused",
            "const m = document.getElementById('auth-message'); \
             return m.dataset.kind === 'error' ? m.innerText : null;",
            10 * SECOND,
        )
        .await;
    assert!(
        reused.as_str().unwrap().contains("already used"),
        "{reused}"
    );
    // Its one console error is the refused link's 400, which the step asked for.
    assert_no_console_errors(browser, &["/api/auth/verify-email"], "the used link").await;
    assert!(browser
        .exec(&shown("#resend-form"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.resize(390, 844).await;
    assert_fits(browser, "the sign-in screen with the resend form at 390").await;
    assert_controls_named(browser, "the sign-in screen").await;
    browser.screenshot(&shot("02-link-used-phone")).await;
    browser.resize(1280, 800).await;
    // Asking again answers the same whoever asks (the address is confirmed already).
    browser.type_into("#resend-email", USER).await;
    browser.click("#resend-submit").await;
    let resent = browser
        .wait_for(
            "the resend answered",
            "const m = document.getElementById('auth-message'); \
             return m.innerText.startsWith('This link') ? null : m.innerText;",
            10 * SECOND,
        )
        .await;
    assert_eq!(
        resent,
        format!("If {USER} has an account that is not confirmed yet, a new link is on its way. Open it, then sign in.")
    );
    assert!(
        browser
            .exec(
                "return document.getElementById('resend-submit').disabled;",
                vec![]
            )
            .await
            .as_bool()
            .unwrap(),
        "the button waits before it sends again"
    );
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
    assert_controls_named(browser, "search results").await;
    browser.screenshot(&shot("04-search")).await;

    // A link with nothing behind it: the notice that said it started says how it ended,
    // in a sentence, not in the tool's words.
    browser.type_into("#import-url", missing_url).await;
    browser.click("#url-form button[type=submit]").await;
    let failed = browser
        .wait_for(
            "the failed import's notice",
            "const m = document.getElementById('import-message'); \
             return m.dataset.kind === 'error' ? m.innerText : null;",
            30 * SECOND,
        )
        .await;
    let failed = failed.as_str().unwrap();
    assert!(
        failed.contains("That video or file is not available") && !failed.contains("HTTP Error"),
        "{failed}"
    );
    assert!(
        !browser
            .exec(&shown("#toast"), vec![])
            .await
            .as_bool()
            .unwrap(),
        "a second notice"
    );

    // Import from a link; the jobs panel follows it live until it completes.
    browser.type_into("#import-url", media_url).await;
    browser.click("#url-form button[type=submit]").await;
    browser.click("a[data-view=jobs]").await;
    browser.find("#jobs-list li.job").await;
    browser.screenshot(&shot("05-job-running")).await;
    let done = browser
        .wait_for(
            "the job completed, labelled by its tags",
            &format!(
                "const j = document.querySelector('#jobs-list li.job[data-status=completed]'); \
                 return j && j.innerText.includes('{TITLE} — {ARTIST}') ? j.innerText : null;"
            ),
            60 * SECOND,
        )
        .await;
    assert!(done.as_str().unwrap().contains("Done"), "{done}");
    let jobs_text = browser.text("#jobs-list").await;
    assert!(!jobs_text.contains("null"), "{jobs_text}");
    let failed_job = browser
        .exec(
            "const j = document.querySelector('#jobs-list li.job[data-status=failed]'); \
             return [j.querySelector('.job-error').innerText, !!j.querySelector('button[aria-label^=Retry]'), \
                     !!j.querySelector('details')];",
            vec![],
        )
        .await;
    assert_eq!(
        failed_job,
        json!([
            "That video or file is not available (removed, private or blocked). Try another link.",
            true,
            false
        ]),
        "the failed job (no admin details for a listener)"
    );
    let job_id = browser
        .exec(
            "return document.querySelector('#jobs-list li.job[data-status=completed]').dataset.jobId;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    browser.screenshot(&shot("06-job-done")).await;
    // Retry starts the same link again as a new job, in place of the failed one.
    let failed_id = browser
        .exec(
            "return document.querySelector('#jobs-list li.job[data-status=failed]').dataset.jobId;",
            vec![],
        )
        .await;
    browser
        .click("#jobs-list li.job[data-status=failed] button[aria-label^=Retry]")
        .await;
    browser
        .wait_for(
            "the retried job failed again, alone",
            &format!(
                "const f = [...document.querySelectorAll('#jobs-list li.job[data-status=failed]')]; \
                 return f.length === 1 && f[0].dataset.jobId !== {failed_id} \
                   && !document.querySelector('li.job[data-job-id=' + JSON.stringify({failed_id}) + ']');"
            ),
            30 * SECOND,
        )
        .await;

    job_id
}
