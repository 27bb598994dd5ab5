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
}
