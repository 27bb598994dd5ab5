//! Personal data in events, sealed per user (ADR 34): crypto-shredding. The processor
//! seals the personal fields of a user's events with that user's key before they are
//! appended; whoever reads them opens them with the keys in `user_keys` (`keys.rs`):
//! the processor's load, the projector runtime (live and rebuild), the mail reactor and
//! the audit views. The relay publishes what the log holds, so `EVENTS` carries only
//! ciphertext. Erasing a user destroys the key: every sealed value of theirs opens to
//! [`ERASED`] from then on, in the log, on the stream and in any backup of either.
//!
//! A sealed value is one JSON string, `sealed:v1:<user id>:<base64url(nonce ‖ ciphertext)>`,
//! XChaCha20-Poly1305 with a random 192-bit nonce and the user id as associated data (a
//! value copied into another user's event does not open). It names its user, so a
//! reader knows which key to fetch without knowing the event.

use std::collections::{HashMap, HashSet};
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde_json::Value;
use uuid::Uuid;

/// What every sealed value starts with.
pub const PREFIX: &str = "sealed:v1:";

/// What a sealed value reads as once its user's key is gone.
pub const ERASED: &str = "erased";

/// What a sealed address reads as in an aggregate once its key is gone: a valid address
/// that reaches no one, so the aggregate still folds (and refuses what it must).
pub const ERASED_ADDRESS: &str = "erased@erased.invalid";

/// The payload keys that hold personal data: addresses (`email`, an address change's
/// `from` and `to`) and a Google account's `subject`.
pub const PERSONAL_KEYS: &[&str] = &["email", "from", "to", "subject"];

/// Text the user typed (ADR 43): a playlist's name and description, and an app
/// credential's name, sealed with the owner's key like the personal fields.
pub const PLAYLIST_KEYS: &[&str] = &["name", "description"];
pub const APP_CREDENTIAL_KEYS: &[&str] = &["name"];
/// A correction of a track in one's library (ADR 23): what the owner typed.
pub const CORRECTION_KEYS: &[&str] = &["title", "artists", "album"];

/// The address a sign-up attempt carries (for the mail to the owner), sealed with the
/// owner's key: the claim's id is only a keyed hash of it (ADR 43).
pub const CLAIM_KEYS: &[&str] = &["email"];

/// One user's 256-bit key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserKey([u8; 32]);

impl UserKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserKey(<redacted>)")
    }
}

/// Seals `plaintext` for `user`.
pub fn seal(key: &UserKey, user: Uuid, plaintext: &str) -> String {
    let cipher = XChaCha20Poly1305::new(key.0.as_slice().into());
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: user.as_bytes(),
            },
        )
        .expect("XChaCha20-Poly1305 seals any length we write");
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    format!("{PREFIX}{user}:{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The user a sealed value belongs to, and its encoded body; `None` for plain text.
pub fn owner(value: &str) -> Option<(Uuid, &str)> {
    let rest = value.strip_prefix(PREFIX)?;
    let (user, body) = rest.split_once(':')?;
    Some((user.parse().ok()?, body))
}

/// Opens a sealed value with its user's key; `None` when it does not open (another key,
/// tampered, not sealed).
pub fn open(key: &UserKey, value: &str) -> Option<String> {
    let (user, body) = owner(value)?;
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    if bytes.len() < 24 {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(24);
    let cipher = XChaCha20Poly1305::new(key.0.as_slice().into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: user.as_bytes(),
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

/// Whether a payload has a personal field that is not sealed yet (at any depth).
pub fn has_personal(payload: &Value) -> bool {
    has_fields(payload, PERSONAL_KEYS)
}

/// Seals every personal field of `payload` (at any depth) for `user`.
pub fn seal_payload(payload: &mut Value, user: Uuid, key: &UserKey) {
    seal_fields(payload, user, key, PERSONAL_KEYS)
}

/// Whether a payload has a string under one of `names` that is not sealed yet (at any
/// depth).
pub fn has_fields(payload: &Value, names: &[&str]) -> bool {
    match payload {
        Value::Object(map) => map.iter().any(|(key, value)| {
            (names.contains(&key.as_str()) && has_plain(value)) || has_fields(value, names)
        }),
        Value::Array(items) => items.iter().any(|item| has_fields(item, names)),
        _ => false,
    }
}

/// A plain string, or a list holding one.
fn has_plain(value: &Value) -> bool {
    match value {
        Value::String(s) => owner(s).is_none(),
        Value::Array(items) => items.iter().any(has_plain),
        _ => false,
    }
}

/// Seals every string under one of `names` in `payload` (at any depth) for `user`.
pub fn seal_fields(payload: &mut Value, user: Uuid, key: &UserKey, names: &[&str]) {
    replace_fields(payload, names, &mut |text| seal(key, user, text));
}

/// Seals every string under one of `names` with a key nobody keeps: what is written when
/// the text's owner was erased (or cannot be named, `Uuid::nil()`). Each reader then
/// reads it as it reads any erased value (ADR 43).
pub fn seal_fields_for_nobody(payload: &mut Value, user: Option<Uuid>, names: &[&str]) {
    seal_fields(
        payload,
        user.unwrap_or_default(),
        &UserKey::generate(),
        names,
    );
}

fn replace_fields(payload: &mut Value, names: &[&str], with: &mut dyn FnMut(&str) -> String) {
    match payload {
        Value::Object(map) => {
            for (name, value) in map.iter_mut() {
                match value {
                    Value::String(text)
                        if names.contains(&name.as_str()) && owner(text).is_none() =>
                    {
                        *text = with(text);
                    }
                    // A list of names (a correction's artists): each one.
                    Value::Array(items) if names.contains(&name.as_str()) => {
                        for item in items {
                            if let Value::String(text) = item {
                                if owner(text).is_none() {
                                    *text = with(text);
                                }
                            }
                        }
                    }
                    other => replace_fields(other, names, with),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_fields(item, names, with)),
        _ => {}
    }
}

/// Whether a personal field of an opened payload reads as erased (its key is gone): a
/// reader with nothing to do for such an event acks it instead of retrying it.
pub fn reads_erased(payload: &Value) -> bool {
    match payload {
        Value::Object(map) => map.iter().any(|(key, value)| {
            (PERSONAL_KEYS.contains(&key.as_str()) && value.as_str() == Some(ERASED))
                || reads_erased(value)
        }),
        Value::Array(items) => items.iter().any(reads_erased),
        _ => false,
    }
}

/// The users whose sealed values `payload` holds.
pub fn owners(payload: &Value, into: &mut HashSet<Uuid>) {
    match payload {
        Value::String(text) => {
            if let Some((user, _)) = owner(text) {
                into.insert(user);
            }
        }
        Value::Object(map) => map.values().for_each(|value| owners(value, into)),
        Value::Array(items) => items.iter().for_each(|item| owners(item, into)),
        _ => {}
    }
}

/// The keys a reader holds: a user with no entry has been erased (or never had one).
#[derive(Debug, Default, Clone)]
pub struct Keys(pub HashMap<Uuid, UserKey>);

impl Keys {
    /// Replaces every sealed value in `payload` with its plaintext, or with `erased` when
    /// its key is gone (`erased` is what the caller can decode: [`ERASED`] for the audit
    /// views, a placeholder address for the aggregates, which must still fold).
    pub fn open_payload(&self, payload: &mut Value, erased: &str) {
        match payload {
            Value::String(text) => {
                if let Some((user, _)) = owner(text) {
                    *text = self
                        .0
                        .get(&user)
                        .and_then(|key| open(key, text))
                        .unwrap_or_else(|| erased.to_owned());
                }
            }
            Value::Object(map) => map
                .values_mut()
                .for_each(|value| self.open_payload(value, erased)),
            Value::Array(items) => items
                .iter_mut()
                .for_each(|item| self.open_payload(item, erased)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_sealed_value_opens_with_its_key_only() {
        let (key, user) = (UserKey::generate(), Uuid::now_v7());
        let sealed = seal(&key, user, "ann@example.com");
        assert!(sealed.starts_with(&format!("{PREFIX}{user}:")), "{sealed}");
        assert!(!sealed.contains("ann@example.com"));
        assert_ne!(
            sealed,
            seal(&key, user, "ann@example.com"),
            "a fresh nonce each time"
        );
        assert_eq!(open(&key, &sealed).as_deref(), Some("ann@example.com"));
        assert_eq!(open(&UserKey::generate(), &sealed), None);
        // Moved to another user: the associated data no longer matches.
        let moved = sealed.replace(&user.to_string(), &Uuid::now_v7().to_string());
        assert_eq!(open(&key, &moved), None);
        assert_eq!(open(&key, "ann@example.com"), None);
        assert_eq!(format!("{key:?}"), "UserKey(<redacted>)");
    }

    #[test]
    fn personal_fields_are_sealed_and_open_or_read_erased() {
        let (key, user) = (UserKey::generate(), Uuid::now_v7());
        let plain = json!({"EmailChanged": {"from": "a@b.co", "to": "c@d.co"}});
        let mut payload = plain.clone();
        assert!(has_personal(&payload));
        seal_payload(&mut payload, user, &key);
        assert!(!has_personal(&payload));
        assert!(!payload.to_string().contains("@"), "{payload}");
        let mut users = HashSet::new();
        owners(&payload, &mut users);
        assert_eq!(users, HashSet::from([user]));

        let mut opened = payload.clone();
        Keys(HashMap::from([(user, key)])).open_payload(&mut opened, ERASED);
        assert_eq!(opened, plain);
        let mut erased = payload;
        Keys::default().open_payload(&mut erased, ERASED);
        assert_eq!(
            erased,
            json!({"EmailChanged": {"from": "erased", "to": "erased"}})
        );
        // A list under a sealed name: each string in it.
        let key = UserKey::generate();
        let mut corrected = json!({"TrackDetailsCorrected": {"correction":
            {"title": "Solo", "artists": ["Band", "Guest"], "year": 2002}}});
        assert!(has_fields(&corrected, CORRECTION_KEYS));
        seal_fields(&mut corrected, user, &key, CORRECTION_KEYS);
        assert!(!has_fields(&corrected, CORRECTION_KEYS));
        let correction = &corrected["TrackDetailsCorrected"]["correction"];
        assert!(correction["artists"][1]
            .as_str()
            .unwrap()
            .starts_with(PREFIX));
        assert_eq!(correction["year"], 2002);
        Keys(HashMap::from([(user, key.clone())])).open_payload(&mut corrected, ERASED);
        assert_eq!(
            corrected["TrackDetailsCorrected"]["correction"]["artists"],
            json!(["Band", "Guest"])
        );
        assert!(reads_erased(&erased) && !reads_erased(&opened));
        // Fields that are not personal, and plain (legacy) values, are left alone.
        let mut other = json!({"RoleGranted": {"role": "admin"}, "email": 3});
        seal_payload(&mut other, user, &UserKey::generate());
        assert_eq!(other, json!({"RoleGranted": {"role": "admin"}, "email": 3}));
    }
}
