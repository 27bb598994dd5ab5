//! The email-verification token: `<user_id>.<secret>`, mailed as a link; the `User`
//! aggregate keeps only its hash (`TokenHash`).
//!
//! The secret is HMAC-SHA256(key, event id) of the event that asked for the link
//! (`UserSignedUp`, `VerificationRequested`): the mail reactor that makes it can make the
//! same one again after a crash, so a redelivered event mails the link whose hash was
//! committed, never a second, dead one. The key is a server secret, so the output is as
//! unguessable as 256 random bits to anyone without it (ADR 15).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::value::TokenHash;

pub struct VerificationToken {
    pub user_id: Uuid,
    raw: String,
}

/// What a token mailed for an event is for. Each has its own label in the HMAC, so a
/// token made for one purpose is never another's (ADR 29).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Verification,
    PasswordReset,
    EmailChange,
}

impl TokenPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Verification => b"jukebox verification token\0",
            Self::PasswordReset => b"jukebox password reset token\0",
            Self::EmailChange => b"jukebox email change token\0",
        }
    }
}

impl VerificationToken {
    /// The token for the event `event_id` (`<aggregate_type>:<aggregate_id>:<sequence>`).
    pub fn derive(key: &[u8], user_id: Uuid, event_id: &str) -> Self {
        Self::derive_for(TokenPurpose::Verification, key, user_id, event_id)
    }

    /// The token of `purpose` for the event `event_id`.
    pub fn derive_for(purpose: TokenPurpose, key: &[u8], user_id: Uuid, event_id: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(purpose.label());
        mac.update(event_id.as_bytes());
        let secret = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Self {
            user_id,
            raw: format!("{user_id}.{secret}"),
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let (user_id, secret) = raw.trim().split_once('.')?;
        let user_id = user_id.parse().ok()?;
        let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        (secret.len() == 43 && secret.bytes().all(base64url)).then(|| Self {
            user_id,
            raw: raw.trim().to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.raw)
    }
}

/// The id of the `IssueVerification` command the mail reactor sends for the event
/// `event_id`: the same on every redelivery, so the token is committed once. The edge
/// waits for it with `EXPOSE_VERIFICATION_TOKEN`.
pub fn issue_command_id(event_id: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("jukebox:reactor-mail:issue_verification:{event_id}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_one_token_and_another_key_or_event_another() {
        let user = Uuid::now_v7();
        let a = VerificationToken::derive(b"key", user, "user:x:1");
        assert_eq!(
            a.as_str(),
            VerificationToken::derive(b"key", user, "user:x:1").as_str()
        );
        assert_ne!(
            a.as_str(),
            VerificationToken::derive(b"key", user, "user:x:2").as_str()
        );
        assert_ne!(
            a.as_str(),
            VerificationToken::derive(b"other", user, "user:x:1").as_str()
        );
        let parsed = VerificationToken::parse(a.as_str()).expect("a derived token parses");
        assert_eq!((parsed.user_id, parsed.hash()), (user, a.hash()));
        assert!(VerificationToken::parse("nope").is_none());
        let reset =
            VerificationToken::derive_for(TokenPurpose::PasswordReset, b"key", user, "user:x:1");
        assert_ne!(
            a.as_str(),
            reset.as_str(),
            "one event, two purposes, two tokens"
        );
        assert!(VerificationToken::parse(&format!("{user}.short")).is_none());
    }
}
