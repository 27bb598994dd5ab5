//! Linking a provider to a signed-in account and unlinking it (issue 21, ADR 46),
//! against the loopback provider.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{count, error, oidc_app, sign_in, signed_in_as, CLIENT_ID, CLIENT_SECRET};
use crate::helpers::*;
use crate::support::oidc::{Consent, OidcProvider};
use crate::support::TestApp;

async fn linking_app(provider: &OidcProvider) -> TestApp {
    oidc_app(provider, &[("EXPOSE_VERIFICATION_TOKEN", "1".to_owned())]).await
}

/// `POST /me/identities/keycloak` -> the provider (consents for `consent`) -> the
/// callback, as `tab` (which keeps the attempt cookie). `html`: as a browser asks.
async fn link(
    app: &TestApp,
    provider: &OidcProvider,
    tab: &reqwest::Client,
    access: &str,
    consent: Consent,
    html: bool,
) -> reqwest::Response {
    provider.next_consent(consent);
    let started = tab
        .post(app.api("/me/identities/keycloak"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);
    let body: Value = started.json().await.unwrap();
    let authorize = body["authorization_url"].as_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", provider.issuer)),
        "{authorize}"
    );
    let consented = tab.get(&authorize).send().await.unwrap();
    assert_eq!(consented.status(), StatusCode::SEE_OTHER);
    let back = url::Url::parse(consented.headers()["location"].to_str().unwrap()).unwrap();
    let callback = format!("{}?{}", app.api(back.path()), back.query().unwrap());
    let mut request = tab.get(callback);
    if html {
        request = request.header("accept", "text/html,application/xhtml+xml");
    }
    request.send().await.unwrap()
}

async fn identities(app: &TestApp, access: &str) -> Value {
    let response = reqwest::Client::new()
        .get(app.api("/me/identities"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn unlink(app: &TestApp, access: &str, provider: &str) -> reqwest::Response {
    reqwest::Client::new()
        .delete(app.api(&format!("/me/identities/{provider}")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// The list without its times (checked to be RFC 3339 here).
fn without_times(mut list: Value) -> Value {
    for identity in list["identities"].as_array_mut().unwrap() {
        let at = identity["linked_at"].take();
        time::OffsetDateTime::parse(
            at.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
    }
    list
}

#[tokio::test]
async fn a_password_account_links_a_provider_then_signs_in_with_it() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = linking_app(&provider).await;
    let tab = browser();
    let access = signed_in(&app, &tab, "pat@example.com").await;
    let pat = me(&app, &access).await.json::<Value>().await.unwrap();
    assert_eq!(
        identities(&app, &access).await,
        json!({ "identities": [], "has_password": true })
    );

    // The provider's address is not the account's: it need not be.
    let linked = link(
        &app,
        &provider,
        &tab,
        &access,
        Consent::verified("kc-7", "pat@work.example"),
        true,
    )
    .await;
    assert_eq!(linked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        linked.headers()["location"],
        "/library#/apps?linked=keycloak"
    );
    // No session was opened by the link: the tab's refresh cookie is still its own.
    assert!(set_refresh_cookie(&linked).is_none());
    assert_eq!(
        without_times(identities(&app, &access).await),
        json!({
            "identities": [{ "provider": "keycloak", "name": "Keycloak",
                "email": "pat@work.example", "linked_at": null }],
            "has_password": true
        })
    );

    // The same identity again: nothing changes, and it says so as a success.
    let again = link(
        &app,
        &provider,
        &tab,
        &access,
        Consent::verified("kc-7", "pat@work.example"),
        false,
    )
    .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type IN ('IdentityAdded', 'IdentityLinked')"
        )
        .await,
        2
    );

    // Signing in with the provider reaches the same account, its library included.
    let other = browser();
    let response = sign_in(
        &app,
        &provider,
        &other,
        Consent::verified("kc-7", "pat@work.example"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = signed_in_as(&app, &other).await;
    assert_eq!(back["id"], pat["id"]);
    assert_eq!(back["email"], "pat@example.com");
    let access = access_token(refresh(&app, &other).await).await;
    assert_eq!(library(&app, &access).await.status(), StatusCode::OK);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type = 'UserSignedUpWithIdentity'"
        )
        .await,
        0
    );

    // The provider's subject and address are sealed with the account's key (ADR 43).
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE payload::text LIKE '%pat@work.example%' \
             OR payload::text LIKE '%kc-7%'"
        )
        .await,
        0
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_address_the_provider_has_not_verified_links_nothing() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = linking_app(&provider).await;
    let tab = browser();
    let access = signed_in(&app, &tab, "pat@example.com").await;
    for verified in [Some(false), None] {
        let consent = Consent {
            email_verified: verified,
            ..Consent::verified("kc-8", "pat@example.com")
        };
        let response = link(&app, &provider, &tab, &access, consent, false).await;
        assert_eq!(
            error(response).await,
            (
                StatusCode::FORBIDDEN,
                "email_unverified".into(),
                "Keycloak has not verified pat@example.com; verify the address with Keycloak, \
                 then link it again"
                    .into()
            ),
            "email_verified: {verified:?}"
        );
    }
    // A browser is sent back to the app with the refusal.
    let consent = Consent {
        email_verified: Some(false),
        ..Consent::verified("kc-8", "pat@example.com")
    };
    let response = link(&app, &provider, &tab, &access, consent, true).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/library#/apps?link_error=email_unverified&provider=keycloak"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type IN ('IdentityAdded', 'IdentityLinked')"
        )
        .await,
        0
    );
    assert_eq!(identities(&app, &access).await["identities"], json!([]));
    app.cleanup().await;
}

#[tokio::test]
async fn an_identity_linked_to_another_account_is_refused() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = linking_app(&provider).await;
    // Kim's account was made by the provider.
    let kim_tab = browser();
    let response = sign_in(
        &app,
        &provider,
        &kim_tab,
        Consent::verified("kc-1", "kim@example.com"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let kim = signed_in_as(&app, &kim_tab).await;

    let tab = browser();
    let access = signed_in(&app, &tab, "pat@example.com").await;
    let response = link(
        &app,
        &provider,
        &tab,
        &access,
        Consent::verified("kc-1", "kim@example.com"),
        false,
    )
    .await;
    assert_eq!(
        error(response).await,
        (
            StatusCode::CONFLICT,
            "identity_linked".into(),
            "this Keycloak account is already linked to another Jukebox account; unlink it \
             there first, or link a different Keycloak account"
                .into()
        )
    );
    assert_eq!(identities(&app, &access).await["identities"], json!([]));
    // Kim still signs in to Kim's account with it.
    let again = browser();
    let response = sign_in(
        &app,
        &provider,
        &again,
        Consent::verified("kc-1", "kim@example.com"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in_as(&app, &again).await["id"], kim["id"]);

    // A second identity at the same provider for Pat: one per provider.
    let response = link(
        &app,
        &provider,
        &tab,
        &access,
        Consent::verified("kc-2", "pat@example.com"),
        false,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = link(
        &app,
        &provider,
        &tab,
        &access,
        Consent::verified("kc-3", "pat@example.com"),
        false,
    )
    .await;
    assert_eq!(
        error(response).await,
        (
            StatusCode::CONFLICT,
            "provider_linked".into(),
            "your account already has a Keycloak sign-in; unlink it first to link another \
             Keycloak account"
                .into()
        )
    );
    // ... and the refused one was never claimed: it can make its own account.
    let fresh = browser();
    let response = sign_in(
        &app,
        &provider,
        &fresh,
        Consent::verified("kc-3", "lou@example.com"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in_as(&app, &fresh).await["email"], "lou@example.com");

    // An attempt outlives no sign-out: the session that started it must be live.
    let started = tab
        .post(app.api("/me/identities/keycloak"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let body: Value = started.json().await.unwrap();
    provider.next_consent(Consent::verified("kc-9", "pat@example.com"));
    let consented = tab
        .get(body["authorization_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(consented.headers()["location"].to_str().unwrap()).unwrap();
    let logout = tab.post(app.api("/auth/logout")).send().await.unwrap();
    assert!(logout.status().is_success(), "{}", logout.status());
    let response = tab
        .get(format!(
            "{}?{}",
            app.api(back.path()),
            back.query().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (response.status(), error_code(response).await),
        (StatusCode::UNAUTHORIZED, "session_revoked".into())
    );

    let response = reqwest::Client::new()
        .post(app.api("/me/identities/nobody"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    // The access token's session ended with the logout.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

#[tokio::test]
async fn an_unlinked_provider_no_longer_reaches_the_account_and_the_last_way_in_stays() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = linking_app(&provider).await;
    let tab = browser();
    let access = signed_in(&app, &tab, "pat@example.com").await;
    let pat = me(&app, &access).await.json::<Value>().await.unwrap();
    let response = link(
        &app,
        &provider,
        &tab,
        &access,
        Consent::verified("kc-7", "pat@work.example"),
        false,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let response = reqwest::Client::new()
        .post(app.api("/me/identities/nobody"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error(response).await,
        (
            StatusCode::NOT_FOUND,
            "not_found".into(),
            "no sign-in provider \"nobody\" is configured on this server".into()
        )
    );

    assert_eq!(
        unlink(&app, &access, "keycloak").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        identities(&app, &access).await,
        json!({ "identities": [], "has_password": true })
    );
    assert_eq!(
        error(unlink(&app, &access, "keycloak").await).await,
        (
            StatusCode::NOT_FOUND,
            "identity_not_linked".into(),
            "no provider \"keycloak\" is linked to your account".into()
        )
    );
    // The provider now makes a new account for that person: Pat's is out of its reach.
    let other = browser();
    let response = sign_in(
        &app,
        &provider,
        &other,
        Consent::verified("kc-7", "pat@work.example"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let someone = signed_in_as(&app, &other).await;
    assert_ne!(someone["id"], pat["id"]);
    assert_eq!(someone["email"], "pat@work.example");

    // That account has no password: its one provider cannot go.
    let access = access_token(refresh(&app, &other).await).await;
    assert_eq!(
        without_times(identities(&app, &access).await),
        json!({
            "identities": [{ "provider": "keycloak", "name": "Keycloak",
                "email": "pat@work.example", "linked_at": null }],
            "has_password": false
        })
    );
    assert_eq!(
        error(unlink(&app, &access, "keycloak").await).await,
        (
            StatusCode::CONFLICT,
            "last_sign_in_method".into(),
            "Keycloak is the only way to sign in to your account; link another provider or \
             set a password (\"Forgot password\") before unlinking it"
                .into()
        )
    );
    assert_eq!(
        identities(&app, &access).await["identities"][0]["provider"],
        "keycloak"
    );
    let response = sign_in(
        &app,
        &provider,
        &browser(),
        Consent::verified("kc-7", "pat@work.example"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.cleanup().await;
}
