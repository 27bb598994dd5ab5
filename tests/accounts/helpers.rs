//! What a browser does, over HTTP.

use jukebox::app::Role;
use reqwest::header::{HeaderMap, HeaderValue, ORIGIN, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app_with, TestApp, ORIGIN as TEST_ORIGIN};

pub const PASSWORD: &str = "correct horse battery";

/// All roles, verification tokens exposed in responses, and `extra` settings.
pub async fn app(extra: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(&str, String)> = vec![("EXPOSE_VERIFICATION_TOKEN", "1".into())];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    spawn_app_with(&[Role::All], &vars).await
}

/// A client that keeps cookies and sends the page's `Origin`, like a browser tab.
pub fn browser() -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, HeaderValue::from_static(TEST_ORIGIN));
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn post(client: &reqwest::Client, url: String, body: Value) -> Response {
    client.post(url).json(&body).send().await.unwrap()
}

pub async fn sign_up(app: &TestApp, client: &reqwest::Client, email: &str) -> Value {
    let response = post(
        client,
        app.api("/auth/signup"),
        json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub async fn verify(app: &TestApp, client: &reqwest::Client, token: &str) -> Response {
    post(
        client,
        app.api("/auth/verify-email"),
        json!({ "token": token }),
    )
    .await
}

pub async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> Response {
    post(
        client,
        app.api("/auth/signin"),
        json!({ "email": email, "password": password }),
    )
    .await
}

/// Signs up, verifies and signs in; returns the access token.
pub async fn signed_in(app: &TestApp, client: &reqwest::Client, email: &str) -> String {
    let body = sign_up(app, client, email).await;
    let token = body["verification_token"].as_str().unwrap();
    assert_eq!(verify(app, client, token).await.status(), StatusCode::OK);
    let response = sign_in(app, client, email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    access_token(response).await
}

pub async fn access_token(response: Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn me(app: &TestApp, access: &str) -> Response {
    reqwest::Client::new()
        .get(app.api("/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// `GET /library`, whose access check rides in the page's own statement.
pub async fn library(app: &TestApp, access: &str) -> Response {
    reqwest::Client::new()
        .get(app.api("/library"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

pub async fn refresh(app: &TestApp, client: &reqwest::Client) -> Response {
    client.post(app.api("/auth/refresh")).send().await.unwrap()
}

/// POST /auth/refresh with exactly this refresh token (a stolen copy, say).
pub async fn refresh_with(app: &TestApp, token: &str) -> Response {
    reqwest::Client::new()
        .post(app.api("/auth/refresh"))
        .header(ORIGIN, TEST_ORIGIN)
        .header("cookie", format!("jukebox_refresh={token}"))
        .send()
        .await
        .unwrap()
}

/// The refresh token a response set, if any (empty when it was cleared).
pub fn set_refresh_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("jukebox_refresh="))
        .map(|v| {
            v["jukebox_refresh=".len()..]
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        })
}

pub async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
