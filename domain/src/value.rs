//! Value types that can only hold valid data ("parse, don't validate").

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("email must look like name@example.com")]
    InvalidEmail,
    #[error("email must be at most 254 characters")]
    EmailTooLong,
    #[error("password hash must be a PHC string")]
    InvalidPasswordHash,
    #[error("token hash must be 64 lower-case hex digits (SHA-256)")]
    InvalidTokenHash,
}

/// A normalized (trimmed, lower-cased) email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let normalized = raw.trim().to_lowercase();
        if normalized.len() > 254 {
            return Err(ValueError::EmailTooLong);
        }
        let (local, domain) = normalized.split_once('@').ok_or(ValueError::InvalidEmail)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        let chars_ok = normalized
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '<' && c != '>');
        if local.is_empty() || local.len() > 64 || !domain_ok || domain.contains('@') || !chars_ok {
            return Err(ValueError::InvalidEmail);
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An argon2id PHC string. Never the password itself: the edge hashes before it
/// builds a command (SECURITY.md 5a). `Debug` redacts it so it never reaches a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn parse(phc: &str) -> Result<Self, ValueError> {
        if phc.starts_with("$argon2") && phc.len() < 512 {
            Ok(Self(phc.to_owned()))
        } else {
            Err(ValueError::InvalidPasswordHash)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a published copy of an event holds in place of the hash (ADR 33): empty,
    /// which is no PHC string, so nothing verifies against it.
    pub fn withheld() -> Self {
        Self(String::new())
    }

    pub fn is_withheld(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PasswordHash> for String {
    fn from(value: PasswordHash) -> Self {
        value.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// The SHA-256 (hex) of a high-entropy secret token (verification or refresh token).
/// Only this digest is ever put in a command or an event; the token itself stays with the
/// browser and the edge (SECURITY.md 5, 5a, 7). `Debug` shows a prefix only.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenHash(String);

impl TokenHash {
    pub fn parse(hex: &str) -> Result<Self, ValueError> {
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(hex.to_owned()))
        } else {
            Err(ValueError::InvalidTokenHash)
        }
    }

    /// Digests a token. Tokens carry 256 random bits, so a plain SHA-256 is enough: there
    /// is nothing to brute-force, unlike a password.
    pub fn of(token: &str) -> Self {
        use sha2::{Digest, Sha256};
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a published copy of an event holds in place of the hash (ADR 33): empty,
    /// which matches nothing, itself included.
    pub fn withheld() -> Self {
        Self(String::new())
    }

    pub fn is_withheld(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares in constant time. A withheld hash matches nothing.
    pub fn matches(&self, other: &TokenHash) -> bool {
        !self.is_withheld()
            && self
                .0
                .bytes()
                .zip(other.0.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
            && self.0.len() == other.0.len()
    }
}

impl TryFrom<String> for TokenHash {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TokenHash> for String {
    fn from(value: TokenHash) -> Self {
        value.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.get(..8) {
            Some(prefix) => write!(f, "TokenHash({prefix}…)"),
            None => f.write_str("TokenHash(<withheld>)"),
        }
    }
}

/// A role a user can hold. Only `admin` so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
        }
    }
}

/// How a session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethod {
    Password,
    Google,
    /// Any other OpenID Connect provider (ADR 44).
    Oidc,
    /// Opened for the caller in place of their own session when every session ended
    /// (a password change, "sign out everywhere else"; ADR 29).
    Renewed,
}

/// Why a session (refresh-token family) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    RefreshTokenReused,
    UserDisabled,
    /// The owner ended it from the devices page.
    EndedByOwner,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized() {
        let email = Email::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "alice@example.com");
    }

    #[test]
    fn bad_emails_are_refused() {
        for raw in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@c.de",
            "a@b@c.de",
            "a@.com",
            "a@b..com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(ValueError::EmailTooLong));
    }

    #[test]
    fn password_hash_debug_is_redacted() {
        let hash = PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").unwrap();
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
        assert!(PasswordHash::parse("hunter2").is_err());
    }

    #[test]
    fn token_hashes_are_sha256_hex_and_compare_exactly() {
        let hash = TokenHash::of("secret-token");
        assert_eq!(hash.as_str().len(), 64);
        assert_eq!(TokenHash::parse(hash.as_str()).unwrap(), hash);
        assert!(hash.matches(&TokenHash::of("secret-token")));
        assert!(!hash.matches(&TokenHash::of("secret-tokeN")));
        assert!(TokenHash::parse("secret-token").is_err());
        assert!(!format!("{hash:?}").contains(hash.as_str()));
    }
}
