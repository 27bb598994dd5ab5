//! "Sign in with <name>" in Chromium (ADR 44): the button `/settings.json` asks for, the
//! round trip through test-support's loopback OpenID Connect provider, and the app signed
//! in afterwards, at 1280 and 390 px. Then "Link <name>" on Apps & devices (ADR 46): a
//! password account links the provider through the same round trip, sees it listed, and
//! unlinks it.

use jukebox::app::{self, Role, RoleOptions};
use jukebox_test_support::free_addr;
use jukebox_test_support::imports::{import_app, ImportApp, Options};
use jukebox_test_support::oidc::{Consent, OidcProvider};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::checks::{assert_no_console_errors, shot, SECOND};
use crate::webdriver::{Browser, Driver};

/// The app with `provider` as "Keycloak", its web role at a local address (returned).
async fn with_provider(provider: &OidcProvider) -> (ImportApp, String) {
    let web = free_addr();
    let local = format!("http://127.0.0.1:{}", web.port());
    let mut system = import_app(Options {
        roles: &[],
        extra: vec![
            ("OIDC_ID", "keycloak".into()),
            ("OIDC_NAME", "Keycloak".into()),
            ("OIDC_ISSUER", provider.issuer.clone()),
            ("OIDC_CLIENT_ID", "jukebox-web".into()),
            ("OIDC_CLIENT_SECRET", "web-client-secret".into()),
            (
                "OIDC_REDIRECT_URL",
                format!("{local}/api/auth/oidc/keycloak/callback"),
            ),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
        ],
        ..Default::default()
    })
    .await;
    system.app.config.allowed_origins = vec![local.clone()];
    system.app.config.public_base_url = local.clone();
    let mut options = RoleOptions::from_config(&system.app.config, &[Role::All]).unwrap();
    options.api = "127.0.0.1:0".parse().unwrap();
    options.web = web;
    // Port 0: the configuration names no stream origin here, and a port picked free
    // beforehand can be taken by another test before the role binds it.
    options.stream = "127.0.0.1:0".parse().unwrap();
    system.app.running = Some(app::start(&system.app.services, options).await.unwrap());
    (system, local)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_an_openid_connect_provider_in_chromium() {
    let provider = OidcProvider::start("jukebox-web", "web-client-secret").await;
    let (system, local) = with_provider(&provider).await;

    let driver = Driver::start().await;
    for (width, height) in [(1280, 800), (390, 844)] {
        let browser = Browser::open(&driver, width, height).await;
        browser.goto(&format!("{local}/")).await;
        browser
            .wait_for(
                "the sign-in screen",
                "return document.body.dataset.ready === 'signed-out';",
                10 * SECOND,
            )
            .await;
        assert_eq!(
            browser.text("#provider-buttons a").await,
            "Sign in with Keycloak"
        );
        browser
            .screenshot(&shot(&format!("oidc-01-sign-in-{width}")))
            .await;
        let email = format!("kim{width}@example.com");
        provider.next_consent(Consent::verified(&format!("web-{width}"), &email));
        browser.click("#provider-buttons a").await;
        browser
            .wait_for(
                "signed in through Keycloak",
                "return document.body.dataset.ready === 'signed-in';",
                15 * SECOND,
            )
            .await;
        let who = browser
            .exec(
                "return document.getElementById('whoami').textContent;",
                vec![],
            )
            .await;
        assert_eq!(who.as_str(), Some(email.as_str()));
        browser
            .screenshot(&shot(&format!("oidc-02-signed-in-{width}")))
            .await;
        assert_no_console_errors(&browser, &[], "the OpenID Connect sign-in").await;
        browser.close().await;
    }
    drop(driver);
    system.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_account_links_and_unlinks_a_provider_in_chromium() {
    let provider = OidcProvider::start("jukebox-web", "web-client-secret").await;
    let (system, local) = with_provider(&provider).await;
    let app = &system.app;
    let email = "pat@example.com";
    let http = reqwest::Client::new();
    let signup: Value = http
        .post(app.api("/auth/signup"))
        .json(&json!({ "email": email, "password": crate::helpers::PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verified = http
        .post(app.api("/auth/verify-email"))
        .json(&json!({ "token": signup["verification_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);

    let driver = Driver::start().await;
    let browser = Browser::open(&driver, 1280, 800).await;
    browser.goto(&format!("{local}/")).await;
    browser
        .wait_for(
            "the sign-in screen",
            "return document.body.dataset.ready === 'signed-out';",
            10 * SECOND,
        )
        .await;
    browser.type_into("#signin-email", email).await;
    browser
        .type_into("#signin-password", crate::helpers::PASSWORD)
        .await;
    browser.click("#signin-submit").await;
    browser
        .wait_for(
            "signed in with the password",
            "return document.body.dataset.ready === 'signed-in';",
            10 * SECOND,
        )
        .await;
    browser.goto(&format!("{local}/#/apps")).await;
    browser
        .wait_for(
            "the Link Keycloak button",
            "const b = document.querySelector('#identities-link button'); \
             return b && b.textContent === 'Link Keycloak';",
            10 * SECOND,
        )
        .await;
    browser
        .exec(
            "document.getElementById('identities-link').scrollIntoView({ block: 'center' }); \
             return null;",
            vec![],
        )
        .await;
    browser.screenshot(&shot("oidc-link-01-unlinked")).await;

    // Through the provider and back: its address need not be the account's.
    provider.next_consent(Consent::verified("web-link", "pat@work.example"));
    browser.click("#identities-link button").await;
    browser
        .wait_for(
            "Keycloak listed as linked",
            "const row = document.querySelector('#identities-list li'); \
             return document.body.dataset.ready === 'signed-in' && row \
               && row.textContent.includes('Keycloak') \
               && row.textContent.includes('pat@work.example') && window.scrollY > 0;",
            15 * SECOND,
        )
        .await;
    assert_eq!(
        browser.text("#identities-message").await,
        "Keycloak is linked: you can sign in with it now."
    );
    // The result is scrolled into view (checked above: the page moved) and shown once:
    // the address no longer carries it.
    let hash = browser.exec("return window.location.hash;", vec![]).await;
    assert_eq!(hash.as_str(), Some("#/apps"));
    assert_eq!(
        browser
            .exec(
                "return document.querySelectorAll('#identities-link button').length;",
                vec![]
            )
            .await,
        json!(0)
    );
    browser.screenshot(&shot("oidc-link-02-linked")).await;

    // Signing in with Keycloak now reaches this account.
    let other = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    provider.next_consent(Consent::verified("web-link", "pat@work.example"));
    let login = other
        .get(format!("{local}/api/auth/oidc/keycloak/login"))
        .send()
        .await
        .unwrap();
    let consented = other
        .get(login.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(consented.headers()["location"].to_str().unwrap()).unwrap();
    let signed = other
        .get(format!("{local}{}?{}", back.path(), back.query().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let access: Value = other
        .post(format!("{local}/api/auth/refresh"))
        .header("origin", &local)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me: Value = other
        .get(app.api("/auth/me"))
        .bearer_auth(access["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email);

    browser
        .exec("window.confirm = () => true; return null;", vec![])
        .await;
    browser.click("#identities-list li button").await;
    browser
        .wait_for(
            "Keycloak unlinked",
            "return document.querySelectorAll('#identities-list li').length === 0 \
               && document.querySelector('#identities-link button')?.textContent === 'Link Keycloak';",
            10 * SECOND,
        )
        .await;
    assert_eq!(
        browser.text("#identities-message").await,
        "Keycloak is unlinked."
    );
    browser
        .screenshot(&shot("oidc-link-03-unlinked-again"))
        .await;
    assert_no_console_errors(&browser, &[], "linking a provider").await;
    browser.close().await;
    drop(driver);
    system.cleanup().await;
}
