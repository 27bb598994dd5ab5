//! Password hashing (argon2id, OWASP parameters). The edge hashes before it builds a
//! command, so a plain password never travels or lands anywhere (SECURITY.md 5a).

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::ApiError;

/// m = 19456 KiB, t = 2, p = 1 (SECURITY.md item 1).
pub const M_COST: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

pub fn hasher() -> Argon2<'static> {
    let params = Params::new(M_COST, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the rules (8..=128 characters, not a common password; nothing else) and hashes
/// on a blocking thread: argon2 is deliberately slow and must not stall the async workers.
pub async fn hash(password: String) -> Result<String, ApiError> {
    let length = password.chars().count();
    if !(8..=128).contains(&length) {
        return Err(ApiError::unprocessable(
            "invalid_password",
            "password must be 8 to 128 characters long",
        ));
    }
    if is_common(&password) {
        return Err(ApiError::unprocessable(
            "common_password",
            "this password is one of the most common ones in leaked-password lists; choose another",
        ));
    }
    blocking(move || hash_now(&password)).await
}

fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .expect("argon2id hashing with valid parameters")
}

/// The result of checking a password against a stored hash.
pub struct Verified {
    pub ok: bool,
    /// A new hash with today's parameters, when the stored one is older and `ok`.
    pub rehash: Option<String>,
}

/// Checks `password` against `stored`, or against a dummy hash with today's parameters
/// when there is none (unknown user, Google-only account): every sign-in costs one
/// argon2 computation, so timing does not tell whether an account exists.
pub async fn verify(stored: Option<String>, password: String) -> Result<Verified, ApiError> {
    blocking(move || {
        let (phc, real) = match &stored {
            Some(phc) => (phc.as_str(), true),
            None => (dummy_hash(), false),
        };
        let Ok(parsed) = argon2::PasswordHash::new(phc) else {
            return Verified {
                ok: false,
                rehash: None,
            };
        };
        let ok = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && real;
        let rehash = (ok && outdated(&parsed)).then(|| hash_now(&password));
        Verified { ok, rehash }
    })
    .await
}

/// A hash made with other parameters (or another argon2 variant) than today's.
fn outdated(parsed: &argon2::PasswordHash<'_>) -> bool {
    let current = parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && Params::try_from(parsed)
            .is_ok_and(|p| p.m_cost() == M_COST && p.t_cost() == T_COST && p.p_cost() == P_COST);
    !current
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now("not the password of anyone"))
}

/// Computes the dummy hash now, so the first sign-in is not slower than the others.
pub fn warm_up() {
    let _ = dummy_hash();
    let _ = is_common("");
}

/// In the list of common passwords (case-insensitive).
pub fn is_common(password: &str) -> bool {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let list = LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    });
    list.contains(password.to_lowercase().as_str())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_and_an_old_one_is_replaced() {
        let hash = super::hash("a fine passphrase".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let good = verify(Some(hash.clone()), "a fine passphrase".into())
            .await
            .unwrap();
        assert!(good.ok && good.rehash.is_none());
        let bad = verify(Some(hash), "a fine passphrasE".into())
            .await
            .unwrap();
        assert!(!bad.ok);

        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"a fine passphrase", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        let upgraded = verify(Some(weak), "a fine passphrase".into())
            .await
            .unwrap();
        assert!(upgraded.ok);
        assert!(upgraded.rehash.unwrap().contains("m=19456,t=2,p=1"));

        let nobody = verify(None, "not the password of anyone".into())
            .await
            .unwrap();
        assert!(!nobody.ok, "the dummy hash never signs anyone in");
    }

    #[tokio::test]
    async fn length_and_common_passwords_are_refused_but_nothing_else() {
        assert!(super::hash("short".into()).await.is_err());
        assert!(super::hash("x".repeat(129)).await.is_err());
        assert!(is_common("Password1") && is_common("qwertyuiop"));
        assert!(super::hash("PASSWORD123".into()).await.is_err());
        // No composition rules: spaces, unicode and 128 characters are kept as they are.
        assert!(super::hash("ünïcødé  with spaces".into()).await.is_ok());
        assert!(super::hash("y".repeat(128)).await.is_ok());
    }
}
