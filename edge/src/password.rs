//! Password hashing (argon2id, OWASP parameters). The edge hashes before it builds a
//! command, so a plain password never travels or lands anywhere (SECURITY.md 5a).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::ApiError;

/// m = 19456 KiB, t = 2, p = 1 (SECURITY.md item 1).
pub fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the length rule (8..=128 characters, nothing else) and hashes on a blocking
/// thread: argon2 is deliberately slow and must not stall the async workers.
pub async fn hash(password: String) -> Result<String, ApiError> {
    let length = password.chars().count();
    if !(8..=128).contains(&length) {
        return Err(ApiError::unprocessable(
            "invalid_password",
            "password must be 8 to 128 characters long",
        ));
    }
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing task failed: {e}")))?
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing failed: {e}")))
}
