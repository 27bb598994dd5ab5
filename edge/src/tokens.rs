//! Access tokens (HS256 JWT), and the opaque secrets: refresh and verification tokens.
//!
//! Access JWT (SECURITY.md 6): HS256 only, signature checked before the claims; `exp`,
//! `nbf`, `iss`, `aud`, `sub` and the token type `typ = "access"` are required; claims of
//! the wrong JSON type fail to deserialize. Opaque tokens carry 256 random bits and are
//! only ever stored as their SHA-256 ([`TokenHash`]).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use jukebox_domain::TokenHash;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub const ACCESS_TOKEN_TYPE: &str = "access";

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub issuer: String,
    pub audience: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    /// The session (refresh-token family) this token was issued under.
    pub sid: Uuid,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub typ: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct InvalidToken(pub String);

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    pub fn issue(&self, user_id: Uuid, session_id: Uuid, ttl: Duration) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
        let claims = AccessClaims {
            sub: user_id,
            sid: session_id,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + ttl.as_secs(),
            nbf: now,
            iat: now,
            typ: ACCESS_TOKEN_TYPE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, InvalidToken> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| InvalidToken(e.to_string()))?;
        if data.header.alg != Algorithm::HS256 {
            return Err(InvalidToken("algorithm".into()));
        }
        if data.claims.typ != ACCESS_TOKEN_TYPE {
            return Err(InvalidToken("not an access token".into()));
        }
        Ok(data.claims)
    }
}

/// 256 random bits from the OS CSPRNG, base64url without padding.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `<session_id>.<user_id>.<secret>`. The stored hash covers the whole string, so the
/// ids in a token the `Session` aggregate accepts are authentic.
#[derive(Clone)]
pub struct RefreshToken {
    pub session_id: Uuid,
    pub user_id: Uuid,
    raw: String,
}

impl RefreshToken {
    pub fn generate(session_id: Uuid, user_id: Uuid) -> Self {
        let raw = format!("{session_id}.{user_id}.{}", random_secret());
        Self {
            session_id,
            user_id,
            raw,
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, '.');
        let session_id = parts.next()?.parse().ok()?;
        let user_id = parts.next()?.parse().ok()?;
        let secret = parts.next()?;
        (secret.len() == 43 && secret.bytes().all(is_base64url)).then(|| Self {
            session_id,
            user_id,
            raw: raw.to_owned(),
        })
    }

    /// The token a refresh of this one rotates to: HMAC-SHA256 of this token under a
    /// server key, so two refreshes of one token at once (two tabs) ask for the same
    /// replacement and both can be answered with it (ADR 29). Without the key a copy of
    /// this token tells nothing about the next one.
    pub fn rotated(&self, key: &[u8]) -> Self {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(b"jukebox refresh rotation\0");
        mac.update(self.raw.as_bytes());
        let secret = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Self {
            session_id: self.session_id,
            user_id: self.user_id,
            raw: format!("{}.{}.{secret}", self.session_id, self.user_id),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.raw)
    }
}

/// Verification tokens are made by the mail reactor (handlers) from the event that asked
/// for them; the edge parses them and, with `EXPOSE_VERIFICATION_TOKEN`, derives them.
pub use jukebox_domain::VerificationToken;

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            "jukebox",
            "jukebox-api",
        )
    }

    #[test]
    fn an_issued_token_verifies_and_a_tampered_one_does_not() {
        let keys = keys();
        let (user, session) = (Uuid::now_v7(), Uuid::new_v4());
        let token = keys.issue(user, session, Duration::from_secs(60));
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.sid), (user, session));
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.verify(&tampered).is_err());
        let other = JwtKeys::new(
            b"another-secret-another-secret-xx",
            "jukebox",
            "jukebox-api",
        );
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let refresh = RefreshToken::generate(Uuid::new_v4(), Uuid::now_v7());
        let parsed = RefreshToken::parse(refresh.as_str()).unwrap();
        assert_eq!(parsed.hash(), refresh.hash());
        assert!(RefreshToken::parse("a.b.c").is_none());
        assert_ne!(random_secret(), random_secret());
    }

    #[test]
    fn a_rotation_is_the_same_for_one_token_and_key_and_parses() {
        let refresh = RefreshToken::generate(Uuid::new_v4(), Uuid::now_v7());
        let next = refresh.rotated(b"key");
        assert_eq!(next.as_str(), refresh.rotated(b"key").as_str());
        assert_ne!(next.as_str(), refresh.rotated(b"other").as_str());
        assert_ne!(next.as_str(), next.rotated(b"key").as_str());
        let parsed = RefreshToken::parse(next.as_str()).expect("a rotated token parses");
        assert_eq!(
            (parsed.session_id, parsed.user_id),
            (refresh.session_id, refresh.user_id)
        );
    }
}
