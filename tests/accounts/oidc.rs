//! Sign-in with any OpenID Connect provider (issue 21, ADR 44) against the loopback
//! provider of test-support: discovery under an issuer with a path, a JWKS that rotates,
//! authorize and token endpoints that check PKCE, the client and single-use codes.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::oidc::{Consent, OidcProvider};
use crate::support::TestApp;

mod link;

const CLIENT_ID: &str = "jukebox";
const CLIENT_SECRET: &str = "keycloak-client-secret";
/// Where the provider sends the browser back; the test, as the browser, follows it to
/// the app's own address.
const REDIRECT: &str = "http://jukebox.test/auth/oidc/keycloak/callback";

async fn oidc_app(provider: &OidcProvider, extra: &[(&str, String)]) -> TestApp {
    let mut vars = vec![
        ("OIDC_ID", "keycloak".to_owned()),
        ("OIDC_NAME", "Keycloak".to_owned()),
        ("OIDC_ISSUER", provider.issuer.clone()),
        ("OIDC_CLIENT_ID", CLIENT_ID.to_owned()),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("OIDC_REDIRECT_URL", REDIRECT.to_owned()),
        ("OIDC_SUCCESS_REDIRECT", "/library".to_owned()),
    ];
    vars.extend(extra.iter().cloned());
    crate::support::spawn_app_with(&[jukebox::app::Role::All], &vars).await
}

/// Login -> the provider's authorize page (consents for `consent`) -> callback.
async fn sign_in(
    app: &TestApp,
    provider: &OidcProvider,
    tab: &reqwest::Client,
    consent: Consent,
) -> reqwest::Response {
    provider.next_consent(consent);
    let login = tab
        .get(app.api("/auth/oidc/keycloak/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", provider.issuer)),
        "{authorize}"
    );
    let consented = tab.get(&authorize).send().await.unwrap();
    assert_eq!(consented.status(), StatusCode::SEE_OTHER);
    let back = url::Url::parse(consented.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        back.as_str().split('?').next(),
        Some(REDIRECT),
        "the provider returns to the configured redirect URI"
    );
    let callback = format!("{}?{}", app.api(back.path()), back.query().unwrap());
    tab.get(callback).send().await.unwrap()
}

async fn signed_in_as(app: &TestApp, tab: &reqwest::Client) -> Value {
    let refreshed = refresh(app, tab).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let access = access_token(refreshed).await;
    // `/auth/me` reads the access state committed with the sign-up: no wait.
    me(app, &access).await.json().await.unwrap()
}

async fn error(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(app.pool()).await.unwrap()
}

#[tokio::test]
async fn a_keycloak_sign_in_discovers_the_provider_and_survives_a_key_rotation() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = oidc_app(&provider, &[]).await;

    // The web app offers the provider by name.
    let page: Value = reqwest::get(app.web("/settings.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["sign_in_providers"],
        json!([{ "id": "keycloak", "name": "Keycloak", "login": "/api/auth/oidc/keycloak/login" }])
    );

    let tab = browser();
    let response = sign_in(
        &app,
        &provider,
        &tab,
        Consent::verified("kc-1", "kim@example.com"),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
    assert_eq!(response.headers()["location"], "/library");
    let kim = signed_in_as(&app, &tab).await;
    assert_eq!(kim["email"], "kim@example.com");
    assert_eq!(kim["verified"], true);
    // One discovery, one JWKS fetch (the keys come with the discovery).
    assert_eq!(provider.fetches(), (1, 1));

    // The provider rotates its key: the old one leaves the JWKS. The next token names a
    // key id the server has not seen, so it fetches the keys again, and only once.
    provider.rotate_key();
    assert_eq!(provider.key_id(), "key-2");
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
    assert_eq!(provider.fetches(), (2, 2));
    // A provider that answers the address only at its userinfo endpoint works too.
    let tab = browser();
    let consent = Consent {
        email_at_userinfo_only: true,
        ..Consent::verified("kc-5", "ula@example.com")
    };
    let response = sign_in(&app, &provider, &tab, consent).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in_as(&app, &tab).await["email"], "ula@example.com");
    // A third sign-in uses the cached keys.
    let third = browser();
    let response = sign_in(
        &app,
        &provider,
        &third,
        Consent::verified("kc-1", "kim@example.com"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(provider.fetches(), (2, 2));

    // Linked by (issuer, subject): one identity for Kim however often, one for Ula;
    // every session opened by "oidc".
    assert_eq!(
        count(
            &app,
            "SELECT count(DISTINCT aggregate_id) FROM events WHERE event_type = 'IdentityLinked'"
        )
        .await,
        2
    );
    let methods: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT payload->'SessionStarted'->>'method' FROM events \
         WHERE event_type = 'SessionStarted'",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(methods, vec!["oidc".to_owned()]);
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_with_the_wrong_issuer_audience_nonce_or_expiry_opens_no_session() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = oidc_app(&provider, &[]).await;
    let honest = || Consent::verified("kc-2", "lee@example.com");
    let cases = [
        (
            "wrong issuer",
            Consent {
                issuer: Some("https://evil.example/realms/jukebox".into()),
                ..honest()
            },
            format!(
                "the identity token was not issued by Keycloak ({}); sign-in refused",
                provider.issuer
            ),
        ),
        (
            "wrong audience",
            Consent {
                audience: Some("another-client".into()),
                ..honest()
            },
            "the identity token was issued for another application than this server; sign-in refused".into(),
        ),
        (
            "wrong nonce",
            Consent {
                nonce: Some("another-attempts-nonce".into()),
                ..honest()
            },
            "the identity token does not belong to this sign-in attempt; start again".into(),
        ),
        (
            "expired",
            Consent {
                expires_in: -600,
                ..honest()
            },
            "the identity token from Keycloak has expired (check this server's clock); start again".into(),
        ),
    ];
    for (case, consent, message) in cases {
        let tab = browser();
        let response = sign_in(&app, &provider, &tab, consent).await;
        assert_eq!(
            error(response).await,
            (StatusCode::BAD_REQUEST, "invalid_id_token".into(), message),
            "{case}"
        );
        assert_eq!(
            refresh(&app, &tab).await.status(),
            StatusCode::UNAUTHORIZED,
            "{case}"
        );
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type IN ('IdentityLinked', 'SessionStarted')"
        )
        .await,
        0
    );
    // The same person with an honest token gets in: nothing above was half-applied.
    let tab = browser();
    let response = sign_in(&app, &provider, &tab, honest()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in_as(&app, &tab).await["email"], "lee@example.com");
    app.cleanup().await;
}

#[tokio::test]
async fn an_address_the_provider_has_not_verified_claims_no_account() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = oidc_app(
        &provider,
        &[("ADMIN_BOOTSTRAP_EMAIL", "boss@example.com".to_owned())],
    )
    .await;
    let message = "Keycloak has not verified boss@example.com; verify the address with Keycloak, then sign in again";
    for verified in [Some(false), None] {
        let tab = browser();
        let consent = Consent {
            email_verified: verified,
            ..Consent::verified("kc-3", "boss@example.com")
        };
        let response = sign_in(&app, &provider, &tab, consent).await;
        assert_eq!(
            error(response).await,
            (
                StatusCode::FORBIDDEN,
                "email_unverified".into(),
                message.into()
            ),
            "email_verified: {verified:?}"
        );
        assert_eq!(refresh(&app, &tab).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM events WHERE event_type IN ('IdentityLinked', 'UserSignedUpWithIdentity', 'SessionStarted')").await,
        0
    );

    // The same when the address comes from the userinfo endpoint (Authelia's default).
    let tab = browser();
    let consent = Consent {
        email_verified: Some(false),
        email_at_userinfo_only: true,
        ..Consent::verified("kc-3", "boss@example.com")
    };
    assert_eq!(
        error(sign_in(&app, &provider, &tab, consent).await).await,
        (
            StatusCode::FORBIDDEN,
            "email_unverified".into(),
            message.into()
        ),
    );

    // Nor does it reach an account that has the address: a password account stays
    // unlinked whatever the provider says.
    let owner = browser();
    sign_up(&app, &owner, "pat@example.com").await;
    let tab = browser();
    let consent = Consent {
        email_verified: Some(false),
        ..Consent::verified("kc-4", "pat@example.com")
    };
    let (status, code, _) = error(sign_in(&app, &provider, &tab, consent).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "email_unverified")
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type = 'IdentityLinked'"
        )
        .await,
        0
    );

    // Once the provider vouches for the address, the bootstrap admin is made.
    let tab = browser();
    let response = sign_in(
        &app,
        &provider,
        &tab,
        Consent::verified("kc-3", "boss@example.com"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let boss = signed_in_as(&app, &tab).await;
    assert_eq!(boss["verified"], true);
    assert_eq!(boss["roles"], json!(["admin"]));
    app.cleanup().await;
}

#[tokio::test]
async fn a_second_provider_is_a_separate_identity_and_unknown_providers_are_404() {
    let keycloak = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let authelia = OidcProvider::start("jukebox-authelia", "authelia-secret").await;
    let app = oidc_app(
        &keycloak,
        &[
            ("OIDC_PROVIDERS", "authelia".to_owned()),
            ("OIDC_AUTHELIA_ISSUER", authelia.issuer.clone()),
            ("OIDC_AUTHELIA_CLIENT_ID", "jukebox-authelia".to_owned()),
            ("OIDC_AUTHELIA_CLIENT_SECRET", "authelia-secret".to_owned()),
            ("OIDC_AUTHELIA_NAME", "Authelia".to_owned()),
            (
                "OIDC_AUTHELIA_REDIRECT_URL",
                "http://jukebox.test/auth/oidc/authelia/callback".to_owned(),
            ),
        ],
    )
    .await;
    let page: Value = reqwest::get(app.web("/settings.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["sign_in_providers"],
        json!([
            { "id": "keycloak", "name": "Keycloak", "login": "/api/auth/oidc/keycloak/login" },
            { "id": "authelia", "name": "Authelia", "login": "/api/auth/oidc/authelia/login" },
        ])
    );
    let tab = browser();
    let response = sign_in(
        &app,
        &keycloak,
        &tab,
        Consent::verified("same-sub", "sam@example.com"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // The same subject and address at Authelia is someone else to this server: it is not
    // linked by email, it finds the address taken.
    let tab = browser();
    authelia.next_consent(Consent::verified("same-sub", "sam@example.com"));
    let login = tab
        .get(app.api("/auth/oidc/authelia/login"))
        .send()
        .await
        .unwrap();
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&authelia.issuer), "{authorize}");
    let consented = tab.get(&authorize).send().await.unwrap();
    let back = url::Url::parse(consented.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/auth/oidc/authelia/callback");
    let response = tab
        .get(format!(
            "{}?{}",
            app.api(back.path()),
            back.query().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(error(response).await.1, "account_exists");

    // A Keycloak attempt's cookie does not open an Authelia callback.
    let tab = browser();
    keycloak.next_consent(Consent::verified("same-sub", "sam@example.com"));
    let login = tab
        .get(app.api("/auth/oidc/keycloak/login"))
        .send()
        .await
        .unwrap();
    let consented = tab
        .get(login.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(consented.headers()["location"].to_str().unwrap()).unwrap();
    let response = tab
        .get(format!(
            "{}?{}",
            app.api("/auth/oidc/authelia/callback"),
            back.query().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(error(response).await.1, "invalid_oauth_state");

    for path in [
        "/auth/oidc/nobody/login",
        "/auth/oidc/nobody/callback?code=x&state=y",
    ] {
        let response = reqwest::get(app.api(path)).await.unwrap();
        assert_eq!(
            error(response).await,
            (
                StatusCode::NOT_FOUND,
                "not_found".into(),
                "no sign-in provider \"nobody\" is configured on this server".into()
            ),
            "{path}"
        );
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type = 'IdentityLinked'"
        )
        .await,
        1
    );
    app.cleanup().await;
}
