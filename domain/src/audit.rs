//! What an audit view may show of an event: everything but credentials.

use serde_json::Value;

/// Keys whose values are never shown: hashes, tokens, secrets.
fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "token", "secret", "hash"]
        .iter()
        .any(|word| key.contains(word))
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
}
