//! Claim ids as keyed hashes (ADR 43). An `EmailClaim` is keyed by its address and an
//! `ExternalIdentity` by `<issuer>|<subject>`: the ids the plan names. Stored as they are,
//! those would sit in the log's aggregate ids, in NATS subjects and on `EVENTS`, where no
//! erasure can reach them. Every reader and writer turns them into
//! `hmac:<hex(HMAC-SHA256(server key, aggregate type ‖ 0 ‖ plain id))>` instead: the
//! same address always finds the same claim, and the id tells nothing without the key,
//! which lives in `server_keys` (migration 0028), never on the bus.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every keyed claim id starts with (a plain one is an address or `<issuer>|...`).
pub const PREFIX: &str = "hmac:";

/// The aggregate types whose ids are keyed.
pub const CLAIM_TYPES: &[&str] = &["email_claim", "external_identity"];

/// The name of the key's row in `server_keys`.
pub const KEY_NAME: &str = "claim_ids";

/// The server's claim-id key. `Debug` never shows it.
#[derive(Clone)]
pub struct ClaimKey([u8; 32]);

impl std::fmt::Debug for ClaimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimKey(<redacted>)")
    }
}

impl ClaimKey {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The stored id of a claim the plan names `plain` (already keyed ids, and aggregate
    /// types that are not claims, are returned as they are).
    pub fn id(&self, aggregate_type: &str, plain: &str) -> String {
        if !CLAIM_TYPES.contains(&aggregate_type) || is_keyed(plain) {
            return plain.to_owned();
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(aggregate_type.as_bytes());
        mac.update(&[0]);
        mac.update(plain.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut id = String::with_capacity(PREFIX.len() + 64);
        id.push_str(PREFIX);
        for byte in digest {
            id.push_str(&format!("{byte:02x}"));
        }
        id
    }
}

/// Whether an id is keyed already (written after ADR 43, or re-keyed by
/// `jukebox events encrypt-legacy`).
pub fn is_keyed(id: &str) -> bool {
    id.starts_with(PREFIX)
}

/// The server's claim-id key, made by the first caller (an insert-or-read in one
/// statement, read again when another caller's insert won the race).
#[cfg(feature = "sqlx")]
pub async fn load(pool: &sqlx::PgPool) -> Result<ClaimKey, sqlx::Error> {
    use rand::RngCore;
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    let made: Option<Vec<u8>> = sqlx::query_scalar(
        "WITH made AS (
             INSERT INTO server_keys (name, key) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING
             RETURNING key)
         SELECT key FROM made
         UNION ALL
         SELECT key FROM server_keys WHERE name = $1
         LIMIT 1",
    )
    .bind(KEY_NAME)
    .bind(fresh.as_slice())
    .fetch_optional(pool)
    .await?;
    let key = match made {
        Some(key) => key,
        None => {
            sqlx::query_scalar("SELECT key FROM server_keys WHERE name = $1")
                .bind(KEY_NAME)
                .fetch_one(pool)
                .await?
        }
    };
    ClaimKey::from_bytes(&key)
        .ok_or_else(|| sqlx::Error::Protocol("server_keys.claim_ids is not 32 bytes".into()))
}

/// A process's claim ids: the key is read from its database once, on first use.
#[cfg(feature = "sqlx")]
#[derive(Debug, Clone)]
pub struct ClaimIds {
    pool: sqlx::PgPool,
    key: std::sync::Arc<tokio::sync::OnceCell<ClaimKey>>,
}

#[cfg(feature = "sqlx")]
impl ClaimIds {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self {
            pool,
            key: Default::default(),
        }
    }

    /// The stored id of the claim the plan names `plain` ([`ClaimKey::id`]).
    pub async fn id(&self, aggregate_type: &str, plain: &str) -> Result<String, sqlx::Error> {
        if !CLAIM_TYPES.contains(&aggregate_type) || is_keyed(plain) {
            return Ok(plain.to_owned());
        }
        let key = self.key.get_or_try_init(|| load(&self.pool)).await?;
        Ok(key.id(aggregate_type, plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_id_is_keyed_stable_and_says_nothing() {
        let key = ClaimKey([7; 32]);
        let id = key.id("email_claim", "ann@example.com");
        assert!(is_keyed(&id), "{id}");
        assert_eq!(id.len(), PREFIX.len() + 64);
        assert!(!id.contains("ann"));
        assert_eq!(id, key.id("email_claim", "ann@example.com"));
        assert_eq!(key.id("email_claim", &id), id, "keyed once");
        assert_ne!(id, ClaimKey([8; 32]).id("email_claim", "ann@example.com"));
        assert_ne!(id, key.id("external_identity", "ann@example.com"));
        assert_eq!(key.id("user", "ann@example.com"), "ann@example.com");
        assert_eq!(format!("{key:?}"), "ClaimKey(<redacted>)");
    }
}
