//! App credentials' secrets (ADR 24). Subsonic token auth sends `md5(secret + salt)`, so
//! the server needs the secret itself when it checks one: a one-way hash cannot answer.
//! Nothing stores it instead: the secret is `<user id><HMAC(key, credential id, nonce)>`,
//! derived again at each check from the key (from `JWT_SECRET`) and what the log holds
//! (the credential's id and nonce), neither usable alone. The user id in front lets an
//! `apiKey` find its owner's credentials without a lookup table.

use hmac::{Hmac, Mac};
use jukebox_domain::{AppCredential, AppCredentialEvent, AppCredentials};
use jukebox_nats::log;
use md5::{Digest, Md5};
use sha2::Sha256;
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Hex characters of the user id, then of the tag.
const USER_HEX: usize = 32;
const TAG_BYTES: usize = 16;

/// A fresh nonce for a new credential (256 random bits, hex).
pub fn nonce() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The secret of `credential`, owned by `user_id`.
pub fn secret(key: &[u8], user_id: Uuid, credential_id: Uuid, nonce: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(b"jukebox app credential\0");
    mac.update(credential_id.as_bytes());
    mac.update(nonce.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{}{}", user_id.simple(), hex::encode(&tag[..TAG_BYTES]))
}

/// The owner a presented secret names, when it has the shape of one.
pub fn owner(presented: &str) -> Option<Uuid> {
    if presented.len() != USER_HEX + 2 * TAG_BYTES
        || !presented.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    Uuid::try_parse(&presented[..USER_HEX]).ok()
}

/// The user's credentials, folded from the log: a revoke counts from the next request.
pub async fn load(pool: &PgPool, user_id: Uuid) -> Result<AppCredentials, anyhow::Error> {
    let records = log::aggregate(
        pool,
        jukebox_domain::app_credentials::AGGREGATE_TYPE,
        &user_id.to_string(),
        None,
        None,
    )
    .await?;
    let mut records = records;
    // Names are sealed with the user's key (ADR 43).
    jukebox_nats::user_keys::open_records(pool, &mut records, jukebox_nats::sealed::ERASED).await?;
    let events = records
        .iter()
        .map(|record| record.decode::<AppCredentialEvent>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AppCredentials::from_events(events))
}

/// The live credential whose secret is `presented` (compared in constant time).
pub fn by_secret<'a>(
    key: &[u8],
    user_id: Uuid,
    credentials: &'a AppCredentials,
    presented: &str,
) -> Option<&'a AppCredential> {
    credentials.live().find(|c| {
        let expected = secret(key, user_id, c.credential_id, &c.nonce);
        bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    })
}

/// The live credential for which `token` (hex) is `md5(secret + salt)`.
pub fn by_token<'a>(
    key: &[u8],
    user_id: Uuid,
    credentials: &'a AppCredentials,
    token: &str,
    salt: &str,
) -> Option<&'a AppCredential> {
    let token = token.to_ascii_lowercase();
    credentials.live().find(|c| {
        let mut md5 = Md5::new();
        md5.update(secret(key, user_id, c.credential_id, &c.nonce).as_bytes());
        md5.update(salt.as_bytes());
        let expected = hex::encode(md5.finalize());
        bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(ids: &[Uuid]) -> AppCredentials {
        AppCredentials::from_events(
            ids.iter()
                .map(|id| AppCredentialEvent::AppCredentialCreated {
                    credential_id: *id,
                    name: "phone".into(),
                    nonce: format!("nonce-{id}"),
                    created_at: time::OffsetDateTime::UNIX_EPOCH,
                }),
        )
    }

    #[test]
    fn a_secret_names_its_owner_and_opens_only_its_own_credential() {
        let (user, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let all = credentials(&[a, b]);
        let secret_b = secret(b"key", user, b, &format!("nonce-{b}"));
        assert_eq!(owner(&secret_b), Some(user));
        assert_eq!(
            by_secret(b"key", user, &all, &secret_b).map(|c| c.credential_id),
            Some(b)
        );
        // Another key, another user or a revoked credential: nothing.
        assert!(by_secret(b"other", user, &all, &secret_b).is_none());
        assert!(by_secret(b"key", Uuid::now_v7(), &all, &secret_b).is_none());
        assert!(by_secret(b"key", user, &credentials(&[a]), &secret_b).is_none());
        assert_eq!(owner("not a secret"), None);
        assert_eq!(owner(&"g".repeat(64)), None);
    }

    #[test]
    fn a_token_is_the_md5_of_the_secret_and_the_salt() {
        let (user, a) = (Uuid::now_v7(), Uuid::now_v7());
        let all = credentials(&[a]);
        let secret = secret(b"key", user, a, &format!("nonce-{a}"));
        let token = hex::encode(Md5::digest(format!("{secret}c19b2d").as_bytes()));
        assert!(by_token(b"key", user, &all, &token, "c19b2d").is_some());
        assert!(by_token(b"key", user, &all, &token.to_uppercase(), "c19b2d").is_some());
        assert!(by_token(b"key", user, &all, &token, "other").is_none());
    }
}
