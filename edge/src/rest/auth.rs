//! Who is calling: `apiKey`, or `u` with `p` (plain or `enc:` hex) or `t` + `s`, always
//! against the user's app credentials (ADR 24), never the account password. Failures
//! count per account; past the limit every attempt is refused unchecked.

use std::time::{Duration, Instant};

use jukebox_domain::Email;
use jukebox_projections::access;
use time::OffsetDateTime;
use uuid::Uuid;

use super::envelope::SubsonicError;
use super::Params;
use crate::app_credentials::{by_secret, by_token, load, owner};
use crate::rate_limit::Bucket;
use crate::state::AppState;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub email: String,
    pub credential_id: Uuid,
    /// Authenticated with `apiKey` (tokenInfo answers only then).
    pub api_key: bool,
}

enum Presented<'a> {
    ApiKey(&'a str),
    Password(&'a str, String),
    Token(&'a str, &'a str, &'a str),
}

fn presented(params: &Params) -> Result<Presented<'_>, SubsonicError> {
    let (u, p, t, s) = (
        params.get("u"),
        params.get("p"),
        params.get("t"),
        params.get("s"),
    );
    if let Some(key) = params.get("apiKey") {
        if u.is_some() || p.is_some() || t.is_some() || s.is_some() {
            return Err(SubsonicError::conflicting());
        }
        return Ok(Presented::ApiKey(key));
    }
    let Some(u) = u else {
        return Err(SubsonicError::missing("u (or apiKey)"));
    };
    match (p, t, s) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(SubsonicError::conflicting()),
        (Some(p), None, None) => Ok(Presented::Password(u, decode_password(p))),
        (None, Some(t), Some(s)) => Ok(Presented::Token(u, t, s)),
        (None, Some(_), None) => Err(SubsonicError::missing("s")),
        (None, None, Some(_)) => Err(SubsonicError::missing("t")),
        (None, None, None) => Err(SubsonicError::missing("p (or t and s, or apiKey)")),
    }
}

/// `enc:<hex>` is the password hex-encoded; anything else is the password itself.
fn decode_password(p: &str) -> String {
    p.strip_prefix("enc:")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| p.to_owned())
}

pub async fn authenticate(state: &AppState, params: &Params) -> Result<Caller, SubsonicError> {
    let presented = presented(params)?;
    let key = &state.auth.app_credential_key;
    let (account, refused) = match &presented {
        Presented::ApiKey(api_key) => {
            let account = match owner(api_key) {
                Some(user_id) => access::by_id(&state.pool, user_id).await?,
                None => None,
            };
            (account, SubsonicError::invalid_api_key())
        }
        Presented::Password(u, _) | Presented::Token(u, _, _) => {
            let account = match Email::parse(u) {
                Ok(email) => access::by_email(&state.pool, email.as_str()).await?,
                Err(_) => None,
            };
            (account, SubsonicError::wrong_credentials())
        }
    };
    let Some(account) = account else {
        state.metrics.auth_failure("subsonic");
        return Err(refused);
    };
    let user = account.user_id.to_string();
    if state.limiter.check(Bucket::SubsonicAccount, &user).is_err() {
        state.metrics.auth_failure("subsonic");
        return Err(refused);
    }
    let credentials = load(&state.pool, account.user_id).await?;
    let found = match &presented {
        Presented::ApiKey(api_key) => by_secret(key, account.user_id, &credentials, api_key),
        Presented::Password(_, password) => by_secret(key, account.user_id, &credentials, password),
        Presented::Token(_, t, s) => by_token(key, account.user_id, &credentials, t, s),
    };
    let Some(credential) = found else {
        state.limiter.hit(Bucket::SubsonicAccount, &user);
        state.metrics.auth_failure("subsonic");
        return Err(refused);
    };
    if account.disabled {
        return Err(SubsonicError::not_authorized(
            "this account is disabled; contact an administrator",
        ));
    }
    let client = params.get("c").unwrap_or("unknown");
    note_use(state, account.user_id, credential.credential_id, client);
    Ok(Caller {
        user_id: account.user_id,
        email: account.email,
        credential_id: credential.credential_id,
        api_key: matches!(presented, Presented::ApiKey(_)),
    })
}

/// How often one edge records a credential's use when the client stays the same.
const USE_EVERY: Duration = Duration::from_secs(60);

/// Records the use in the background, at most once a minute per credential (or when the
/// client changes), so a sync of thousands of requests writes a handful of rows.
fn note_use(state: &AppState, user_id: Uuid, credential_id: Uuid, client: &str) {
    let client: String = client.chars().take(100).collect();
    {
        let mut recorded = state.credential_uses.lock().expect("uses");
        let now = Instant::now();
        if let Some((at, last)) = recorded.get(&credential_id) {
            if now.duration_since(*at) < USE_EVERY && *last == client {
                return;
            }
        }
        if recorded.len() > 10_000 {
            recorded.retain(|_, (at, _)| now.duration_since(*at) < USE_EVERY);
        }
        recorded.insert(credential_id, (now, client.clone()));
    }
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let at = OffsetDateTime::now_utc();
        let recorded = jukebox_projections::app_credentials::record_use(
            &pool,
            user_id,
            credential_id,
            at,
            &client,
        )
        .await;
        if let Err(error) = recorded {
            tracing::warn!(%error, "recording an app credential's use");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn mechanisms_do_not_mix() {
        let code = |pairs: &[(&str, &str)]| presented(&params(pairs)).err().map(|e| e.code);
        assert_eq!(code(&[("apiKey", "k"), ("u", "a")]), Some(43));
        assert_eq!(code(&[("apiKey", "k"), ("t", "a"), ("s", "b")]), Some(43));
        assert_eq!(
            code(&[("u", "a"), ("p", "x"), ("t", "a"), ("s", "b")]),
            Some(43)
        );
        assert_eq!(code(&[("u", "a")]), Some(10));
        assert_eq!(code(&[("u", "a"), ("t", "a")]), Some(10));
        assert_eq!(code(&[]), Some(10));
        assert_eq!(code(&[("apiKey", "k")]), None);
        assert_eq!(code(&[("u", "a"), ("t", "a"), ("s", "b")]), None);
    }

    #[test]
    fn enc_passwords_are_hex() {
        assert_eq!(decode_password("enc:736573616d65"), "sesame");
        assert_eq!(decode_password("sesame"), "sesame");
        assert_eq!(decode_password("enc:zz"), "enc:zz");
    }
}
