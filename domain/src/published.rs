//! What of an event leaves the write side (ADR 33): the relay publishes every payload
//! through [`payload_text`], which withholds credential material (password hashes and
//! token hashes), and a rebuild folds the same published shape ([`withhold`]), so a read
//! model is the same whichever way it was fed. The Postgres log keeps the full event:
//! aggregates load from there, never from the bus.
//!
//! A withheld field is absent from the published payload; the event types fill it with
//! `PasswordHash::withheld()` / `TokenHash::withheld()` when they decode it, which never
//! verifies and never matches.

use std::borrow::Cow;

use serde_json::Value;

/// The payload keys that hold credential material, at any depth.
pub const WITHHELD_KEYS: &[&str] = &["password_hash", "token_hash"];

/// Removes every withheld key from `value`, at any depth. Returns whether it removed any.
pub fn withhold(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|key, _| !WITHHELD_KEYS.contains(&key.as_str()));
            let mut removed = map.len() != before;
            for nested in map.values_mut() {
                removed |= withhold(nested);
            }
            removed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |removed, item| withhold(item) | removed),
        _ => false,
    }
}

/// The payload as published, from its stored JSON text. Most payloads hold no withheld
/// key and are passed through unparsed (the relay's hot path); the others are parsed,
/// stripped and printed again. Text that is not JSON is passed through as it is (the log
/// column is `json`, so it cannot happen).
pub fn payload_text(stored: &str) -> Cow<'_, str> {
    if !WITHHELD_KEYS.iter().any(|key| stored.contains(key)) {
        return Cow::Borrowed(stored);
    }
    let Ok(mut value) = serde_json::from_str::<Value>(stored) else {
        return Cow::Borrowed(stored);
    };
    if withhold(&mut value) {
        Cow::Owned(value.to_string())
    } else {
        Cow::Borrowed(stored)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{PasswordHash, SessionEvent, TokenHash, UserEvent};

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    #[test]
    fn credential_fields_are_withheld_and_the_rest_is_kept() {
        let user_id = uuid::Uuid::now_v7();
        let stored =
            json!({"UserSignedUp": {"user_id": user_id, "email": "a@b.co", "password_hash": PHC}})
                .to_string();
        let published = payload_text(&stored);
        assert_eq!(
            serde_json::from_str::<Value>(&published).unwrap(),
            json!({"UserSignedUp": {"user_id": user_id, "email": "a@b.co"}})
        );
        let token = TokenHash::of("t");
        let stored =
            json!({"SessionRefreshed": {"token_hash": token, "at": "2030-01-01T00:00:00Z"}})
                .to_string();
        assert!(!payload_text(&stored).contains(token.as_str()));
    }

    #[test]
    fn payloads_without_credentials_pass_through_unparsed() {
        let stored = r#"{"PlaylistCreated":  {"name": "token"}}"#;
        assert!(matches!(payload_text(stored), Cow::Borrowed(s) if s == stored));
    }

    #[test]
    fn published_events_decode_with_their_credentials_withheld() {
        let user_id = uuid::Uuid::now_v7();
        let mut payload =
            json!({"UserSignedUp": {"user_id": user_id, "email": "a@b.co", "password_hash": PHC}});
        assert!(withhold(&mut payload));
        let UserEvent::UserSignedUp { password_hash, .. } =
            serde_json::from_value(payload).unwrap()
        else {
            panic!("a sign-up");
        };
        assert!(password_hash.is_withheld());
        assert_ne!(password_hash, PasswordHash::parse(PHC).unwrap());

        let mut payload = json!({"SessionStarted": {"user_id": user_id, "token_hash": TokenHash::of("r"),
            "expires_at": "2030-01-01T00:00:00Z", "method": "password"}});
        withhold(&mut payload);
        let SessionEvent::SessionStarted { token_hash, .. } =
            serde_json::from_value(payload).unwrap()
        else {
            panic!("a session");
        };
        assert!(token_hash.is_withheld());
        assert!(!token_hash.matches(&TokenHash::withheld()));
        assert!(!token_hash.matches(&TokenHash::of("r")));
    }
}
