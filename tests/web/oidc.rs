//! "Sign in with <name>" in Chromium (ADR 44): the button `/settings.json` asks for, the
//! round trip through test-support's loopback OpenID Connect provider, and the app signed
//! in afterwards, at 1280 and 390 px.

use jukebox::app::{self, Role, RoleOptions};
use jukebox_test_support::free_addr;
use jukebox_test_support::imports::{import_app, Options};
use jukebox_test_support::oidc::{Consent, OidcProvider};

use crate::checks::{assert_no_console_errors, shot, SECOND};
use crate::webdriver::{Browser, Driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_an_openid_connect_provider_in_chromium() {
    let provider = OidcProvider::start("jukebox-web", "web-client-secret").await;
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
        ],
        ..Default::default()
    })
    .await;
    system.app.config.allowed_origins = vec![local.clone()];
    system.app.config.public_base_url = local.clone();
    let mut options = RoleOptions::from_config(&system.app.config, &[Role::All]).unwrap();
    options.api = "127.0.0.1:0".parse().unwrap();
    options.web = web;
    options.stream = free_addr();
    system.app.running = Some(app::start(&system.app.services, options).await.unwrap());

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
