//! Fail points: named places where a role can be told to stop dead, as if killed, so
//! fault tests can hit the exact moment (after commit, before ack; mid batch; ...).
//! Unarmed (the production default) a check is one `Option` test. They are armed only by
//! `JUKEBOX_FAILPOINTS`, which production never sets: `name=N` makes the N-th hit return
//! an error (the role stops), `name=abort@N` aborts the whole process there, which is as
//! abrupt as `kill -9` (tests/faults).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default, Debug)]
pub struct FailPoints(Option<Arc<Mutex<HashMap<String, Armed>>>>);

#[derive(Clone, Copy, Debug)]
struct Armed {
    hits_left: u64,
    abort: bool,
}

/// Returned by a fail point that fired; the role stops as if the process died.
#[derive(Debug, thiserror::Error)]
#[error("fail point {0} fired")]
pub struct FailPointFired(pub String);

impl FailPoints {
    /// Parses `name=N,name2=abort@M` (fire at the N-th hit; `abort@` kills the process),
    /// as in `JUKEBOX_FAILPOINTS`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let points = Self::armed();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, action) = item.split_once('=').unwrap_or((item, "1"));
            let (abort, hits) = match action.strip_prefix("abort@") {
                Some(hits) => (true, hits),
                None => (false, action),
            };
            let hits: u64 = hits
                .parse()
                .map_err(|_| format!("fail point {item:?}: expected name=N or name=abort@N"))?;
            points.insert(name, hits, abort);
        }
        Ok(points)
    }

    /// An empty set that can be armed later (tests).
    pub fn armed() -> Self {
        Self(Some(Arc::default()))
    }

    /// Fire at the `nth` hit (1 = the next one).
    pub fn arm(&self, name: &str, nth: u64) {
        self.insert(name, nth, false);
    }

    fn insert(&self, name: &str, nth: u64, abort: bool) {
        if let Some(points) = &self.0 {
            points.lock().expect("fail points").insert(
                name.to_owned(),
                Armed {
                    hits_left: nth.max(1),
                    abort,
                },
            );
        }
    }

    /// Whether `name` is armed and has not fired yet (tests check that theirs did).
    pub fn is_armed(&self, name: &str) -> bool {
        self.0
            .as_ref()
            .is_some_and(|points| points.lock().expect("fail points").contains_key(name))
    }

    /// `Err` when the point fires; each point fires once. An `abort@` point never
    /// returns: the process dies on the spot, acking and flushing nothing.
    pub fn check(&self, name: &str) -> Result<(), FailPointFired> {
        let Some(points) = &self.0 else {
            return Ok(());
        };
        let mut points = points.lock().expect("fail points");
        match points.get_mut(name) {
            Some(armed) if armed.hits_left == 1 => {
                let abort = armed.abort;
                points.remove(name);
                if abort {
                    eprintln!("fail point {name} fired: aborting the process");
                    std::process::abort();
                }
                Err(FailPointFired(name.to_owned()))
            }
            Some(armed) => {
                armed.hits_left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_at_the_nth_hit() {
        let points = FailPoints::parse("a=2").unwrap();
        assert!(points.check("a").is_ok());
        assert!(points.is_armed("a"));
        assert!(points.check("a").is_err());
        assert!(!points.is_armed("a"));
        assert!(points.check("a").is_ok());
        assert!(FailPoints::default().check("a").is_ok());
        assert!(FailPoints::parse("a=x").is_err());
        assert!(FailPoints::parse("a=abort@x").is_err());
    }

    #[test]
    fn an_abort_point_counts_hits_like_the_others() {
        let points = FailPoints::parse("a=abort@3,b=1").unwrap();
        assert!(points.check("a").is_ok());
        assert!(points.check("a").is_ok());
        assert!(points.check("b").is_err());
        // The third hit of `a` would abort this test process; tests/faults covers it.
    }
}
