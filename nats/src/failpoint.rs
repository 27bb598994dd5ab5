//! Fail points: named places where a role can be told to stop dead, as if killed, so
//! fault tests can hit the exact moment (after commit, before ack; mid batch; ...).
//! Unarmed (the production default) a check is one `Option` test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default, Debug)]
pub struct FailPoints(Option<Arc<Mutex<HashMap<String, u64>>>>);

/// Returned by a fail point that fired; the role stops as if the process died.
#[derive(Debug, thiserror::Error)]
#[error("fail point {0} fired")]
pub struct FailPointFired(pub String);

impl FailPoints {
    /// Parses `name=N,name2=M` (fire at the N-th hit), as in `JUKEBOX_FAILPOINTS`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let points = Self::armed();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, hits) = item.split_once('=').unwrap_or((item, "1"));
            let hits: u64 = hits
                .parse()
                .map_err(|_| format!("fail point {item:?}: expected name=N"))?;
            points.arm(name, hits);
        }
        Ok(points)
    }

    /// An empty set that can be armed later (tests).
    pub fn armed() -> Self {
        Self(Some(Arc::default()))
    }

    /// Fire at the `nth` hit (1 = the next one).
    pub fn arm(&self, name: &str, nth: u64) {
        if let Some(points) = &self.0 {
            points
                .lock()
                .expect("fail points")
                .insert(name.to_owned(), nth.max(1));
        }
    }

    /// `Err` when the point fires; each point fires once.
    pub fn check(&self, name: &str) -> Result<(), FailPointFired> {
        let Some(points) = &self.0 else {
            return Ok(());
        };
        let mut points = points.lock().expect("fail points");
        match points.get_mut(name) {
            Some(1) => {
                points.remove(name);
                Err(FailPointFired(name.to_owned()))
            }
            Some(left) => {
                *left -= 1;
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
        assert!(points.check("a").is_err());
        assert!(points.check("a").is_ok());
        assert!(FailPoints::default().check("a").is_ok());
        assert!(FailPoints::parse("a=x").is_err());
    }
}
