//! The attempt cookie of an OpenID Connect sign-in or link (ADR 44, ADR 46): state, nonce
//! and PKCE verifier, the provider, and what the attempt is for, HMAC-signed, HttpOnly,
//! under the provider's own callback path, ten minutes.

use axum::http::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use super::GOOGLE;
use crate::oidc::Attempt;
use crate::state::AppState;

/// How long a sign-in attempt may take between login and callback.
const ATTEMPT_SECONDS: i64 = 600;

fn sign(key: &[u8], data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// What the attempt is for: a sign-in, or linking the identity to a signed-in account
/// (ADR 46), which names the account and the session that asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Intent {
    SignIn,
    Link { user_id: Uuid, session_id: Uuid },
}

/// The signed cookie value: provider, state, nonce, verifier, expiry, intent. The secrets
/// are URL-safe base64, provider ids have no dots and the intent none either, so `.`
/// separates unambiguously.
pub(crate) fn encode(key: &[u8], provider: &str, attempt: &Attempt, intent: Intent) -> String {
    let expires = OffsetDateTime::now_utc().unix_timestamp() + ATTEMPT_SECONDS;
    let intent = match intent {
        Intent::SignIn => "signin".to_owned(),
        Intent::Link {
            user_id,
            session_id,
        } => format!("link:{user_id}:{session_id}"),
    };
    let data = format!(
        "{provider}.{}.{}.{}.{expires}.{intent}",
        attempt.state, attempt.nonce, attempt.verifier
    );
    let mac = sign(key, &data);
    format!("{data}.{mac}")
}

/// The attempt a cookie carries, if it is untampered, unexpired and for `provider`. A
/// cookie from before intents (five fields) is a sign-in.
pub(super) fn decode(key: &[u8], provider: &str, raw: &str) -> Option<(Attempt, Intent)> {
    let (data, mac) = raw.rsplit_once('.')?;
    if !bool::from(sign(key, data).as_bytes().ct_eq(mac.as_bytes())) {
        return None;
    }
    let mut parts = data.split('.');
    let (for_provider, state, nonce, verifier, expires) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if for_provider != provider
        || expires.parse::<i64>().ok()? < OffsetDateTime::now_utc().unix_timestamp()
    {
        return None;
    }
    let intent = match parts.next() {
        None | Some("signin") => Intent::SignIn,
        Some(link) => {
            let mut ids = link.strip_prefix("link:")?.split(':');
            let user_id = Uuid::parse_str(ids.next()?).ok()?;
            let session_id = Uuid::parse_str(ids.next()?).ok()?;
            Intent::Link {
                user_id,
                session_id,
            }
        }
    };
    Some((
        Attempt {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
        },
        intent,
    ))
}

/// The attempt cookie lives under the provider's own callback path, so attempts with two
/// providers do not overwrite each other.
pub(crate) fn attempt_cookie(state: &AppState, provider: &str, value: Option<&str>) -> HeaderValue {
    let name = state.auth.oauth_cookie_name();
    let path = if provider == GOOGLE {
        format!("{}/auth/google", state.mount)
    } else {
        format!("{}/auth/oidc/{provider}", state.mount)
    };
    let secure = if state.auth.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    // Lax: the callback is a top-level navigation coming from the provider's site.
    let cookie = match value {
        Some(value) => format!(
            "{name}={value}; Path={path}; Max-Age={ATTEMPT_SECONDS}; HttpOnly; SameSite=Lax{secure}"
        ),
        None => format!("{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
    };
    HeaderValue::from_str(&cookie).expect("cookie values are visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_cookie_is_tamper_proof_and_bound_to_its_provider() {
        let key = b"k".repeat(32);
        let attempt = Attempt {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
        };
        let raw = encode(&key, "keycloak", &attempt, Intent::SignIn);
        let (back, intent) = decode(&key, "keycloak", &raw).unwrap();
        assert_eq!(intent, Intent::SignIn);
        assert_eq!(
            (back.state, back.nonce, back.verifier),
            ("s".into(), "n".into(), "v".into())
        );
        assert!(decode(&key, "keycloak", &raw.replacen(".s.", ".x.", 1)).is_none());
        assert!(decode(b"other", "keycloak", &raw).is_none());
        assert!(decode(&key, "google", &raw).is_none());

        // A link attempt names the account and session; changing either breaks the MAC.
        let link = Intent::Link {
            user_id: Uuid::now_v7(),
            session_id: Uuid::new_v4(),
        };
        let raw = encode(&key, "keycloak", &attempt, link);
        assert_eq!(decode(&key, "keycloak", &raw).unwrap().1, link);
        let Intent::Link { user_id, .. } = link else {
            unreachable!()
        };
        let forged = raw.replace(&user_id.to_string(), &Uuid::now_v7().to_string());
        assert!(decode(&key, "keycloak", &forged).is_none());
    }
}
