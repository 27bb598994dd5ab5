//! Issue 8's monitoring: every role's health port (`/healthz`, `/readyz`, `/metrics`), the
//! metrics the alert rules use, and the rules themselves, checked with the real promtool
//! and amtool. Runs against the shared Postgres and NATS (a private nats-server where a
//! test stops it).

mod exported;
mod logs;
mod ready;
mod rules;

use jukebox_test_support as support;

use std::collections::BTreeSet;
use std::path::PathBuf;

/// A file of the repository.
pub fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `GET url` as text, which must answer 200.
pub async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.text().await.unwrap()
}

/// The sample names in a text exposition (`name{labels} value` or `name value`).
pub fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The value of the sample written exactly as `series` (name and labels), if exported.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}
