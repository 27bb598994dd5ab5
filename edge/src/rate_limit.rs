//! Fixed-window rate limits for the account endpoints (SECURITY.md 4), per client address
//! and per account, each in its own bucket: one account's limit never touches another's.
//! In-process: with several edge replicas each counts on its own (see ADR 05).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::settings::RateLimits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    SignInAddress,
    SignInAccount,
    SignUpAddress,
    SignUpAccount,
    VerifyAddress,
    VerifyAccount,
    RefreshAddress,
    RefreshAccount,
    /// Failed Subsonic API authentications, per account (ADR 24).
    SubsonicAccount,
    /// "Forgot password": every request counts (ADR 29).
    ResetAddress,
    ResetAccount,
    /// Searches sent to YouTube, per user (`crate::search_guard`).
    Search,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Self::SignInAddress | Self::SignInAccount => "signin",
            Self::SignUpAddress | Self::SignUpAccount => "signup",
            Self::VerifyAddress | Self::VerifyAccount => "verify",
            Self::RefreshAddress | Self::RefreshAccount => "refresh",
            Self::SubsonicAccount => "subsonic",
            Self::ResetAddress | Self::ResetAccount => "password_reset",
            Self::Search => "search",
        }
    }

    fn per_account(self) -> bool {
        matches!(
            self,
            Self::SignInAccount
                | Self::SignUpAccount
                | Self::VerifyAccount
                | Self::RefreshAccount
                | Self::SubsonicAccount
                | Self::ResetAccount
                | Self::Search
        )
    }
}

pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<HashMap<(Bucket, String), (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Mutex::default(),
        }
    }

    fn limit(&self, bucket: Bucket) -> u32 {
        if bucket.per_account() {
            self.limits.per_account
        } else {
            self.limits.per_address
        }
    }

    /// `Err(retry_after)` when `key` has used up its allowance in this window.
    pub fn check(&self, bucket: Bucket, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let windows = self.windows.lock().expect("rate limiter");
        match windows.get(&(bucket, key.to_owned())) {
            Some((start, count))
                if now.duration_since(*start) < self.limits.window
                    && *count >= self.limit(bucket) =>
            {
                Err(self.limits.window - now.duration_since(*start))
            }
            _ => Ok(()),
        }
    }

    /// Counts one attempt (or failure, depending on the endpoint) against `key`.
    pub fn hit(&self, bucket: Bucket, key: &str) {
        let now = Instant::now();
        let window = self.limits.window;
        let mut windows = self.windows.lock().expect("rate limiter");
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry((bucket, key.to_owned())).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// A success ends the account's count of failures (an address keeps its count).
    pub fn clear(&self, bucket: Bucket, key: &str) {
        self.windows
            .lock()
            .expect("rate limiter")
            .remove(&(bucket, key.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_trips_at_its_limit_and_others_do_not() {
        let limiter = RateLimiter::new(RateLimits {
            window: Duration::from_secs(60),
            per_account: 2,
            per_address: 3,
        });
        for _ in 0..2 {
            assert!(limiter.check(Bucket::SignInAccount, "a").is_ok());
            limiter.hit(Bucket::SignInAccount, "a");
        }
        let retry = limiter.check(Bucket::SignInAccount, "a").unwrap_err();
        assert!(retry <= Duration::from_secs(60) && retry > Duration::from_secs(55));
        assert!(limiter.check(Bucket::SignInAccount, "b").is_ok());
        assert!(limiter.check(Bucket::SignInAddress, "a").is_ok());
        limiter.clear(Bucket::SignInAccount, "a");
        assert!(limiter.check(Bucket::SignInAccount, "a").is_ok());
    }
}
