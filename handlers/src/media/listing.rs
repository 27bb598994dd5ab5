//! What a playlist, channel or feed lists (issue 20): `yt-dlp --flat-playlist -J`, which
//! reads the listing only (one request for a feed, a few pages for a YouTube playlist)
//! and never an entry. At most `cap` entries are read (`--playlist-end`); the source's
//! own count says how many there are beyond them.

use std::path::Path;
use std::time::Duration;

use jukebox_domain::collection::ListedEntry;
use serde::Deserialize;

use super::process::{self, Stdout};
use super::source::SourceUrl;
use super::ytdlp::classify_error;
use super::{Limits, MediaError};

/// Why a link that is one track is not listed (the edge tells it from other refusals,
/// so the web app can import it as a song instead).
pub const ONE_TRACK: &str =
    "this link is one track, not a playlist or channel; import it as a song";

/// A collection as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub title: Option<String>,
    /// The first `cap` entries (or all of them), in the source's order.
    pub entries: Vec<ListedEntry>,
    /// How many entries the source has, when it says; else how many were read.
    pub total: u64,
    /// More entries exist than were read.
    pub capped: bool,
}

#[derive(Deserialize)]
struct ListingJson {
    #[serde(rename = "_type")]
    kind: Option<String>,
    title: Option<String>,
    playlist_count: Option<u64>,
    entries: Option<Vec<Option<EntryJson>>>,
}

#[derive(Deserialize)]
struct EntryJson {
    #[serde(rename = "_type")]
    kind: Option<String>,
    url: Option<String>,
    id: Option<String>,
    ie_key: Option<String>,
    title: Option<String>,
    duration: Option<f64>,
    availability: Option<String>,
    live_status: Option<String>,
}

/// Lists `url` (checked already) with at most `cap` entries read. A link that is one
/// track, not a list, is `UnsupportedUrl` saying so.
pub async fn list(
    yt_dlp: &Path,
    url: &SourceUrl,
    cap: usize,
    limits: &Limits,
    timeout: Duration,
) -> Result<Listing, MediaError> {
    let socket_timeout = limits.socket_timeout;
    let mut args: Vec<std::ffi::OsString> = vec![
        "--ignore-config".into(),
        "--no-cache-dir".into(),
        "--color".into(),
        "never".into(),
        "--socket-timeout".into(),
        socket_timeout.as_secs().max(1).to_string().into(),
        "--yes-playlist".into(),
        "--flat-playlist".into(),
        "--playlist-end".into(),
        // One more than the cap tells a capped list from one of exactly `cap`.
        (cap + 1).to_string().into(),
        "--dump-single-json".into(),
    ];
    // Every connection through the egress proxy (ADR 38), as resolve and download do.
    if let Some(egress) = &limits.egress {
        args.extend(["--proxy".into(), egress.url().into()]);
    }
    args.extend(["--".into(), url.as_str().into()]);
    let done = process::run(
        "yt-dlp",
        "list",
        yt_dlp,
        args,
        timeout,
        Stdout::Collect(64 << 20),
    )
    .await?;
    if !done.status.success() {
        return Err(classify_error(&done.stderr));
    }
    parse(&done.stdout, cap)
}

/// yt-dlp's `--flat-playlist -J` document as a [`Listing`] of at most `cap` entries.
pub fn parse(json: &[u8], cap: usize) -> Result<Listing, MediaError> {
    let listing: ListingJson =
        serde_json::from_slice(json).map_err(|_| MediaError::UnsupportedUrl {
            reason: "the answer at this link is not a playlist or feed that can be read".into(),
        })?;
    let Some(raw) = listing
        .entries
        .filter(|_| matches!(listing.kind.as_deref(), Some("playlist" | "multi_video")))
    else {
        return Err(MediaError::UnsupportedUrl {
            reason: ONE_TRACK.into(),
        });
    };
    let read = raw.len();
    let entries: Vec<ListedEntry> = raw
        .into_iter()
        .take(cap)
        .map(|entry| match entry {
            Some(e) => ListedEntry {
                url: e.url,
                id: e.id,
                ie_key: e.ie_key,
                title: e.title,
                duration_s: e.duration,
                availability: e.availability,
                live_status: e.live_status,
                kind: e.kind,
            },
            // yt-dlp writes `null` for an entry it could not read.
            None => ListedEntry::default(),
        })
        .collect();
    let total = listing
        .playlist_count
        .unwrap_or(read as u64)
        .max(read as u64);
    Ok(Listing {
        title: listing.title.filter(|t| !t.trim().is_empty()),
        capped: read > cap || total > cap as u64,
        entries,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_is_listed_and_capped() {
        let json = br#"{"_type": "playlist", "title": "Tones", "playlist_count": 3,
            "entries": [{"_type": "url_transparent", "url": "http://h/t1.mp3", "title": "One"},
                        {"_type": "url_transparent", "url": "http://h/t2.mp3", "title": "Two"},
                        null]}"#;
        let all = parse(json, 10).unwrap();
        assert_eq!(all.title.as_deref(), Some("Tones"));
        assert_eq!((all.entries.len(), all.total, all.capped), (3, 3, false));
        assert_eq!(all.entries[1].url.as_deref(), Some("http://h/t2.mp3"));
        assert_eq!(all.entries[2], ListedEntry::default());
        let capped = parse(json, 2).unwrap();
        assert_eq!(
            (capped.entries.len(), capped.total, capped.capped),
            (2, 3, true)
        );
    }

    #[test]
    fn one_track_or_garbage_is_not_a_playlist() {
        let one = br#"{"_type": "video", "id": "t1", "url": "http://h/t1.mp3"}"#;
        assert!(parse(one, 10)
            .unwrap_err()
            .to_string()
            .contains("one track, not a playlist"));
        assert!(parse(b"<html>", 10)
            .unwrap_err()
            .to_string()
            .contains("not a playlist or feed"));
    }
}
