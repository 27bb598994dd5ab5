//! YouTube search within its quota (issue 20): a search costs 100 of the API's 10,000 daily
//! units, so each user may send `SEARCH_PER_MINUTE` searches a minute to YouTube, and a
//! result is kept `SEARCH_CACHE_SECONDS` for everyone who asks the same (answers from the
//! cache cost no quota and count against no one). The per-user flags (`stored`,
//! `in_library`) are read fresh on every answer; only YouTube's list is cached.
//! In-process, like the other rate limits (ADR 05).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::ports::SearchHit;
use crate::rate_limit::{Bucket, RateLimiter};
use crate::settings::RateLimits;

/// Entries kept at most; the oldest half goes when it is full.
const MAX_ENTRIES: usize = 2_000;

type Key = (String, usize);
/// When a list was fetched, and the list.
type Entry = (Instant, Arc<Vec<SearchHit>>);

pub struct SearchGuard {
    per_minute: u32,
    ttl: Duration,
    limiter: RateLimiter,
    cache: Mutex<HashMap<Key, Entry>>,
}

impl SearchGuard {
    pub fn new(per_minute: u32, ttl: Duration) -> Self {
        Self {
            per_minute,
            ttl,
            limiter: RateLimiter::new(RateLimits {
                window: Duration::from_secs(60),
                per_account: per_minute,
                per_address: per_minute,
            }),
            cache: Mutex::default(),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// A list fetched less than the cache's lifetime ago for the same query and size.
    pub fn cached(&self, query: &str, limit: usize) -> Option<Arc<Vec<SearchHit>>> {
        let cache = self.cache.lock().expect("search cache");
        cache
            .get(&key(query, limit))
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, hits)| hits.clone())
    }

    /// Counts a search that goes to YouTube, or says how long the user must wait.
    pub fn admit(&self, user_id: Uuid) -> Result<(), Duration> {
        let user = user_id.to_string();
        self.limiter.check(Bucket::Search, &user)?;
        self.limiter.hit(Bucket::Search, &user);
        Ok(())
    }

    pub fn store(&self, query: &str, limit: usize, hits: Vec<SearchHit>) -> Arc<Vec<SearchHit>> {
        let hits = Arc::new(hits);
        if self.ttl.is_zero() {
            return hits;
        }
        let mut cache = self.cache.lock().expect("search cache");
        if cache.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_ENTRIES {
                let mut ages: Vec<Instant> = cache.values().map(|(at, _)| *at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                cache.retain(|_, (at, _)| *at > cut);
            }
        }
        cache.insert(key(query, limit), (Instant::now(), hits.clone()));
        hits
    }
}

/// Queries that differ only in case or spacing are one search.
fn key(query: &str, limit: usize) -> Key {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    (words.join(" "), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str) -> SearchHit {
        SearchHit {
            video_id: id.into(),
            title: id.into(),
            channel: None,
            duration_s: None,
            thumbnail: None,
        }
    }

    #[test]
    fn each_user_gets_the_allowance_and_the_cache_is_shared() {
        let guard = SearchGuard::new(2, Duration::from_secs(60));
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(guard.admit(alice).is_ok());
        assert!(guard.admit(alice).is_ok());
        let wait = guard.admit(alice).unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        assert!(guard.admit(bob).is_ok());

        assert!(guard.cached("Some  Song", 10).is_none());
        guard.store("Some  Song", 10, vec![hit("a")]);
        assert_eq!(*guard.cached("some song", 10).unwrap(), vec![hit("a")]);
        assert!(guard.cached("some song", 5).is_none());
    }

    #[test]
    fn entries_expire_and_a_zero_lifetime_keeps_nothing() {
        let guard = SearchGuard::new(10, Duration::from_millis(20));
        guard.store("q", 10, vec![hit("a")]);
        std::thread::sleep(Duration::from_millis(30));
        assert!(guard.cached("q", 10).is_none());
        let off = SearchGuard::new(10, Duration::ZERO);
        off.store("q", 10, vec![hit("a")]);
        assert!(off.cached("q", 10).is_none());
    }

    #[test]
    fn a_full_cache_drops_its_older_half() {
        let guard = SearchGuard::new(10, Duration::from_secs(60));
        for i in 0..MAX_ENTRIES + 1 {
            guard.store(&format!("q{i}"), 10, vec![]);
        }
        assert!(guard.cache.lock().unwrap().len() <= MAX_ENTRIES / 2 + 2);
        assert!(guard.cached(&format!("q{MAX_ENTRIES}"), 10).is_some());
        assert!(guard.cached("q0", 10).is_none());
    }
}
