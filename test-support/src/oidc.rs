//! A loopback OpenID Connect provider, the way Keycloak or Authentik answer: a discovery
//! document under an issuer with a path, a JWKS that rotates (the old key leaves the set),
//! an authorize endpoint that consents at once for the identity the test chose, and a
//! token endpoint that checks client authentication (basic or post), PKCE (S256), the
//! redirect URI and single-use codes before it signs an RS256 ID token, and a userinfo
//! endpoint for the access token it handed out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The signing keys the provider rotates through: (PKCS#1 PEM, modulus, base64url).
const KEYS: [(&str, &str); 2] = [
    (
        include_str!("oidc_keys/key1.pem"),
        include_str!("oidc_keys/key1.n"),
    ),
    (
        include_str!("oidc_keys/key2.pem"),
        include_str!("oidc_keys/key2.n"),
    ),
];

/// Where the realm lives under the server: issuers with a path, as Keycloak's have.
const REALM: &str = "/realms/jukebox";

/// Who the person at the authorize page is, and how the provider bends the ID token.
#[derive(Debug, Clone)]
pub struct Consent {
    pub subject: String,
    pub email: String,
    /// `None` leaves `email_verified` out of the token.
    pub email_verified: Option<bool>,
    /// `iss` other than the provider's own.
    pub issuer: Option<String>,
    /// `aud` other than the client id.
    pub audience: Option<String>,
    /// `nonce` other than the one the authorize request carried.
    pub nonce: Option<String>,
    /// Seconds from now to `exp` (negative: already expired).
    pub expires_in: i64,
    /// The address and `email_verified` only at the userinfo endpoint, not in the ID
    /// token (Authelia's default).
    pub email_at_userinfo_only: bool,
}

impl Consent {
    /// A person with a verified address and an honest token.
    pub fn verified(subject: &str, email: &str) -> Self {
        Self {
            subject: subject.into(),
            email: email.into(),
            email_verified: Some(true),
            issuer: None,
            audience: None,
            nonce: None,
            expires_in: 600,
            email_at_userinfo_only: false,
        }
    }
}

#[derive(Clone)]
struct Grant {
    challenge: String,
    redirect_uri: String,
    nonce: String,
    consent: Consent,
}

#[derive(Default)]
struct Inner {
    key: usize,
    next: Option<Consent>,
    grants: HashMap<String, Grant>,
    used: HashSet<String>,
    /// What `/userinfo` answers for each access token it handed out.
    userinfo: HashMap<String, Value>,
    discovery_fetches: u32,
    jwks_fetches: u32,
}

#[derive(Clone)]
pub struct OidcProvider {
    /// The issuer URL, as the server is configured with (`OIDC_ISSUER`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    inner: Arc<Mutex<Inner>>,
}

impl OidcProvider {
    /// Starts a provider on a free loopback port that knows one client.
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let provider = Self {
            issuer: format!("{base}{REALM}"),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            inner: Arc::default(),
        };
        let router = Router::new()
            .route(
                &format!("{REALM}/.well-known/openid-configuration"),
                get(discovery),
            )
            .route(&format!("{REALM}/jwks"), get(jwks))
            .route(&format!("{REALM}/authorize"), get(authorize))
            .route(&format!("{REALM}/token"), post(token))
            .route(&format!("{REALM}/userinfo"), get(userinfo))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        provider
    }

    /// Who consents at the next authorize request.
    pub fn next_consent(&self, consent: Consent) {
        self.inner.lock().unwrap().next = Some(consent);
    }

    /// Signs with the next key from now on; the JWKS lists only that key.
    pub fn rotate_key(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.key = (inner.key + 1) % KEYS.len();
    }

    /// The key id tokens are signed with now.
    pub fn key_id(&self) -> String {
        format!("key-{}", self.inner.lock().unwrap().key + 1)
    }

    /// How often the discovery document and the JWKS were fetched.
    pub fn fetches(&self) -> (u32, u32) {
        let inner = self.inner.lock().unwrap();
        (inner.discovery_fetches, inner.jwks_fetches)
    }
}

async fn discovery(State(provider): State<OidcProvider>) -> Json<Value> {
    provider.inner.lock().unwrap().discovery_fetches += 1;
    let issuer = &provider.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(State(provider): State<OidcProvider>) -> Json<Value> {
    let mut inner = provider.inner.lock().unwrap();
    inner.jwks_fetches += 1;
    let (_, n) = KEYS[inner.key];
    Json(json!({ "keys": [{
        "kty": "RSA", "kid": format!("key-{}", inner.key + 1), "use": "sig", "alg": "RS256",
        "n": n.trim(), "e": "AQAB",
    }]}))
}

fn refuse(status: StatusCode, error: &str, why: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": why })),
    )
        .into_response()
}

/// Consents at once for the chosen person and sends the browser back with a code.
async fn authorize(
    State(provider): State<OidcProvider>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let get = |name: &str| query.get(name).cloned().unwrap_or_default();
    if get("client_id") != provider.client_id
        || get("response_type") != "code"
        || !get("scope").split(' ').any(|s| s == "openid")
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad authorize request",
        );
    }
    let mut inner = provider.inner.lock().unwrap();
    let Some(consent) = inner.next.take() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "access_denied",
            "nobody to sign in",
        );
    };
    let code = format!("code-{}", uuid::Uuid::new_v4());
    inner.grants.insert(
        code.clone(),
        Grant {
            challenge: get("code_challenge"),
            redirect_uri: get("redirect_uri"),
            nonce: get("nonce"),
            consent,
        },
    );
    let mut back = url::Url::parse(&get("redirect_uri")).expect("a redirect URI");
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"));
    Redirect::to(back.as_str()).into_response()
}

/// The client, from HTTP Basic (`client_secret_basic`) or the form (`client_secret_post`).
fn client(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = String::from_utf8(STANDARD.decode(basic).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return Some((unescape(id)?, unescape(secret)?));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

async fn token(
    State(provider): State<OidcProvider>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let bad = |why: &str| refuse(StatusCode::BAD_REQUEST, "invalid_grant", why);
    if client(&headers, &form) != Some((provider.client_id.clone(), provider.client_secret.clone()))
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication",
        );
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let (grant, key) = {
        let mut inner = provider.inner.lock().unwrap();
        if !inner.used.insert(code.clone()) {
            return bad("code already used");
        }
        let Some(grant) = inner.grants.remove(&code) else {
            return bad("unknown code");
        };
        (grant, inner.key)
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return bad("PKCE verifier does not match");
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri)
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return bad("redirect or grant type mismatch");
    }
    let consent = grant.consent;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let mut address = json!({ "sub": consent.subject, "email": consent.email });
    if let Some(verified) = consent.email_verified {
        address["email_verified"] = json!(verified);
    }
    let mut claims = json!({
        "iss": consent.issuer.unwrap_or_else(|| provider.issuer.clone()),
        "aud": consent.audience.unwrap_or_else(|| provider.client_id.clone()),
        "sub": consent.subject,
        "nonce": consent.nonce.unwrap_or(grant.nonce),
        "iat": now.min(now + consent.expires_in - 60),
        "exp": now + consent.expires_in,
    });
    if !consent.email_at_userinfo_only {
        claims["email"] = address["email"].clone();
        if let Some(verified) = address.get("email_verified") {
            claims["email_verified"] = verified.clone();
        }
    }
    let access_token = format!("access-{}", uuid::Uuid::new_v4());
    provider
        .inner
        .lock()
        .unwrap()
        .userinfo
        .insert(access_token.clone(), address);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(format!("key-{}", key + 1));
    let id_token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(KEYS[key].0.as_bytes()).expect("a PEM key"),
    )
    .expect("a signed token");
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
    }))
    .into_response()
}

/// The address of the person an access token was handed out for (Bearer only).
async fn userinfo(State(provider): State<OidcProvider>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match provider.inner.lock().unwrap().userinfo.get(token) {
        Some(address) => Json(address.clone()).into_response(),
        None => refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "unknown access token",
        ),
    }
}
