//! Accounts people can manage (issue 21, ADR 29): a forgotten password reset through a
//! mailed link, a changed password, a changed address that counts only once confirmed,
//! the devices list, and two tabs refreshing one session at once.

use std::sync::{Arc, Mutex};

use jukebox::app::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::smtp::{link_after, messages_to, smtp_server, Received};
use crate::support::{eventually, spawn_app_with, TestApp};

pub(crate) const NEW_PASSWORD: &str = "a brand new passphrase";

/// Every role, mail over SMTP to a loopback server, and `extra` settings.
pub(crate) async fn mail_app(extra: &[(&str, &str)]) -> (TestApp, Arc<Mutex<Vec<Received>>>) {
    let (smtp_url, messages) = smtp_server();
    let mut vars: Vec<(&str, String)> = vec![
        ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
        ("SMTP_URL", smtp_url),
        ("MAIL_FROM", "Jukebox <jukebox@mail.test>".into()),
        ("PUBLIC_BASE_URL", "http://jukebox.test".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    (spawn_app_with(&[Role::All], &vars).await, messages)
}

/// The `n`th mail to `to` whose subject has `subject` (mail is the reactor's asynchronous
/// work: no position marks it sent, so this waits for it).
pub(crate) async fn mail(
    messages: &Arc<Mutex<Vec<Received>>>,
    to: &str,
    subject: &str,
    n: usize,
) -> Received {
    let matching = || {
        messages_to(messages, to)
            .into_iter()
            .filter(|m| m.data.contains(subject))
            .collect::<Vec<_>>()
    };
    eventually(&format!("mail {n} to {to}: {subject}"), || async {
        matching().len() > n
    })
    .await;
    matching().remove(n)
}

pub(crate) async fn authed(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    access: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = client.request(method, url).bearer_auth(access);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_forgotten_password_is_reset_by_a_mailed_link_and_every_session_ends() {
    let (app, messages) = mail_app(&[]).await;
    let tab = browser();
    let access = signed_in(&app, &tab, "erin@example.com").await;
    let old_refresh = tab.clone();

    // Known and unknown addresses get the same answer.
    let forgot = |email: &'static str| {
        let tab = tab.clone();
        let url = app.api("/auth/forgot-password");
        async move {
            let response = post(&tab, url, json!({ "email": email })).await;
            (response.status(), response.text().await.unwrap())
        }
    };
    let known = forgot("erin@example.com").await;
    let unknown = forgot("nobody@example.com").await;
    assert_eq!(known.0, StatusCode::ACCEPTED);
    assert_eq!(known, unknown);

    let reset_mail = mail(
        &messages,
        "erin@example.com",
        "Reset your Jukebox password",
        0,
    )
    .await;
    let token = link_after(&reset_mail, "http://jukebox.test/?reset=").expect("a reset link");
    let reset = |token: String, password: &'static str| {
        let tab = tab.clone();
        let url = app.api("/auth/reset-password");
        async move { post(&tab, url, json!({ "token": token, "password": password })).await }
    };
    // A tampered link, or a weak password, changes nothing.
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let refused = reset(tampered, NEW_PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(refused).await, "invalid_token");
    let garbage = reset("not a token".into(), NEW_PASSWORD).await;
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let weak = reset(token.clone(), "short").await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(me(&app, &access).await.status(), StatusCode::OK);

    let done = reset(token.clone(), NEW_PASSWORD).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    // Old password out, new one in; the old session is gone, access token included.
    let old = sign_in(&app, &browser(), "erin@example.com", PASSWORD).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = sign_in(&app, &browser(), "erin@example.com", NEW_PASSWORD).await;
    assert_eq!(new.status(), StatusCode::OK);
    assert_eq!(me(&app, &access).await.status(), StatusCode::UNAUTHORIZED);
    let stale = refresh(&app, &old_refresh).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(stale).await, "session_revoked");
    // A link works once.
    let again = reset(token, "yet another passphrase").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(again).await, "invalid_token");
    // The owner is told.
    let notice = mail(
        &messages,
        "erin@example.com",
        "password of your Jukebox account was changed",
        0,
    )
    .await;
    assert!(notice.data.contains("Forgot password"), "{}", notice.data);
    assert!(
        messages_to(&messages, "nobody@example.com").is_empty(),
        "no mail for an address without an account"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let (app, messages) = mail_app(&[("PASSWORD_RESET_TOKEN_TTL_SECS", "1")]).await;
    let tab = browser();
    signed_in(&app, &tab, "fay@example.com").await;
    let response = post(
        &tab,
        app.api("/auth/forgot-password"),
        json!({ "email": "fay@example.com" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let reset_mail = mail(
        &messages,
        "fay@example.com",
        "Reset your Jukebox password",
        0,
    )
    .await;
    let token = link_after(&reset_mail, "?reset=").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let late = post(
        &tab,
        app.api("/auth/reset-password"),
        json!({ "token": token, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(late).await, "token_expired");
    let still = sign_in(&app, &browser(), "fay@example.com", PASSWORD).await;
    assert_eq!(still.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn a_new_address_counts_only_after_its_link_and_the_old_one_is_told() {
    let (app, messages) = mail_app(&[]).await;
    let tab = browser();
    let access = signed_in(&app, &tab, "gus@example.com").await;
    let change = |email: &'static str, password: &'static str| {
        let tab = tab.clone();
        let url = app.api("/me/email");
        let access = access.clone();
        async move {
            let body = json!({ "email": email, "password": password });
            authed(&tab, reqwest::Method::POST, url, &access, Some(body)).await
        }
    };
    let wrong = change("gus@new.example.com", "not my password").await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(wrong).await, "wrong_password");
    let same = change("gus@example.com", PASSWORD).await;
    assert_eq!(same.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(same).await, "same_email");

    let asked = change("gus@new.example.com", PASSWORD).await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    // Until the link is followed, the account keeps its address.
    let early = sign_in(&app, &browser(), "gus@new.example.com", PASSWORD).await;
    assert_eq!(early.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sign_in(&app, &browser(), "gus@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let link_mail = mail(
        &messages,
        "gus@new.example.com",
        "Confirm your new address",
        0,
    )
    .await;
    let token = link_after(&link_mail, "http://jukebox.test/?confirm-email=").unwrap();
    let confirm = |token: String| {
        let tab = tab.clone();
        let url = app.api("/auth/confirm-email");
        async move { post(&tab, url, json!({ "token": token })).await }
    };
    let confirmed = confirm(token.clone()).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let body: Value = confirmed.json().await.unwrap();
    assert_eq!(body["email"], "gus@new.example.com");
    // The new address signs in, the old one no longer; the session lives on.
    assert_eq!(
        sign_in(&app, &browser(), "gus@new.example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let old = sign_in(&app, &browser(), "gus@example.com", PASSWORD).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let whoami: Value = me(&app, &access).await.json().await.unwrap();
    assert_eq!(whoami["email"], "gus@new.example.com");
    let used = confirm(token).await;
    assert_eq!(used.status(), StatusCode::BAD_REQUEST);
    // The old address is told, and is free for someone else.
    let notice = mail(
        &messages,
        "gus@example.com",
        "address of your Jukebox account was changed",
        0,
    )
    .await;
    assert!(
        notice.data.contains("gus@new.example.com"),
        "{}",
        notice.data
    );
    assert!(notice.data.contains("If it was not you"), "{}", notice.data);
    sign_up(&app, &browser(), "gus@example.com").await;

    // A change to an address that has an account by the time the link is followed
    // changes nothing.
    let other = browser();
    let hal = signed_in(&app, &other, "hal@example.com").await;
    let body = json!({ "email": "ivy@example.com", "password": PASSWORD });
    let asked = authed(
        &other,
        reqwest::Method::POST,
        app.api("/me/email"),
        &hal,
        Some(body),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let link_mail = mail(&messages, "ivy@example.com", "Confirm your new address", 0).await;
    sign_up(&app, &browser(), "ivy@example.com").await;
    let token = link_after(&link_mail, "?confirm-email=").unwrap();
    let taken = confirm(token).await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let whoami: Value = me(&app, &hal).await.json().await.unwrap();
    assert_eq!(whoami["email"], "hal@example.com");
    app.cleanup().await;
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_share_the_new_session_and_a_late_reuse_ends_it() {
    let app = app(&[("REFRESH_GRACE_MS", "1000")]).await;
    let tab = browser();
    sign_up(&app, &tab, "jan@example.com").await;
    let response = sign_in(&app, &tab, "jan@example.com", PASSWORD).await;
    let first = set_refresh_cookie(&response).unwrap();

    // Two tabs, one cookie, at the same moment: both succeed, with the same new token.
    let (a, b) = tokio::join!(refresh_with(&app, &first), refresh_with(&app, &first));
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let (next_a, next_b) = (
        set_refresh_cookie(&a).unwrap(),
        set_refresh_cookie(&b).unwrap(),
    );
    assert_eq!(next_a, next_b);
    assert_ne!(next_a, first);
    for answer in [a, b] {
        let access = access_token(answer).await;
        assert_eq!(me(&app, &access).await.status(), StatusCode::OK);
    }
    // One rotation on record, not a reuse.
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'session' ORDER BY sequence",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(types, ["SessionStarted", "SessionRefreshed"]);

    // After the window the old token is a stolen copy: the family ends.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let late = refresh_with(&app, &first).await;
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(late).await, "refresh_token_reused");
    let live = refresh_with(&app, &next_a).await;
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(live).await, "session_revoked");
    app.cleanup().await;
}

async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let response = authed(
        &reqwest::Client::new(),
        reqwest::Method::GET,
        app.api("/me/sessions"),
        access,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

/// A tab of another browser (its own user agent and cookies).
fn browser_named(user_agent: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ORIGIN,
        reqwest::header::HeaderValue::from_static(crate::support::ORIGIN),
    );
    reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(user_agent.to_owned())
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test]
async fn devices_are_listed_ended_one_by_one_or_all_but_this_one_and_the_password_changes() {
    let app = app(&[]).await;
    let laptop =
        browser_named("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
    let phone = browser_named(
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36",
    );
    let laptop_access = signed_in(&app, &laptop, "kim@example.com").await;
    let phone_access = access_token(sign_in(&app, &phone, "kim@example.com", PASSWORD).await).await;

    let listed = sessions(&app, &laptop_access).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let mine = listed.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(mine["device"], "Firefox on Linux");
    assert_eq!(mine["client"], "127.0.0.0/24");
    assert!(mine["last_used_at"].is_string() && mine["started_at"].is_string());
    let theirs = listed.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(theirs["device"], "Chrome on Android");
    // This device's own session ends by signing out, not from the list.
    let own = app.api(&format!("/me/sessions/{}", mine["id"].as_str().unwrap()));
    let refused = authed(&laptop, reqwest::Method::DELETE, own, &laptop_access, None).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(refused).await, "current_session");

    // Someone else cannot end it; the owner can, and the phone is out at once.
    let stranger = signed_in(&app, &browser(), "lou@example.com").await;
    let url = app.api(&format!("/me/sessions/{}", theirs["id"].as_str().unwrap()));
    let refused = authed(
        &browser(),
        reqwest::Method::DELETE,
        url.clone(),
        &stranger,
        None,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let bad = authed(
        &browser(),
        reqwest::Method::DELETE,
        app.api("/me/sessions/nope"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let ended = authed(&laptop, reqwest::Method::DELETE, url, &laptop_access, None).await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&app, &phone_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, &phone).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sessions(&app, &laptop_access).await.len(), 1);

    // Sign out everywhere else: this device gets a new session, the others end.
    let phone_access = access_token(sign_in(&app, &phone, "kim@example.com", PASSWORD).await).await;
    let renewed = authed(
        &laptop,
        reqwest::Method::POST,
        app.api("/me/sessions/sign-out-others"),
        &laptop_access,
        None,
    )
    .await;
    assert_eq!(renewed.status(), StatusCode::OK);
    assert!(set_refresh_cookie(&renewed).is_some_and(|c| !c.is_empty()));
    let laptop_access = access_token(renewed).await;
    assert_eq!(me(&app, &laptop_access).await.status(), StatusCode::OK);
    assert_eq!(
        me(&app, &phone_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, &phone).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let listed = sessions(&app, &laptop_access).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["current"], true);
    // The laptop's cookie is the new session's.
    assert_eq!(refresh(&app, &laptop).await.status(), StatusCode::OK);

    // A password change: the current password first, the strength rules, then every
    // other session ends and this one goes on.
    let phone_access = access_token(sign_in(&app, &phone, "kim@example.com", PASSWORD).await).await;
    let change = |current: &'static str, new: &'static str| {
        let laptop = laptop.clone();
        let url = app.api("/me/password");
        let access = laptop_access.clone();
        async move {
            let body = json!({ "current_password": current, "new_password": new });
            authed(&laptop, reqwest::Method::POST, url, &access, Some(body)).await
        }
    };
    let wrong = change("not my password", NEW_PASSWORD).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let weak = change(PASSWORD, "password").await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let changed = change(PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let laptop_access = access_token(changed).await;
    assert_eq!(me(&app, &laptop_access).await.status(), StatusCode::OK);
    assert_eq!(
        me(&app, &phone_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let old = sign_in(&app, &browser(), "kim@example.com", PASSWORD).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = sign_in(&app, &browser(), "kim@example.com", NEW_PASSWORD).await;
    assert_eq!(new.status(), StatusCode::OK);
    app.cleanup().await;
}
