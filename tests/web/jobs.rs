//! Every view at 390 and 1280, removing a track (its job no longer offers Play),
//! clearing finished jobs, several uploads and a drop, and a job that retries then gives up.

use serde_json::json;

use crate::checks::{assert_views_fit, shot, shown, SECOND};
use crate::helpers::tone;
use crate::{Story, TITLE};

pub async fn views_removal_uploads_retries(story: &Story, job_id: &str) {
    let Story {
        browser,
        system,
        local: _,
        named: _,
        stream: _,
        media_url: _,
        missing_url: _,
    } = story;
    // Every view fits a phone and a desktop, and names its controls.
    let views = [
        "library",
        "artists",
        "albums",
        "favourites",
        "playlists",
        "search",
        "jobs",
        "queue",
        "apps",
    ];
    browser.resize(390, 844).await;
    browser
        .wait_for(
            "the narrow layout",
            "return window.innerWidth <= 420;",
            5 * SECOND,
        )
        .await;
    assert_views_fit(browser, &views, "390").await;
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    browser.find("#library-list li.track").await;
    let offscreen = browser
        .exec(
            "return ['#playpause', '#prev', '#next', '#seek', '#now-cover', \
                     '#library-list li.track .cover-button'] \
               .filter((css) => { const r = document.querySelector(css).getBoundingClientRect(); \
                 return !(r.width > 0 && r.left >= 0 && r.right <= window.innerWidth \
                          && r.top >= 0 && r.bottom <= window.innerHeight); });",
            vec![],
        )
        .await;
    assert_eq!(offscreen, json!([]), "off the phone screen");
    browser.screenshot(&shot("08-phone-library")).await;
    browser.resize(1280, 800).await;
    browser
        .wait_for(
            "the wide layout",
            "return window.innerWidth >= 1200;",
            5 * SECOND,
        )
        .await;
    assert_views_fit(browser, &views, "1280").await;
    apps_and_devices(browser).await;
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    browser.find("#library-list li.track").await;

    // Remove it from the library: it goes, a reload does not bring it back, and its job
    // no longer offers to play it.
    browser.click("#library-list li.track button.danger").await;
    browser.accept_dialog().await;
    let message = browser
        .wait_for(
            "the removal answered",
            "const m = document.getElementById('library-message').innerText; \
             return m.startsWith('Removed') || m.startsWith('Could not remove') ? m : null;",
            10 * SECOND,
        )
        .await;
    assert_eq!(message, format!("Removed “{TITLE}”."));
    assert_eq!(browser.text("#now-title").await, "Nothing playing");
    browser.reload().await;
    browser
        .wait_for(
            "the library reloaded",
            "return document.body.dataset.ready === 'signed-in' \
             && document.getElementById('library-message').innerText.startsWith('Your library is empty');",
            10 * SECOND,
        )
        .await;
    browser.click("a[data-view=jobs]").await;
    let play = browser
        .wait_for(
            "the completed job after a reload",
            &format!(
                "const j = document.querySelector(\"#jobs-list li.job[data-job-id='{job_id}']\"); \
                 return j ? [!!j.querySelector('button[aria-label^=Play]')] : null;"
            ),
            10 * SECOND,
        )
        .await;
    assert_eq!(play, json!([false]), "Play offered for a removed track");
    // Clear finished: both jobs go, and stay gone after a reload.
    browser.click("#jobs-clear").await;
    assert_eq!(
        browser
            .exec(
                "return document.querySelectorAll('#jobs-list li.job').length;",
                vec![]
            )
            .await,
        0
    );
    browser.reload().await;
    browser
        .wait_for(
            "the jobs view after a reload",
            "return document.body.dataset.ready === 'signed-in' \
             && document.getElementById('jobs-message').innerText.startsWith('No imports');",
            10 * SECOND,
        )
        .await;
    browser.screenshot(&shot("09-removed")).await;

    // Several files at once, then one dropped on the page: each becomes an import.
    let files: Vec<String> = [5, 6, 7]
        .iter()
        .map(|n| {
            let name = format!("upload-{n}.mp3");
            system.tone(&name, &tone(*n));
            system.media_dir.path().join(name).display().to_string()
        })
        .collect();
    browser.click("a[data-view=search]").await;
    browser
        .keys("#upload-file", &format!("{}\n{}", files[0], files[1]))
        .await;
    browser.click("#upload-form button[type=submit]").await;
    browser
        .wait_for(
            "two uploads received",
            "return document.getElementById('import-message').innerText \
               .startsWith('2 files received');",
            30 * SECOND,
        )
        .await;
    browser.keys("#upload-file", &files[2]).await;
    browser
        .exec(
            "const input = document.getElementById('upload-file'); \
             const dt = new DataTransfer(); dt.items.add(input.files[0]); input.value = ''; \
             document.body.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true })); \
             document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await;
    browser
        .wait_for(
            "the dropped file received",
            "return document.getElementById('import-message').innerText \
               .startsWith('Upload received');",
            30 * SECOND,
        )
        .await;
    assert!(!browser
        .exec(&shown("#drop-zone"), vec![])
        .await
        .as_bool()
        .unwrap());
    browser.click("a[data-view=jobs]").await;
    browser
        .wait_for(
            "three uploads imported",
            "return document.querySelectorAll('#jobs-list li.job[data-status=completed]').length === 3;",
            60 * SECOND,
        )
        .await;

    // A site that keeps answering 503: the job says it is retrying, and when, then
    // gives up with a sentence.
    let down = system.media.flaky_url(1000, "upload-5.mp3");
    browser.click("a[data-view=search]").await;
    browser.type_into("#import-url", &down).await;
    browser.click("#url-form button[type=submit]").await;
    browser.click("a[data-view=jobs]").await;
    let retrying = browser
        .wait_for(
            "the job retrying",
            "const s = [...document.querySelectorAll('#jobs-list li.job .job-stage')] \
               .map((e) => e.innerText).find((t) => t.startsWith('Retrying')); return s || null;",
            30 * SECOND,
        )
        .await;
    let retrying = retrying.as_str().unwrap();
    assert!(
        retrying.starts_with("Retrying (attempt 2 of 3, next in ") && retrying.ends_with(" s)"),
        "{retrying}"
    );
    browser.screenshot(&shot("09-retrying")).await;
    let gave_up = browser
        .wait_for(
            "the job given up",
            "const j = document.querySelector('#jobs-list li.job[data-status=failed]'); \
             return j ? j.querySelector('.job-error').innerText : null;",
            60 * SECOND,
        )
        .await;
    assert_eq!(
        gave_up,
        "Jukebox could not reach the site, even after several tries. Check the link, or try again later."
    );
}

/// Apps & devices: a credential is created with its secret shown once beside the server
/// address, listed without it, and revoked.
async fn apps_and_devices(browser: &crate::webdriver::Browser) {
    browser
        .exec("window.location.hash = '#/apps';", vec![])
        .await;
    browser.type_into("#apps-name", "Phone").await;
    browser.click("#apps-form button[type=submit]").await;
    let secret = browser
        .wait_for(
            "the new credential's secret",
            "const s = document.getElementById('apps-secret'); \
             return s && !document.getElementById('apps-new').hidden ? s.innerText : null;",
            10 * SECOND,
        )
        .await;
    let secret = secret.as_str().unwrap().to_owned();
    assert!(
        secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
        "{secret}"
    );
    let shown = browser.text("#apps-new").await;
    assert!(
        shown.contains("Server") && shown.contains(&secret),
        "{shown}"
    );
    browser
        .wait_for(
            "the credential listed",
            "return document.querySelectorAll('#apps-list li').length === 1;",
            5 * SECOND,
        )
        .await;
    let listed = browser.text("#apps-list").await;
    assert!(
        listed.contains("Phone") && listed.contains("never used"),
        "{listed}"
    );
    assert!(!listed.contains(&secret));
    // Coming back to the page never shows the secret again.
    browser
        .exec("window.location.hash = '#/library';", vec![])
        .await;
    browser
        .exec("window.location.hash = '#/apps';", vec![])
        .await;
    browser
        .wait_for(
            "the page without the secret",
            "return document.getElementById('apps-new').hidden;",
            5 * SECOND,
        )
        .await;
    browser.click("#apps-list li button").await;
    browser.accept_dialog().await;
    browser
        .wait_for(
            "the credential revoked",
            "return document.querySelectorAll('#apps-list li').length === 0;",
            5 * SECOND,
        )
        .await;
}
