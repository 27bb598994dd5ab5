//! Google sign-in against a fake provider on loopback (authorize is the test itself,
//! token and JWKS endpoints are a small axum server that checks PKCE and single-use codes).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::support::TestApp;

const ISSUER: &str = "https://accounts.google.test";
const CLIENT_ID: &str = "jukebox-test-client";
const CLIENT_SECRET: &str = "fake-google-client-secret";
const REDIRECT: &str = "http://jukebox.test/auth/google/callback";
const KEY_PEM: &str = include_str!("google_test_key.pem");
const KEY_N: &str = "qKah8mySZHBa3REq87P5XrQLm-q7gMhLFXY5z-dTHG6NUoNX53l3xTpsVdMNWdDevCizWO5ELT_AFuUERNyJJZ2n4-cOyscA6QXHOr6gBsOZ481m_4n18_8a7S73WQMz6KdVzSsYsaRoOaOfxBwttjznyj_wUXv819Wu7h21zVLk0eHIHTV5MB1fA3xfu961fcW1shXmAeEXEEX9anZqRAdt5asp9u1oxtycEeyXsnEKYcMIM-W59Yvj_7530_AP--u0z0AQipcWfW9tnhN90Vyf62UHXBMt7JLSZabULb2NbvHHLsiL5EjnVx3OtSyLCzBwY7YPBMjmbt1Ojqnxqw";

/// What the person consented to at the fake authorize page.
#[derive(Clone)]
struct Grant {
    challenge: String,
    redirect_uri: String,
    claims: Value,
}

#[derive(Clone, Default)]
pub(crate) struct Provider {
    grants: Arc<Mutex<HashMap<String, Grant>>>,
    used: Arc<Mutex<HashSet<String>>>,
}

async fn token(
    State(provider): State<Provider>,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    let refuse = |why: &str| {
        (
            AxumStatus::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": why })),
        )
            .into_response()
    };
    let code = form.get("code").cloned().unwrap_or_default();
    if !provider.used.lock().unwrap().insert(code.clone()) {
        return refuse("code already used");
    }
    let Some(grant) = provider.grants.lock().unwrap().get(&code).cloned() else {
        return refuse("unknown code");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return refuse("PKCE verifier does not match");
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        || form.get("redirect_uri") != Some(&grant.redirect_uri)
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return refuse("client or redirect mismatch");
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key".into());
    let id_token = jsonwebtoken::encode(
        &header,
        &grant.claims,
        &EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap(),
    )
    .unwrap();
    Json(json!({ "access_token": "unused", "token_type": "Bearer", "expires_in": 3600, "id_token": id_token })).into_response()
}

async fn jwks() -> Json<Value> {
    Json(
        json!({ "keys": [{ "kty": "RSA", "kid": "test-key", "use": "sig", "alg": "RS256", "n": KEY_N, "e": "AQAB" }] }),
    )
}

pub(crate) async fn start_provider() -> (String, Provider) {
    let provider = Provider::default();
    let router = Router::new()
        .route("/token", post(token))
        .route("/jwks", get(jwks))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, provider)
}

pub(crate) async fn google_app(base: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("GOOGLE_REDIRECT_URL", REDIRECT.to_owned()),
        ("GOOGLE_AUTH_URL", format!("{base}/authorize")),
        ("GOOGLE_TOKEN_URL", format!("{base}/token")),
        ("GOOGLE_JWKS_URL", format!("{base}/jwks")),
        ("GOOGLE_ISSUER", ISSUER.to_owned()),
        ("GOOGLE_SUCCESS_REDIRECT", "/library".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    crate::support::spawn_app_with(&[jukebox::app::Role::All], &vars).await
}

/// How the fake provider (or an attacker) bends one step of the flow.
#[derive(Default)]
pub(crate) struct Twist {
    wrong_state: bool,
    wrong_nonce: bool,
    audience: Option<&'static str>,
    reuse_code: Option<String>,
}

pub(crate) struct Identity {
    pub sub: &'static str,
    pub email: &'static str,
    pub verified: bool,
}

/// Login -> (fake consent) -> callback. Returns the callback response and the code used.
pub(crate) async fn google_flow(
    app: &TestApp,
    provider: &Provider,
    tab: &reqwest::Client,
    who: &Identity,
    twist: Twist,
) -> (reqwest::Response, String) {
    let login = tab.get(app.api("/auth/google/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let location = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["client_id"], CLIENT_ID);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": ISSUER,
        "aud": twist.audience.unwrap_or(CLIENT_ID),
        "sub": who.sub,
        "email": who.email,
        "email_verified": who.verified,
        "nonce": if twist.wrong_nonce { "another-nonce".to_owned() } else { query["nonce"].clone() },
        "iat": now,
        "exp": now + 600,
    });
    let code = twist
        .reuse_code
        .unwrap_or_else(|| format!("code-{}", uuid::Uuid::new_v4()));
    provider
        .grants
        .lock()
        .unwrap()
        .entry(code.clone())
        .or_insert(Grant {
            challenge: query["code_challenge"].clone(),
            redirect_uri: query["redirect_uri"].clone(),
            claims,
        });
    let state = if twist.wrong_state {
        "forged-state".to_owned()
    } else {
        query["state"].clone()
    };
    let mut callback = url::Url::parse(&app.api("/auth/google/callback")).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    let response = tab.get(callback.as_str()).send().await.unwrap();
    (response, code)
}

pub(crate) async fn me_after_google(app: &TestApp, tab: &reqwest::Client) -> Value {
    let refreshed = refresh(app, tab).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let access = access_token(refreshed).await;
    // `/auth/me` reads the access state committed with the sign-up: no wait.
    me(app, &access).await.json().await.unwrap()
}

#[tokio::test]
async fn google_sign_in_links_by_subject_and_refuses_every_mismatch() {
    let (base, provider) = start_provider().await;
    let app = google_app(&base, &[("ADMIN_BOOTSTRAP_EMAIL", "boss@example.com")]).await;
    let gina = Identity {
        sub: "1001",
        email: "gina@example.com",
        verified: true,
    };

    // Success: a new account, signed in through the refresh cookie.
    let tab = browser();
    let (response, code) = google_flow(&app, &provider, &tab, &gina, Twist::default()).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
    assert_eq!(response.headers()["location"], "/library");
    let who = me_after_google(&app, &tab).await;
    assert_eq!(who["email"], "gina@example.com");
    assert_eq!(who["verified"], true);
    let gina_id = who["id"].clone();

    // Signing in again with the same subject finds the same account.
    let again_tab = browser();
    let (response, _) = google_flow(&app, &provider, &again_tab, &gina, Twist::default()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(me_after_google(&app, &again_tab).await["id"], gina_id);

    // Each mismatch fails, with a 4xx and no session.
    let cases: Vec<(&str, Twist, &str)> = vec![
        (
            "bad state",
            Twist {
                wrong_state: true,
                ..Twist::default()
            },
            "invalid_oauth_state",
        ),
        (
            "reused code",
            Twist {
                reuse_code: Some(code),
                ..Twist::default()
            },
            "oidc_code_rejected",
        ),
        (
            "wrong nonce",
            Twist {
                wrong_nonce: true,
                ..Twist::default()
            },
            "invalid_id_token",
        ),
        (
            "wrong audience",
            Twist {
                audience: Some("another-client"),
                ..Twist::default()
            },
            "invalid_id_token",
        ),
    ];
    for (case, twist, expected) in cases {
        let tab = browser();
        let (response, _) = google_flow(&app, &provider, &tab, &gina, twist).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(error_code(response).await, expected, "{case}");
        assert_eq!(
            refresh(&app, &tab).await.status(),
            StatusCode::UNAUTHORIZED,
            "{case}"
        );
    }
    // A callback without the browser's attempt cookie fails too.
    let stranger = reqwest::Client::new()
        .get(app.api("/auth/google/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), StatusCode::BAD_REQUEST);

    // An address Google has not verified claims no account (ADR 44), not even the
    // bootstrap admin's.
    let tab = browser();
    let boss = Identity {
        sub: "2002",
        email: "boss@example.com",
        verified: false,
    };
    let (response, _) = google_flow(&app, &provider, &tab, &boss, Twist::default()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(response).await, "email_unverified");
    assert_eq!(refresh(&app, &tab).await.status(), StatusCode::UNAUTHORIZED);

    // An address that already has a password account is never linked by email alone.
    let tab = browser();
    sign_up(&app, &tab, "local@example.com").await;
    let local = Identity {
        sub: "3003",
        email: "local@example.com",
        verified: true,
    };
    let (response, _) = google_flow(&app, &provider, &tab, &local, Twist::default()).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "account_exists");

    let linked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'IdentityLinked'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(linked, 1);
    app.cleanup().await;
}

/// Issue 18: an account that signs in with Google (no password) uses app credentials on
/// the Subsonic API like any other.
#[tokio::test]
async fn a_google_account_uses_an_app_credential_on_the_subsonic_api() {
    let (base, provider) = start_provider().await;
    let app = google_app(&base, &[]).await;
    let tab = browser();
    let gina = Identity {
        sub: "2002",
        email: "gina@example.com",
        verified: true,
    };
    let (response, _) = google_flow(&app, &provider, &tab, &gina, Twist::default()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let access = access_token(refresh(&app, &tab).await).await;
    let created: Value = reqwest::Client::new()
        .post(app.api("/me/app-credentials"))
        .bearer_auth(&access)
        .json(&json!({"name": "Phone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["username"], "gina@example.com");
    let secret = created["secret"].as_str().unwrap();
    let ping = |params: Vec<(&'static str, String)>| {
        let url = app.api("/rest/ping.view");
        async move {
            let answer: Value = reqwest::Client::new()
                .get(url)
                .query(&params)
                .query(&[("f", "json")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["subsonic-response"].clone()
        }
    };
    let salt = "a1b2c3";
    let token = hex::encode(md5::Md5::digest(format!("{secret}{salt}").as_bytes()));
    let ok = ping(vec![
        ("u", "gina@example.com".into()),
        ("t", token),
        ("s", salt.into()),
    ])
    .await;
    assert_eq!(ok["status"], "ok", "{ok}");
    let ok = ping(vec![("apiKey", secret.to_owned())]).await;
    assert_eq!(ok["status"], "ok", "{ok}");
    // No password to fall back on: an empty one is wrong credentials.
    let refused = ping(vec![("u", "gina@example.com".into()), ("p", String::new())]).await;
    assert_eq!(refused["error"]["code"], 40, "{refused}");
    app.cleanup().await;
}
