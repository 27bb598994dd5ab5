//! OpenID Connect providers (ADR 44): Authentik, Keycloak, Authelia, Google or any other,
//! configured by issuer URL, client id and secret. The `openidconnect` crate (on `oauth2`)
//! does discovery, the JWKS, PKCE and the ID token's signature, issuer, audience, nonce
//! and expiry checks; this module caches the provider's metadata and fetches its keys
//! again when a token names a key it has not seen (key rotation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreResponseType, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AuthType, AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EmptyAdditionalProviderMetadata, IssuerUrl, JsonWebKeySet, JsonWebKeySetUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    ResponseTypes, Scope, SignatureVerificationError, SubjectIdentifier, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::RwLock;

/// How long discovered metadata is used before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Where a provider's endpoints come from.
pub enum Endpoints {
    /// `<issuer>/.well-known/openid-configuration`, fetched at the first sign-in.
    Discover,
    /// Fixed URLs, no discovery request (the Google preset's `GOOGLE_*_URL` settings).
    Fixed {
        auth_url: String,
        token_url: String,
        jwks_url: String,
    },
}

/// One configured provider.
pub struct OidcProvider {
    /// In URLs (`/auth/oidc/{id}/login`): lower-case letters, digits and `-`.
    pub id: String,
    /// On the button: "Sign in with {name}".
    pub name: String,
    pub issuer: String,
    /// Other spellings of the issuer the provider writes in `iss` (Google:
    /// `accounts.google.com`). The account links under `issuer` whichever is used.
    pub issuer_aliases: Vec<String>,
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_url: String,
    pub endpoints: Endpoints,
    metadata: RwLock<Option<(Arc<CoreProviderMetadata>, Instant)>>,
}

/// All providers plus what their routes share.
pub struct OidcSettings {
    pub providers: Vec<OidcProvider>,
    /// Where the browser lands after a sign-in.
    pub success_redirect: String,
    /// HMAC key of the cookie that carries state, nonce and PKCE verifier.
    pub cookie_key: Vec<u8>,
    /// Follows no redirects (SSRF), times out.
    pub http: reqwest::Client,
}

impl OidcSettings {
    pub fn provider(&self, id: &str) -> Option<&OidcProvider> {
        self.providers.iter().find(|p| p.id == id)
    }
}

/// What the browser carries between login and callback (secrets, in the signed cookie).
pub struct Attempt {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// The person the provider vouched for, after every check passed.
#[derive(Debug)]
pub struct Identity {
    /// The configured issuer (not an alias): half of the `external_identity` id.
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// `email_verified` was `true` (missing counts as false).
    pub email_verified: bool,
}

/// Why a sign-in failed; the route turns each into a message.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    #[error("provider configuration: {0}")]
    Config(String),
    #[error("the provider refused the code: {0}")]
    CodeRejected(String),
    #[error("unreadable provider answer: {0}")]
    BadResponse(String),
    #[error("wrong issuer: {0}")]
    Issuer(String),
    #[error("wrong audience: {0}")]
    Audience(String),
    #[error("wrong nonce")]
    Nonce,
    #[error("expired: {0}")]
    Expired(String),
    #[error("signature: {0}")]
    Signature(String),
    #[error("ID token refused: {0}")]
    Other(String),
}

impl From<ClaimsVerificationError> for OidcError {
    fn from(error: ClaimsVerificationError) -> Self {
        match error {
            ClaimsVerificationError::InvalidIssuer(e) => Self::Issuer(e),
            ClaimsVerificationError::InvalidAudience(e) => Self::Audience(e),
            ClaimsVerificationError::InvalidNonce(_) => Self::Nonce,
            ClaimsVerificationError::Expired(e) => Self::Expired(e),
            ClaimsVerificationError::SignatureVerification(e) => Self::Signature(e.to_string()),
            other => Self::Other(other.to_string()),
        }
    }
}

/// Asymmetric algorithms only: an HMAC-signed ID token would be keyed by the client
/// secret, which this server shares with nobody but the provider and should not trust.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 6] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

fn config<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> Result<T, OidcError> {
    result.map_err(|e| OidcError::Config(format!("{what}: {e}")))
}

impl OidcProvider {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        name: String,
        issuer: String,
        issuer_aliases: Vec<String>,
        client_id: String,
        client_secret: SecretString,
        redirect_url: String,
        endpoints: Endpoints,
    ) -> Self {
        Self {
            id,
            name,
            issuer,
            issuer_aliases,
            client_id,
            client_secret,
            redirect_url,
            endpoints,
            metadata: RwLock::new(None),
        }
    }

    /// The provider's metadata: cached, or fetched when `refresh` (an unknown key id) or
    /// the cache is old. Fixed endpoints start with no keys and fetch them on first use.
    async fn metadata(
        &self,
        http: &reqwest::Client,
        refresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, OidcError> {
        if let Some((metadata, at)) = self.metadata.read().await.as_ref() {
            if !refresh && at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let issuer = config("issuer URL", IssuerUrl::new(self.issuer.clone()))?;
        let metadata = match &self.endpoints {
            Endpoints::Discover => CoreProviderMetadata::discover_async(issuer, http)
                .await
                .map_err(|e| OidcError::Unreachable(format!("discovery: {e}")))?,
            Endpoints::Fixed {
                auth_url,
                token_url,
                jwks_url,
            } => {
                let jwks_url = config("JWKS URL", JsonWebKeySetUrl::new(jwks_url.clone()))?;
                let jwks = if refresh {
                    JsonWebKeySet::fetch_async(&jwks_url, http)
                        .await
                        .map_err(|e| OidcError::Unreachable(format!("JWKS: {e}")))?
                } else {
                    JsonWebKeySet::new(Vec::new())
                };
                CoreProviderMetadata::new(
                    issuer,
                    config("authorization URL", AuthUrl::new(auth_url.clone()))?,
                    jwks_url,
                    vec![ResponseTypes::new(vec![CoreResponseType::Code])],
                    vec![CoreSubjectIdentifierType::Public],
                    ALGORITHMS.to_vec(),
                    EmptyAdditionalProviderMetadata {},
                )
                .set_token_endpoint(Some(config("token URL", TokenUrl::new(token_url.clone()))?))
                .set_token_endpoint_auth_methods_supported(Some(vec![
                    CoreClientAuthMethod::ClientSecretPost,
                ]))
                .set_jwks(jwks)
            }
        };
        let metadata = Arc::new(metadata);
        *self.metadata.write().await = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    fn redirect(&self) -> Result<RedirectUrl, OidcError> {
        config("redirect URL", RedirectUrl::new(self.redirect_url.clone()))
    }

    /// Where to send the browser, and the secrets its cookie must carry back.
    pub async fn authorize_url(
        &self,
        http: &reqwest::Client,
    ) -> Result<(url::Url, Attempt), OidcError> {
        let metadata = self.metadata(http, false).await?;
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(self.client_id.clone()),
            None,
        )
        .set_redirect_uri(self.redirect()?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let attempt = Attempt {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        };
        Ok((url, attempt))
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token against the
    /// attempt's nonce. A token signed by a key not in the cached set fetches the keys
    /// once more before it is refused.
    pub async fn sign_in(
        &self,
        http: &reqwest::Client,
        attempt: &Attempt,
        code: &str,
    ) -> Result<Identity, OidcError> {
        let metadata = self.metadata(http, false).await?;
        // client_secret_basic unless the provider only takes client_secret_post.
        let post_only = metadata
            .token_endpoint_auth_methods_supported()
            .is_some_and(|methods| {
                methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                    && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
            });
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(
                self.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect()?)
        .set_auth_type(if post_only {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Config(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.verifier.clone()))
            .request_async(http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(e) => OidcError::CodeRejected(e.to_string()),
                RequestTokenError::Request(e) => OidcError::Unreachable(format!("token: {e}")),
                other => OidcError::BadResponse(other.to_string()),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::BadResponse("no id_token in the token response".into()))?;
        let nonce = Nonce::new(attempt.nonce.clone());
        let verify = |metadata: &CoreProviderMetadata| {
            let client = CoreClient::from_provider_metadata(
                metadata.clone(),
                ClientId::new(self.client_id.clone()),
                None,
            );
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(ALGORITHMS)
                .require_issuer_match(self.issuer_aliases.is_empty());
            id_token
                .claims(&verifier, &nonce)
                .map(|claims| {
                    (
                        claims.issuer().to_string(),
                        claims.subject().to_string(),
                        claims.email().map(|e| e.to_string()),
                        claims.email_verified() == Some(true),
                    )
                })
                .map_err(|e| match e {
                    ClaimsVerificationError::SignatureVerification(
                        SignatureVerificationError::NoMatchingKey,
                    ) => None,
                    other => Some(OidcError::from(other)),
                })
        };
        let unknown_key = |e: Option<OidcError>| {
            e.unwrap_or_else(|| OidcError::Signature("no key with the token's key id".into()))
        };
        let claims = match verify(&metadata) {
            Err(None) => verify(&*self.metadata(http, true).await?).map_err(unknown_key)?,
            other => other.map_err(unknown_key)?,
        };
        let (issuer, subject, mut email, mut email_verified) = claims;
        if issuer != self.issuer && !self.issuer_aliases.contains(&issuer) {
            return Err(OidcError::Issuer(issuer));
        }
        // Some providers (Authelia by default) keep the address out of the ID token and
        // answer it at the userinfo endpoint, for the same subject.
        if email.is_none() && metadata.userinfo_endpoint().is_some() {
            let info: CoreUserInfoClaims = client
                .user_info(
                    response.access_token().clone(),
                    Some(SubjectIdentifier::new(subject.clone())),
                )
                .map_err(|e| OidcError::Config(format!("userinfo endpoint: {e}")))?
                .request_async(http)
                .await
                .map_err(|e| OidcError::BadResponse(format!("userinfo: {e}")))?;
            email = info.email().map(|e| e.to_string());
            email_verified = info.email_verified() == Some(true);
        }
        Ok(Identity {
            issuer: self.issuer.clone(),
            subject,
            email,
            email_verified,
        })
    }
}
