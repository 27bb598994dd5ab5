//! Counters served on `/metrics` in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    /// `jukebox_auth_failures_total{kind="..."}`: failed sign-ins, bad tokens, reuse.
    pub fn auth_failure(&self, kind: &'static str) {
        self.add("jukebox_auth_failures_total", kind);
    }

    /// `jukebox_rate_limited_total{kind="..."}`: requests answered 429.
    pub fn rate_limited(&self, kind: &'static str) {
        self.add("jukebox_rate_limited_total", kind);
    }

    /// `jukebox_mail_total{kind="sent"|"failed"}`.
    pub fn mail(&self, kind: &'static str) {
        self.add("jukebox_mail_total", kind);
    }

    /// `jukebox_stream_total{kind="streams_started"|"bytes_served"|"range_requests"}`.
    pub fn stream(&self, kind: &'static str, amount: u64) {
        self.add_n("jukebox_stream_total", kind, amount);
    }

    /// `jukebox_stream_denied_total{kind="<reason>"}`: refused stream requests.
    pub fn stream_denied(&self, reason: &'static str) {
        self.add("jukebox_stream_denied_total", reason);
    }

    fn add(&self, name: &'static str, kind: &'static str) {
        self.add_n(name, kind, 1);
    }

    fn add_n(&self, name: &'static str, kind: &'static str, amount: u64) {
        *self
            .counters
            .lock()
            .expect("metrics")
            .entry((name, kind))
            .or_default() += amount;
    }

    pub fn get(&self, name: &str, kind: &str) -> u64 {
        self.counters
            .lock()
            .expect("metrics")
            .iter()
            .find(|((n, k), _)| *n == name && *k == kind)
            .map_or(0, |(_, v)| *v)
    }

    pub fn render(&self) -> String {
        let counters = self.counters.lock().expect("metrics");
        let mut out = String::new();
        let mut last = "";
        for ((name, kind), value) in counters.iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {value}");
        }
        out
    }
}
