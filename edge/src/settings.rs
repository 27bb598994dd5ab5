//! Account and token settings, built once from the configuration by the binary.

use std::time::Duration;

use jukebox_domain::Email;

use crate::tokens::JwtKeys;

pub struct AuthSettings {
    pub jwt: JwtKeys,
    pub access_ttl: Duration,
    /// Absolute lifetime of a session (refresh-token family).
    pub session_ttl: Duration,
    pub verification_ttl: Duration,
    pub email_verify_required: bool,
    /// Dev/test only: return verification tokens in responses (the edge derives the
    /// reactor's token and waits until the reactor committed it).
    pub expose_verification_token: bool,
    /// HMAC key of verification tokens (shared with the mail reactor).
    pub verification_key: Vec<u8>,
    /// HMAC key of idempotency scopes and request digests (`crate::idempotency`).
    pub request_key: Vec<u8>,
    /// HMAC key app credentials' secrets are derived with (`crate::app_credentials`).
    pub app_credential_key: Vec<u8>,
    /// HMAC key a refresh derives its new refresh token with (`RefreshToken::rotated`).
    pub refresh_rotation_key: Vec<u8>,
    /// How long after a rotation the token it replaced still gets the same new one (two
    /// tabs refreshing at once, ADR 29).
    pub refresh_grace: Duration,
    pub admin_bootstrap_email: Option<Email>,
    pub cookie_secure: bool,
    /// Origins allowed on the cookie-authenticated endpoints.
    pub allowed_origins: Vec<String>,
    /// Where people reach the web app (links in mails).
    pub public_base_url: String,
    /// OpenID Connect providers (Google is a preset among them); none configured: empty.
    pub oidc: crate::oidc::OidcSettings,
    pub limits: RateLimits,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub window: Duration,
    pub per_account: u32,
    pub per_address: u32,
}

impl AuthSettings {
    /// The refresh cookie's name: `__Secure-` prefixed whenever it is `Secure`.
    pub fn refresh_cookie_name(&self) -> &'static str {
        if self.cookie_secure {
            "__Secure-jukebox_refresh"
        } else {
            "jukebox_refresh"
        }
    }

    pub fn oauth_cookie_name(&self) -> &'static str {
        if self.cookie_secure {
            "__Secure-jukebox_oauth"
        } else {
            "jukebox_oauth"
        }
    }
}
