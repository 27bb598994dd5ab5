//! Settings the roles are built with, derived from the configuration: the keys derived
//! from `JWT_SECRET`, the edge's account settings, the mail reactor's, the mailer and the
//! stream URL signer, and `RoleOptions`, which gathers them for `app::start`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jukebox_handlers::MailSettings;
use jukebox_nats::FailPoints;
use secrecy::ExposeSecret;

use crate::app::Role;
use crate::config::Config;

/// `JWT_SECRET`, which the api, web and reactor roles need.
fn jwt_secret(config: &Config) -> anyhow::Result<&[u8]> {
    let secret = config
        .jwt_secret
        .as_ref()
        .context("JWT_SECRET (or JWT_SECRET_FILE) is required by the api, web and reactor roles")?;
    let secret = secret.expose_secret().as_bytes();
    if secret.len() < 32 {
        anyhow::bail!("JWT_SECRET must be at least 32 bytes (e.g. `openssl rand -hex 32`)");
    }
    Ok(secret)
}

/// The HMAC key of verification tokens (the reactor makes them, the edge parses them and,
/// with `EXPOSE_VERIFICATION_TOKEN`, derives them too).
fn verification_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    Ok(derive_key(
        jwt_secret(config)?,
        b"jukebox email verification token",
    ))
}

/// The mail reactor's settings. Needs `JWT_SECRET` (its verification-token key).
pub fn mail_settings(config: &Config) -> anyhow::Result<MailSettings> {
    Ok(MailSettings {
        public_base_url: config.public_base_url.clone(),
        verification_ttl: config.verification_token_ttl,
        email_verify_required: config.email_verify_required,
        token_key: verification_key(config)?,
        password_reset_ttl: config.password_reset_token_ttl,
    })
}

/// Builds the edge's account settings from the configuration. Needs `JWT_SECRET`.
pub fn auth_settings(config: &Config) -> anyhow::Result<jukebox_edge::settings::AuthSettings> {
    use jukebox_edge::oidc::{Endpoints, OidcProvider, OidcSettings};
    use jukebox_edge::settings::{AuthSettings, RateLimits};
    let secret = jwt_secret(config)?;
    let admin_bootstrap_email = config
        .admin_bootstrap_email
        .as_deref()
        .map(jukebox_domain::Email::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("ADMIN_BOOTSTRAP_EMAIL: {e}"))?;
    let mut providers = Vec::new();
    match (
        &config.google_client_id,
        &config.google_client_secret,
        &config.google_redirect_url,
    ) {
        // The Google preset: fixed endpoints (no discovery request), and Google writes
        // either spelling of its issuer in `iss`.
        (Some(client_id), Some(client_secret), Some(redirect_url)) => {
            let alias = config
                .google_issuer
                .strip_prefix("https://")
                .filter(|_| config.google_issuer == "https://accounts.google.com")
                .map(str::to_owned);
            providers.push(OidcProvider::new(
                "google".into(),
                "Google".into(),
                config.google_issuer.clone(),
                alias.into_iter().collect(),
                client_id.clone(),
                client_secret.clone(),
                redirect_url.clone(),
                Endpoints::Fixed {
                    auth_url: config.google_auth_url.clone(),
                    token_url: config.google_token_url.clone(),
                    jwks_url: config.google_jwks_url.clone(),
                },
            ));
        }
        (None, None, None) => {}
        _ => anyhow::bail!(
            "Google sign-in needs GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET and GOOGLE_REDIRECT_URL together"
        ),
    }
    for provider in &config.oidc_providers {
        providers.push(OidcProvider::new(
            provider.id.clone(),
            provider.name.clone(),
            provider.issuer.clone(),
            Vec::new(),
            provider.client_id.clone(),
            provider.client_secret.clone(),
            provider.redirect_url.clone(),
            Endpoints::Discover,
        ));
    }
    let oidc = OidcSettings {
        providers,
        success_redirect: config.google_success_redirect.clone(),
        // The key's label predates the other providers; changing it would only void the
        // attempts in flight.
        cookie_key: derive_key(secret, b"jukebox google sign-in cookie"),
        // No redirects: a provider's endpoints are fetched as configured or discovered (SSRF).
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("HTTP client")?,
    };
    Ok(AuthSettings {
        jwt: jukebox_edge::tokens::JwtKeys::new(secret, &config.jwt_issuer, &config.jwt_audience),
        access_ttl: config.access_token_ttl,
        session_ttl: config.session_ttl,
        verification_ttl: config.verification_token_ttl,
        email_verify_required: config.email_verify_required,
        expose_verification_token: config.expose_verification_token,
        verification_key: verification_key(config)?,
        request_key: derive_key(secret, b"jukebox idempotency scope and request digest"),
        app_credential_key: derive_key(secret, b"jukebox app credential secrets"),
        refresh_rotation_key: derive_key(secret, b"jukebox refresh token rotation"),
        refresh_grace: config.refresh_grace,
        admin_bootstrap_email,
        cookie_secure: config.cookie_secure,
        allowed_origins: config.allowed_origins.clone(),
        public_base_url: config.public_base_url.clone(),
        oidc,
        limits: RateLimits {
            window: config.rate_limit_window,
            per_account: config.rate_limit_per_account,
            per_address: config.rate_limit_per_address,
        },
    })
}

/// A key for one purpose, derived from a secret (HMAC-SHA256 of the label).
fn derive_key(secret: &[u8], label: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(label);
    mac.finalize().into_bytes().to_vec()
}

/// The mailer: SMTP when `SMTP_URL` is set, else the log (dev).
pub fn mailer(config: &Config) -> anyhow::Result<Arc<dyn jukebox_handlers::mail::Mailer>> {
    Ok(match &config.smtp_url {
        Some(url) => Arc::new(jukebox_handlers::mail::SmtpMailer::new(
            url.expose_secret(),
            &config.mail_from,
        )?),
        None => {
            tracing::warn!("SMTP_URL is not set: mails are written to the log (dev only)");
            Arc::new(jukebox_handlers::mail::LogMailer)
        }
    })
}

/// The signer of stream URLs, when `STREAM_SIGNING_SECRET` is set (api and stream roles).
pub fn stream_signer(config: &Config) -> Option<jukebox_edge::stream::StreamSigner> {
    let secret = config.stream_signing_secret.as_ref()?;
    Some(jukebox_edge::stream::StreamSigner::new(
        secret.expose_secret().as_bytes(),
        config.stream_url_ttl,
    ))
}

/// Which roles to run and where the HTTP ones listen (port 0 in tests).
#[derive(Clone)]
pub struct RoleOptions {
    pub roles: BTreeSet<Role>,
    pub api: SocketAddr,
    pub web: SocketAddr,
    pub stream: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics` (`HEALTH_PORT`).
    pub health: SocketAddr,
    pub command_wait: Duration,
    /// How long a read with a position waits for the read models (`READ_WAIT_MS`).
    pub read_wait: Duration,
    pub fail_points: FailPoints,
    /// How long JetStream waits for an ack before redelivering (short in fault tests).
    pub ack_wait: Duration,
    /// Account settings for the api and web roles (`None` when neither runs).
    pub auth: Option<Arc<jukebox_edge::settings::AuthSettings>>,
    /// The reactor's mailer (`None` when it does not run).
    pub mailer: Option<Arc<dyn jukebox_handlers::mail::Mailer>>,
    /// The reactor's settings (`None` when it does not run).
    pub mail: Option<MailSettings>,
    /// The whole configuration (imports: object store, media tools, limits, search).
    pub config: Config,
}

impl std::fmt::Debug for RoleOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleOptions")
            .field("roles", &self.roles)
            .field("api", &self.api)
            .field("web", &self.web)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl RoleOptions {
    pub fn from_config(config: &Config, roles: &[Role]) -> anyhow::Result<Self> {
        let expanded = Role::expand(roles);
        let edge = expanded.contains(&Role::Api) || expanded.contains(&Role::Web);
        Ok(Self {
            auth: if edge {
                Some(Arc::new(auth_settings(config)?))
            } else {
                None
            },
            mailer: if expanded.contains(&Role::Reactor) {
                Some(mailer(config)?)
            } else {
                None
            },
            mail: if expanded.contains(&Role::Reactor) {
                Some(mail_settings(config)?)
            } else {
                None
            },
            roles: expanded,
            api: SocketAddr::new(config.bind_address, config.api_port),
            web: SocketAddr::new(config.bind_address, config.web_port),
            stream: SocketAddr::new(config.bind_address, config.stream_port),
            health: SocketAddr::new(config.bind_address, config.health_port),
            command_wait: config.command_wait,
            read_wait: config.read_wait,
            fail_points: if config.failpoints.is_empty() {
                FailPoints::default()
            } else {
                FailPoints::parse(&config.failpoints).map_err(anyhow::Error::msg)?
            },
            ack_wait: config.ack_wait,
            config: config.clone(),
        })
    }
}
