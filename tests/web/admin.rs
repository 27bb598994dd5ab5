//! The session at both origins (reload keeps it, sign-out ends it on the server), then
//! the admin: users with confirmations and in-place rows, songs, jobs, the audit page.

use serde_json::{json, Value};

use crate::checks::{
    assert_controls_named, assert_no_console_errors, assert_views_fit, session_at, shot, shown,
    SECOND,
};
use crate::helpers::PASSWORD;
use crate::{Story, ADMIN, ARTIST, PROVOKED, TITLE, USER};

pub async fn sessions_and_admin(story: &Story, job_id: &str, track_id: &str) {
    let Story {
        browser,
        system,
        local,
        named,
        stream: _,
        media_url,
        missing_url: _,
    } = story;
    // Sign out here; then, at both origins, a reload keeps the session and sign-out ends
    // it on the server.
    browser.click("#signout").await;
    browser
        .wait_for("signed out", &shown("#auth-screen"), 10 * SECOND)
        .await;
    let http = system.app.http.clone();
    session_at(browser, &http, local, USER, PASSWORD).await;
    session_at(browser, &http, named, USER, PASSWORD).await;
    assert_no_console_errors(browser, PROVOKED, "the session checks").await;

    // The admin (the bootstrap address, verified) at the other origin sees the user, the
    // song, the job and the job's audit timeline.
    let origin = named.clone();
    let signup: Value = http
        .post(system.app.api("/auth/signup"))
        .json(&json!({ "email": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = http
        .post(system.app.api("/auth/verify-email"))
        .json(&json!({ "token": signup["verification_token"] }))
        .send()
        .await
        .unwrap();
    let verified = system.app.saw(&response);
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    // The role is in the access state sign-in reads at once; the admin screens read the
    // read models, which have applied everything up to the verification.
    let verified = verified.expect("the verification's position");
    system
        .app
        .applied(&verified, jukebox_projections::MODELS)
        .await;
    browser.goto(&format!("{origin}/")).await;
    browser
        .wait_for(
            "the sign-in screen",
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
    browser.type_into("#signin-email", ADMIN).await;
    browser.type_into("#signin-password", PASSWORD).await;
    browser.click("#signin-submit").await;
    browser.click("#admin-link").await;
    let users = browser
        .wait_for(
            "the users table",
            &format!(
                "const t = document.getElementById('admin-users').innerText; \
                 return t.includes('{USER}') ? t : null;"
            ),
            10 * SECOND,
        )
        .await;
    assert!(users.as_str().unwrap().contains(ADMIN));
    assert_controls_named(browser, "the admin's users").await;
    browser.screenshot(&shot("10-admin-users")).await;

    // Disable asks first, and the row says so at once; enable puts it back.
    browser
        .click(&format!("#admin-users button[aria-label='Disable {USER}']"))
        .await;
    browser.accept_dialog().await;
    let row = browser
        .wait_for(
            "the row disabled in place",
            &format!(
                "const r = [...document.querySelectorAll('#admin-users tr')].find((r) => r.innerText.includes('{USER}')); \
                 return r && r.innerText.includes('disabled') ? r.innerText : null;"
            ),
            10 * SECOND,
        )
        .await;
    assert!(row.as_str().unwrap().contains("Enable"), "{row}");
    browser
        .click(&format!("#admin-users button[aria-label='Enable {USER}']"))
        .await;
    browser
        .wait_for(
            "the row enabled in place",
            &format!(
                "const r = [...document.querySelectorAll('#admin-users tr')].find((r) => r.innerText.includes('{USER}')); \
                 return r && r.innerText.includes('active');"
            ),
            10 * SECOND,
        )
        .await;

    // The song and the job, each in its own row of the admin tables.
    for (tab, panel, row, expects, name) in [
        (
            "songs",
            "#admin-songs",
            format!("tr[data-track-id='{track_id}']"),
            vec![TITLE, ARTIST, "0:40", "aac"],
            "11-admin-songs",
        ),
        (
            "jobs",
            "#admin-jobs-table",
            format!("tr[data-job-id='{job_id}']"),
            vec![
                &job_id[job_id.len() - 8..],
                "completed",
                USER,
                media_url.as_str(),
            ],
            "12-admin-jobs",
        ),
    ] {
        browser.click(&format!("[data-admin={tab}]")).await;
        let found = browser
            .wait_for(
                &format!("the admin {tab}"),
                &format!(
                    "const p = document.querySelector('{panel}'); \
                     if (!p.querySelector('table') && !p.querySelector('[data-kind=error]')) return null; \
                     const r = p.querySelector(\"{row}\"); \
                     return [r ? r.innerText : null, p.innerText];"
                ),
                10 * SECOND,
            )
            .await;
        let text = found[0]
            .as_str()
            .unwrap_or_else(|| panic!("no {row} in admin {tab}: {}", found[1]));
        for expect in &expects {
            assert!(text.contains(expect), "admin {tab} lacks {expect}: {text}");
        }
        browser.screenshot(&shot(name)).await;
    }

    // The job's history, from its row in the jobs table: the events in order.
    browser
        .click(&format!(
            "#admin-jobs-table button[aria-label='History of job {job_id}']"
        ))
        .await;
    let timeline = browser
        .wait_for(
            "the job's audit timeline",
            "const r = document.getElementById('audit-result'); \
             if (r.querySelector('[data-kind=error]')) return [r.innerText]; \
             return [...r.querySelectorAll('ol.timeline li')].map((li) => li.dataset.type);",
            10 * SECOND,
        )
        .await;
    let types: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"ImportRequested"), "{types:?}");
    assert_eq!(types.last(), Some(&"ImportCompleted"), "{types:?}");
    assert!(
        types[1..types.len() - 1]
            .iter()
            .all(|t| *t == "ImportStageChanged"),
        "{types:?}"
    );
    assert!(types.len() >= 3, "no stage changes: {types:?}");
    let audit = browser.text("#audit-result").await;
    assert!(
        audit.contains(&format!("import {job_id}")) && audit.contains("Current state"),
        "{audit}"
    );
    browser
        .exec(
            "document.querySelector('#audit-result ol.timeline').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot(&shot("13-admin-audit")).await;
    // The audit page: the folded state as a table, the events beside it.
    let layout = browser
        .exec(
            "const s = document.querySelector('#audit-result .state-table'); \
             const t = document.querySelector('#audit-result ol.timeline'); \
             return s && t ? [s.innerText.includes('Finished'), \
               Math.round(t.getBoundingClientRect().top - s.getBoundingClientRect().top)] : null;",
            vec![],
        )
        .await;
    assert_eq!(
        layout[0], true,
        "no Finished row in the state table: {layout}"
    );
    assert!(
        layout[1].as_i64().unwrap().abs() < 80,
        "the timeline is not beside the state: {layout}"
    );
    assert!(
        !browser.text("#audit-result").await.contains("{\""),
        "state shown as JSON"
    );

    browser.exec("window.scrollTo(0, 0);", vec![]).await;

    // "State as of" a moment before the job: no events yet.
    browser
        .exec(
            "document.getElementById('audit-asof').value = '2000-01-01T00:00:00';",
            vec![],
        )
        .await;
    browser.click("#audit-form button[type=submit]").await;
    let before = browser
        .wait_for(
            "the history as of 2000",
            "const t = document.getElementById('audit-result').innerText; \
             return t.includes('State as of') || t.includes('Could not') ? t : null;",
            10 * SECOND,
        )
        .await;
    let before = before.as_str().unwrap();
    assert!(
        before.contains("No events for this aggregate at that moment")
            && before.contains("version 0"),
        "{before}"
    );

    for (size, width, height) in [("1280", 1280, 800), ("390", 390, 844)] {
        browser.resize(width, height).await;
        assert_views_fit(
            browser,
            &["admin:users", "admin:songs", "admin:jobs", "admin:audit"],
            &format!("admin-{size}"),
        )
        .await;
    }
    browser.resize(1280, 800).await;
    browser.click("#signout").await;
    browser
        .wait_for("the admin signed out", &shown("#auth-screen"), 10 * SECOND)
        .await;
    assert_no_console_errors(browser, PROVOKED, "the admin pages").await;
}
