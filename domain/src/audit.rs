//! What an audit view may show of an event or of an aggregate's state: everything but
//! credentials. `state_as_of` rebuilds an aggregate from its events with its own `apply`.

use cqrs_es::Aggregate;
use serde_json::Value;

/// Keys whose values are never shown: hashes, tokens, secrets, an app credential's nonce
/// (half of what derives its secret). `verification`,
/// `current` and `rotated` are the aggregates' own names for token hashes (`User`,
/// `Session`).
fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "token", "secret", "hash", "nonce"]
        .iter()
        .any(|word| key.contains(word))
        || ["verification", "current", "rotated"].contains(&key.as_str())
}

/// The aggregate types an audit can rebuild.
pub const AGGREGATE_TYPES: &[&str] = &[
    crate::User::TYPE,
    crate::EmailClaim::TYPE,
    crate::Session::TYPE,
    crate::ExternalIdentity::TYPE,
    crate::Import::TYPE,
    crate::Track::TYPE,
    crate::Library::TYPE,
    crate::LibraryEntry::TYPE,
    crate::AppCredentials::TYPE,
    crate::Favourite::TYPE,
    crate::Play::TYPE,
    crate::Playlist::TYPE,
    crate::PlayQueueSave::TYPE,
    crate::CollectionImport::TYPE,
    crate::Subscription::TYPE,
];

fn fold<A: Aggregate>(payloads: &[Value]) -> Result<Value, serde_json::Error> {
    let mut aggregate = A::default();
    for payload in payloads {
        aggregate.apply(serde_json::from_value(payload.clone())?);
    }
    Ok(redact(&serde_json::to_value(&aggregate)?))
}

/// The state of an aggregate of `aggregate_type` after these events (payloads in
/// sequence order), folded with the aggregate's own `apply` and redacted. `None` for a
/// type this build does not know.
pub fn state_after(
    aggregate_type: &str,
    payloads: &[Value],
) -> Option<Result<Value, serde_json::Error>> {
    Some(match aggregate_type {
        t if t == crate::User::TYPE => fold::<crate::User>(payloads),
        t if t == crate::EmailClaim::TYPE => fold::<crate::EmailClaim>(payloads),
        t if t == crate::Session::TYPE => fold::<crate::Session>(payloads),
        t if t == crate::ExternalIdentity::TYPE => fold::<crate::ExternalIdentity>(payloads),
        t if t == crate::Import::TYPE => fold::<crate::Import>(payloads),
        t if t == crate::Track::TYPE => fold::<crate::Track>(payloads),
        t if t == crate::Library::TYPE => fold::<crate::Library>(payloads),
        t if t == crate::LibraryEntry::TYPE => fold::<crate::LibraryEntry>(payloads),
        t if t == crate::AppCredentials::TYPE => fold::<crate::AppCredentials>(payloads),
        t if t == crate::Favourite::TYPE => fold::<crate::Favourite>(payloads),
        t if t == crate::Play::TYPE => fold::<crate::Play>(payloads),
        t if t == crate::Playlist::TYPE => fold::<crate::Playlist>(payloads),
        t if t == crate::PlayQueueSave::TYPE => fold::<crate::PlayQueueSave>(payloads),
        t if t == crate::CollectionImport::TYPE => fold::<crate::CollectionImport>(payloads),
        t if t == crate::Subscription::TYPE => fold::<crate::Subscription>(payloads),
        _ => return None,
    })
}

/// Replaces every sensitive value, at any depth, with `"<redacted>"`.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_sensitive(k) {
                        Value::from("<redacted>")
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        // A PHC password hash under any name.
        Value::String(text) if text.starts_with("$argon2") => Value::from("<redacted>"),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_are_redacted_at_any_depth() {
        let event = json!({"UserSignedUp": {"email": "a@b.co", "password_hash": "$argon2id$x"}});
        assert_eq!(
            redact(&event),
            json!({"UserSignedUp": {"email": "a@b.co", "password_hash": "<redacted>"}})
        );
    }

    #[test]
    fn a_user_is_rebuilt_without_its_credentials() {
        let user_id = uuid::Uuid::now_v7();
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        let token = "ab".repeat(32);
        let signed_up =
            json!({"UserSignedUp": {"user_id": user_id, "email": "a@b.co", "password_hash": phc}});
        let issued = json!({"VerificationIssued": {"token_hash": token, "expires_at": "2030-01-01T00:00:00Z"}});
        let before = state_after("user", &[signed_up.clone(), issued.clone()]).unwrap();
        let before = before.expect("the user folds");
        assert_eq!(before["verified"], false);
        assert_eq!(before["email"], "a@b.co");
        let text = before.to_string();
        assert!(!text.contains(phc) && !text.contains(&token), "{text}");
        let after = state_after("user", &[signed_up, issued, json!("EmailVerified")])
            .unwrap()
            .expect("the user folds");
        assert_eq!(after["verified"], true);
        assert!(state_after("nope", &[]).is_none());
    }
}
