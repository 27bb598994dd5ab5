//! Signed stream and cover URLs: the HMAC over song, user and expiry, and the URLs the
//! API hands out.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

/// Signs and checks stream URLs.
#[derive(Clone)]
pub struct StreamSigner {
    key: Arc<[u8]>,
    /// How long an issued URL stays valid.
    pub ttl: Duration,
}

/// What a signed URL opens. Each signs under its own tag, so one cannot pass for the
/// other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// The audio (`/api/public/stream/...`).
    Stream,
    /// The cover picture (`/api/public/covers/...`).
    Cover,
}

impl Capability {
    fn tag(self) -> &'static [u8] {
        match self {
            Self::Stream => b"jukebox-stream-v1",
            Self::Cover => b"jukebox-cover-v1",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Stream => "/api/public/stream/",
            Self::Cover => "/api/public/covers/",
        }
    }

    /// What a person calls it, in refusals.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Self::Stream => "stream link",
            Self::Cover => "cover link",
        }
    }
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No signature, or parameters missing or malformed.
    Missing,
    /// The signature does not match (tampered, truncated, or for another song or user).
    BadSignature,
    Expired,
}

impl StreamSigner {
    pub fn new(key: &[u8], ttl: Duration) -> Self {
        Self {
            key: key.into(),
            ttl,
        }
    }

    fn mac(
        &self,
        capability: Capability,
        song_id: &str,
        user_id: Uuid,
        expires: i64,
    ) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        // Unambiguous: a version tag (one per capability, both 17 bytes), then
        // length-prefixed song id, fixed-size user id and expiry. No two (capability,
        // song, user, expiry) tuples encode to the same bytes.
        mac.update(capability.tag());
        mac.update(&(song_id.len() as u64).to_be_bytes());
        mac.update(song_id.as_bytes());
        mac.update(user_id.as_bytes());
        mac.update(&expires.to_be_bytes());
        mac
    }

    /// The `s` parameter of a stream URL for this song, user and expiry (unix seconds).
    pub fn sign(&self, song_id: &str, user_id: Uuid, expires: i64) -> String {
        self.sign_for(Capability::Stream, song_id, user_id, expires)
    }

    /// The `s` parameter of a URL for `capability`.
    pub fn sign_for(
        &self,
        capability: Capability,
        song_id: &str,
        user_id: Uuid,
        expires: i64,
    ) -> String {
        let mac = self.mac(capability, song_id, user_id, expires);
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Checks a stream URL's signature (constant time) and then the expiry against `now`.
    pub fn verify(
        &self,
        song_id: &str,
        user_id: Uuid,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), Denied> {
        self.verify_for(
            Capability::Stream,
            song_id,
            user_id,
            expires,
            signature,
            now,
        )
    }

    /// [`verify`](Self::verify) for a URL of `capability`.
    pub fn verify_for(
        &self,
        capability: Capability,
        song_id: &str,
        user_id: Uuid,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), Denied> {
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Denied::BadSignature)?;
        self.mac(capability, song_id, user_id, expires)
            .verify_slice(&signature)
            .map_err(|_| Denied::BadSignature)?;
        if expires <= now {
            return Err(Denied::Expired);
        }
        Ok(())
    }
}

/// What the API needs to issue stream URLs.
#[derive(Clone)]
pub struct StreamIssuer {
    pub signer: StreamSigner,
    /// `PUBLIC_STREAM_BASE_URL`, without a trailing slash.
    pub public_base_url: String,
}

impl StreamIssuer {
    /// A stream URL and its expiry (unix seconds).
    pub fn url(&self, song_id: &str, user_id: Uuid, now: OffsetDateTime) -> (String, i64) {
        let expires = now.unix_timestamp() + self.signer.ttl.as_secs() as i64;
        let url = self.signed(Capability::Stream, song_id, user_id, expires);
        (url, expires)
    }

    /// A cover URL. Its expiry is rounded down to a quarter of the lifetime, so a page
    /// that lists the library again within that time gets the same URLs and the browser
    /// shows the cached pictures instead of fetching each one anew.
    pub fn cover_url(&self, song_id: &str, user_id: Uuid, now: OffsetDateTime) -> String {
        let now = now.unix_timestamp();
        let ttl = self.signer.ttl.as_secs() as i64;
        let step = (ttl / 4).max(1);
        let expires = ((now + ttl) / step * step).max(now + 1);
        self.signed(Capability::Cover, song_id, user_id, expires)
    }

    fn signed(&self, capability: Capability, song_id: &str, user_id: Uuid, expires: i64) -> String {
        let signature = self.signer.sign_for(capability, song_id, user_id, expires);
        let base = format!("{}{}", self.public_base_url, capability.path());
        let mut url = url::Url::parse(&base).expect("PUBLIC_STREAM_BASE_URL is checked at start");
        url.path_segments_mut()
            .expect("an http(s) base URL")
            .pop_if_empty()
            .push(song_id);
        url.query_pairs_mut()
            .append_pair("u", &user_id.to_string())
            .append_pair("e", &expires.to_string())
            .append_pair("s", &signature);
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> StreamSigner {
        StreamSigner::new(b"a key used for nothing else", Duration::from_secs(300))
    }

    #[test]
    fn a_signature_verifies_only_for_its_own_song_user_and_expiry() {
        let signer = signer();
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let signature = signer.sign("yt:song-a", alice, 2_000);
        assert_eq!(
            signer.verify("yt:song-a", alice, 2_000, &signature, 1_000),
            Ok(())
        );
        for (song, user, expires) in [
            ("yt:song-b", alice, 2_000),
            ("yt:song-a", bob, 2_000),
            ("yt:song-a", alice, 2_001),
        ] {
            assert_eq!(
                signer.verify(song, user, expires, &signature, 1_000),
                Err(Denied::BadSignature)
            );
        }
        let other_key = StreamSigner::new(b"another key", Duration::from_secs(300));
        assert_eq!(
            other_key.verify("yt:song-a", alice, 2_000, &signature, 1_000),
            Err(Denied::BadSignature)
        );
    }

    #[test]
    fn tampered_truncated_and_expired_signatures_fail() {
        let signer = signer();
        let user = Uuid::now_v7();
        let signature = signer.sign("s", user, 2_000);
        let truncated = &signature[..signature.len() - 2];
        let mut tampered = signature.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [truncated, tampered.as_str(), "", "!!not base64!!"] {
            assert_eq!(
                signer.verify("s", user, 2_000, bad, 1_000),
                Err(Denied::BadSignature)
            );
        }
        assert_eq!(
            signer.verify("s", user, 2_000, &signature, 2_000),
            Err(Denied::Expired)
        );
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        // "ab" + user vs "a" + "b..." cannot collide: the song id is length-prefixed.
        let signer = signer();
        let user = Uuid::nil();
        assert_ne!(signer.sign("ab", user, 1), signer.sign("a", user, 1));
    }

    #[test]
    fn a_cover_signature_never_opens_the_audio_nor_the_reverse() {
        let signer = signer();
        let user = Uuid::now_v7();
        let cover = signer.sign_for(Capability::Cover, "yt:a", user, 2_000);
        let stream = signer.sign("yt:a", user, 2_000);
        assert_ne!(cover, stream);
        assert_eq!(
            signer.verify_for(Capability::Cover, "yt:a", user, 2_000, &cover, 1_000),
            Ok(())
        );
        assert_eq!(
            signer.verify("yt:a", user, 2_000, &cover, 1_000),
            Err(Denied::BadSignature)
        );
        assert_eq!(
            signer.verify_for(Capability::Cover, "yt:a", user, 2_000, &stream, 1_000),
            Err(Denied::BadSignature)
        );
    }

    #[test]
    fn cover_urls_stay_the_same_for_a_while_and_never_outlive_the_ttl() {
        let issuer = StreamIssuer {
            signer: signer(),
            public_base_url: "http://127.0.0.1:8005".into(),
        };
        let user = Uuid::now_v7();
        let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap();
        let expiry = |url: &str| -> i64 {
            let url = url::Url::parse(url).unwrap();
            let e = url.query_pairs().find(|(k, _)| k == "e").unwrap().1;
            e.parse().unwrap()
        };
        // TTL 300 s: expiries fall on multiples of 75 s.
        let first = issuer.cover_url("yt:a", user, at(1_000));
        assert_eq!(issuer.cover_url("yt:a", user, at(1_049)), first);
        assert!(first.starts_with("http://127.0.0.1:8005/api/public/covers/yt:a?"));
        for now in [1_000, 1_049, 1_050, 1_124] {
            let expires = expiry(&issuer.cover_url("yt:a", user, at(now)));
            assert!(expires > now && expires <= now + 300, "{now} -> {expires}");
        }
    }

    #[test]
    fn issued_urls_carry_the_signature_and_escape_the_song_id() {
        let issuer = StreamIssuer {
            signer: signer(),
            public_base_url: "http://127.0.0.1:8005".into(),
        };
        let user = Uuid::now_v7();
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let (url, expires) = issuer.url("url:a/b?c", user, now);
        assert_eq!(expires, 1_300);
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.path(), "/api/public/stream/url:a%2Fb%3Fc");
        let signature = parsed
            .query_pairs()
            .find(|(k, _)| k == "s")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert_eq!(
            issuer
                .signer
                .verify("url:a/b?c", user, 1_300, &signature, 1_000),
            Ok(())
        );
    }
}
