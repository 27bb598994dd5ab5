//! A forgotten password reset through the mailed link (issue 21): "Forgot password?" on
//! the sign-in screen, the mail read from a loopback SMTP server, the link opened in the
//! browser, a new password; the old one fails, the new one works, the sessions opened
//! before are gone. Then the devices on "Apps & devices": this one and another, which is
//! signed out from here; and "Download my data".

use std::sync::{Arc, Mutex};

use jukebox_test_support::smtp::{link_after, messages_to, Received};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::checks::{assert_fits, assert_no_console_errors, shot, shown, SECOND};
use crate::helpers::PASSWORD;
use crate::{Story, PROVOKED};

const EMAIL: &str = "forgetful@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase";

pub async fn reset_and_devices(story: &Story, inbox: &Arc<Mutex<Vec<Received>>>) {
    let Story {
        browser,
        system,
        local: _,
        named,
        stream: _,
        media_url: _,
        missing_url: _,
    } = story;
    let app = &system.app;
    // An account with a session elsewhere (another browser, signed in over HTTP).
    let elsewhere = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let signup: Value = elsewhere
        .post(app.api("/auth/signup"))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verified = elsewhere
        .post(app.api("/auth/verify-email"))
        .json(&json!({ "token": signup["verification_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
    let sign_in = |password: &'static str| {
        let client = elsewhere.clone();
        let url = app.api("/auth/signin");
        async move {
            client
                .post(url)
                .json(&json!({ "email": EMAIL, "password": password }))
                .send()
                .await
                .unwrap()
        }
    };
    let old = sign_in(PASSWORD).await;
    assert_eq!(old.status(), StatusCode::OK);
    let old_access = old.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = |access: String| {
        let url = app.api("/auth/me");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(old_access.clone()).await, StatusCode::OK);

    // "Forgot password?" on the sign-in screen.
    browser.goto(&format!("{named}/")).await;
    let ready = browser
        .wait_for(
            "the page ready",
            "return document.body.dataset.ready || null;",
            10 * SECOND,
        )
        .await;
    if ready == "signed-in" {
        browser.click("#signout").await;
        browser
            .wait_for("signed out", &shown("#auth-screen"), 10 * SECOND)
            .await;
    }
    browser.click("#forgot-open").await;
    browser.type_into("#forgot-email", EMAIL).await;
    browser.click("#forgot-submit").await;
    let said = browser
        .wait_for(
            "the link promised",
            "const m = document.getElementById('auth-message'); \
             return m.dataset.kind === 'ok' ? m.innerText : null;",
            10 * SECOND,
        )
        .await;
    assert!(
        said.as_str()
            .unwrap()
            .contains("a link to choose a new password is on its way"),
        "{said}"
    );
    browser.screenshot(&shot("16-forgot-password")).await;

    // The mail, read from the SMTP server; its link opened in the browser.
    let subject = "Reset your Jukebox password";
    let mail = wait_for_mail(inbox, subject).await;
    let link = link_after(&mail, &format!("{named}/?reset=")).expect("a reset link");
    browser.goto(&format!("{named}/?reset={link}")).await;
    browser
        .wait_for("the reset form", &shown("#reset-form"), 10 * SECOND)
        .await;
    for (size, width, height) in [("1280", 1280, 800), ("390", 390, 844)] {
        browser.resize(width, height).await;
        assert_fits(browser, &format!("reset-{size}")).await;
        browser
            .screenshot(&shot(&format!("17-reset-password-{size}")))
            .await;
    }
    browser.resize(1280, 800).await;
    browser.type_into("#reset-password", NEW_PASSWORD).await;
    browser.click("#reset-submit").await;
    let said = browser
        .wait_for(
            "the new password set",
            "const m = document.getElementById('auth-message'); \
             return m.dataset.kind === 'ok' && m.innerText.includes('new password is set') \
               ? m.innerText : null;",
            10 * SECOND,
        )
        .await;
    assert!(said.as_str().unwrap().contains("Sign in"), "{said}");

    // The sessions opened before are gone; the old password fails, the new one works.
    assert_eq!(me(old_access).await, StatusCode::UNAUTHORIZED);
    let stale = elsewhere
        .post(app.api("/auth/refresh"))
        .header("origin", named.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    browser.type_into("#signin-email", EMAIL).await;
    browser.type_into("#signin-password", PASSWORD).await;
    browser.click("#signin-submit").await;
    browser
        .wait_for(
            "the old password refused",
            "const m = document.getElementById('auth-message'); \
             return m.dataset.kind === 'error' ? m.innerText : null;",
            10 * SECOND,
        )
        .await;
    browser.type_into("#signin-password", NEW_PASSWORD).await;
    browser.click("#signin-submit").await;
    browser
        .wait_for("signed in", &shown("#app-screen"), 15 * SECOND)
        .await;

    // Devices: this one and the other browser, which is signed out from here.
    assert_eq!(sign_in(NEW_PASSWORD).await.status(), StatusCode::OK);
    browser.goto(&format!("{named}/#/apps")).await;
    browser
        .wait_for(
            "two devices",
            "return document.querySelectorAll('#devices-list li').length === 2 || null;",
            10 * SECOND,
        )
        .await;
    let current = browser.text("#devices-list li .badge").await;
    assert_eq!(current, "this device");
    for (size, width, height) in [("1280", 1280, 800), ("390", 390, 844)] {
        browser.resize(width, height).await;
        assert_fits(browser, &format!("devices-{size}")).await;
        browser
            .screenshot(&shot(&format!("18-devices-{size}")))
            .await;
    }
    browser.resize(1280, 800).await;
    browser
        .click("#devices-list li:not(:has(.badge)) button")
        .await;
    browser
        .wait_for(
            "the other device signed out",
            "return document.querySelectorAll('#devices-list li').length === 1 \
               && document.getElementById('devices-message').dataset.kind === 'ok' || null;",
            10 * SECOND,
        )
        .await;
    let stale = elsewhere
        .post(app.api("/auth/refresh"))
        .header("origin", named.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    // "Download my data": the archive is fetched with the access token and handed to the
    // browser as a download (its contents: tests/import/export.rs).
    browser.click("#export-download").await;
    let said = browser
        .wait_for(
            "the export downloaded",
            "const m = document.getElementById('export-message'); \
             return m.dataset.kind === 'ok' ? m.innerText : null;",
            15 * SECOND,
        )
        .await;
    assert_eq!(said, "Your data is downloaded.");
    // "Delete my account" (erasure, ADR 42): a wrong password is refused with a message
    // and deletes nothing; the right one signs out with a message, and the address no
    // longer signs in (it could sign up again as someone new: tests/import/erasure.rs).
    browser
        .type_into("#erase-password", "not my password at all")
        .await;
    browser.click("#erase-form button[type=submit]").await;
    browser.accept_dialog().await;
    let refused = browser
        .wait_for(
            "a wrong password refused",
            "const m = document.getElementById('erase-message'); \
             return m.dataset.kind === 'error' ? m.innerText : null;",
            10 * SECOND,
        )
        .await;
    assert!(
        refused.as_str().unwrap_or_default().contains("password"),
        "{refused}"
    );
    assert_eq!(sign_in(NEW_PASSWORD).await.status(), StatusCode::OK);
    browser.screenshot(&shot("18-erase-refused-1280")).await;
    browser
        .exec(
            "document.getElementById('erase-password').value = '';",
            vec![],
        )
        .await;
    browser.type_into("#erase-password", NEW_PASSWORD).await;
    browser.click("#erase-form button[type=submit]").await;
    browser.accept_dialog().await;
    let said = browser
        .wait_for(
            "the account deleted and signed out",
            "const e = document.getElementById('auth-screen'); \
             const m = document.getElementById('auth-message'); \
             return e.getClientRects().length && m.dataset.kind === 'ok' ? m.innerText : null;",
            15 * SECOND,
        )
        .await;
    assert_eq!(
        said,
        "Your account is deleted. The address can sign up again as someone new."
    );
    browser.screenshot(&shot("18-erased-1280")).await;
    assert_eq!(
        sign_in(NEW_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_no_console_errors(
        browser,
        &[
            PROVOKED,
            &["/api/auth/signin", "/api/me", "/api/auth/logout"],
        ]
        .concat(),
        "the password reset, the devices, the export and the erasure",
    )
    .await;
}

/// Mail is the reactor's asynchronous work: no position marks it sent.
async fn wait_for_mail(inbox: &Arc<Mutex<Vec<Received>>>, subject: &str) -> Received {
    for _ in 0..200 {
        let found = messages_to(inbox, EMAIL)
            .into_iter()
            .find(|m| m.data.contains(subject));
        if let Some(mail) = found {
            return mail;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no mail to {EMAIL} with {subject:?} in 20 s");
}
