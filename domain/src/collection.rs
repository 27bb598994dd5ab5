//! `CollectionImport`: one user's import of a playlist, channel or feed (issue 20,
//! ADR 35). Its id is derived from the user and the normalized URL
//! (`<user_id>/<hash>`), so importing the same URL again meets the same aggregate, which
//! remembers every entry it has taken and records only the ones it has not seen.
//!
//! One `CollectionImported` per import that adds something: the entries it added (each
//! becomes one `Import` job, whose id is derived from the batch and the entry's index)
//! and the entries skipped with their reason. The plan (`plan/collections.rs`) then
//! writes the playlist once and requests the jobs, one aggregate each, so a bulk import
//! never contends on one stream.

use std::collections::HashSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::media::{youtube_video_id, SourceRef, TrackId};

/// The aggregate type, for readers of the log without `cqrs_es`.
pub const AGGREGATE_TYPE: &str = "collection_import";
/// The most entries one listing may hold (its event and command stay well under NATS's
/// 1 MiB message limit); a configured cap is at most this.
pub const MAX_ENTRIES: usize = 5_000;
/// Titles are kept to this many characters.
pub const MAX_TITLE_CHARS: usize = 120;

/// One entry of a collection as the lister found it (yt-dlp `--flat-playlist`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListedEntry {
    pub url: Option<String>,
    pub id: Option<String>,
    /// yt-dlp's extractor for the entry (`Youtube`, ...), when it says.
    pub ie_key: Option<String>,
    pub title: Option<String>,
    pub duration_s: Option<f64>,
    /// yt-dlp's `availability` (`private`, `needs_auth`, ...).
    pub availability: Option<String>,
    pub live_status: Option<String>,
    /// yt-dlp's `_type`: `url`, `url_transparent`, or `playlist` for a nested list.
    pub kind: Option<String>,
}

/// An entry to import: its source and the track it will be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionEntry {
    pub source: SourceRef,
    pub track_id: TrackId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Why an entry is not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Private,
    Deleted,
    TooLong,
    NotAudio,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Deleted => "deleted",
            Self::TooLong => "too_long",
            Self::NotAudio => "not_audio",
        }
    }
}

/// An entry that is not imported, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedEntry {
    /// Its place in the listing, from 1.
    pub position: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub reason: SkipReason,
}

fn short_title(title: Option<&str>) -> Option<String> {
    let title = title?.trim();
    (!title.is_empty()).then(|| title.chars().take(MAX_TITLE_CHARS).collect())
}

/// What an entry is: something to import, or a skip reason. `max_duration_s` is the
/// import limit (an entry whose listed length passes it is `too_long`).
pub fn classify(entry: &ListedEntry, max_duration_s: u64) -> Result<CollectionEntry, SkipReason> {
    let title = entry.title.as_deref().unwrap_or_default();
    let availability = entry.availability.as_deref().unwrap_or_default();
    if title == "[Private video]"
        || matches!(
            availability,
            "private" | "needs_auth" | "premium_only" | "subscriber_only"
        )
    {
        return Err(SkipReason::Private);
    }
    if title == "[Deleted video]" || title == "[Unavailable video]" {
        return Err(SkipReason::Deleted);
    }
    if entry.kind.as_deref() == Some("playlist")
        || matches!(
            entry.live_status.as_deref(),
            Some("is_live" | "is_upcoming")
        )
    {
        return Err(SkipReason::NotAudio);
    }
    if entry
        .duration_s
        .is_some_and(|d| d.is_finite() && d > max_duration_s as f64)
    {
        return Err(SkipReason::TooLong);
    }
    let is_youtube = entry
        .ie_key
        .as_deref()
        .is_some_and(|k| k.eq_ignore_ascii_case("youtube"));
    let video_id = match (&entry.id, &entry.url) {
        (Some(id), _) if is_youtube => SourceRef::video(id).ok().map(|_| id.clone()),
        (_, Some(url)) => youtube_video_id(url),
        _ => None,
    };
    let title = short_title(entry.title.as_deref());
    if let Some(video_id) = video_id {
        let source = SourceRef::video(&video_id).map_err(|_| SkipReason::NotAudio)?;
        let track_id = source.known_track_id().ok_or(SkipReason::NotAudio)?;
        return Ok(CollectionEntry {
            source,
            track_id,
            title,
        });
    }
    let url = plain_url(entry.url.as_deref().ok_or(SkipReason::Deleted)?);
    let source = SourceRef::url(url).map_err(|_| SkipReason::NotAudio)?;
    let extractor = entry
        .ie_key
        .as_deref()
        .filter(|k| !k.eq_ignore_ascii_case("generic"));
    // The id the downloader will name the track by (`SourceInfo::source_id`).
    let track_id = match (extractor, &entry.id) {
        (Some(extractor), Some(id)) => {
            TrackId::parse(&format!("{}:{id}", extractor.to_ascii_lowercase()))
                .map_err(|_| SkipReason::NotAudio)?
        }
        _ => TrackId::of_direct_link(url),
    };
    Ok(CollectionEntry {
        source,
        track_id,
        title,
    })
}

/// A listing's entries classified: the importable ones with their places (from 1) and
/// the skipped ones with their reason, in the listing's order.
pub fn classify_all(
    listed: &[ListedEntry],
    max_duration_s: u64,
) -> (Vec<(u32, CollectionEntry)>, Vec<SkippedEntry>) {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for (index, listed) in listed.iter().enumerate() {
        let position = index as u32 + 1;
        match classify(listed, max_duration_s) {
            Ok(entry) => entries.push((position, entry)),
            Err(reason) => skipped.push(SkippedEntry {
                position,
                title: listed
                    .title
                    .as_deref()
                    .map(|t| t.chars().take(MAX_TITLE_CHARS).collect()),
                url: listed
                    .url
                    .as_deref()
                    .map(plain_url)
                    .filter(|u| u.len() <= 2048)
                    .map(str::to_owned),
                reason,
            }),
        }
    }
    (entries, skipped)
}

/// An entry's link without the data yt-dlp's feed entries carry after
/// `#__youtubedl_smuggle=`.
pub fn plain_url(url: &str) -> &str {
    url.split("#__youtubedl_smuggle=").next().unwrap_or(url)
}

/// The URL a collection is known by: scheme and host in lower case, no fragment, no
/// trailing slash; a YouTube link with `list=` is that playlist, whatever video it shows.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    let url = url.split('#').next().unwrap_or(url);
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let (host, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let host = host.to_ascii_lowercase();
    let youtube = matches!(
        host.as_str(),
        "youtube.com" | "www.youtube.com" | "m.youtube.com" | "music.youtube.com"
    );
    if youtube {
        let list = path
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("list="));
        if let Some(list) = list {
            return format!("https://www.youtube.com/playlist?list={list}");
        }
    }
    let path = path.trim_end_matches('/');
    format!("{}://{host}{path}", scheme.to_ascii_lowercase())
}

/// The collection import's id for this user and URL: `<user_id>/<key>`.
pub fn id(user_id: Uuid, url: &str) -> String {
    format!("{user_id}/{}", key(url))
}

/// The URL's part of the id: 16 bytes of the normalized URL's SHA-256, hex.
pub fn key(url: &str) -> String {
    let digest = Sha256::digest(normalize_url(url).as_bytes());
    hex::encode(&digest[..16])
}

/// The playlist a collection import fills, derived from its id.
pub fn playlist_id(collection_id: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, collection_id.as_bytes())
}

/// The job id of the `index`-th entry added by the import `batch_id` (the command's).
pub fn job_id(batch_id: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&batch_id, index.to_string().as_bytes())
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CollectionImport {
    user_id: Option<Uuid>,
    url: String,
    title: String,
    playlist_id: Option<Uuid>,
    /// The tracks of every entry taken so far.
    seen: HashSet<TrackId>,
    /// How many imports added something.
    imports: u32,
    /// What the last import added, and its batch (the plan requests these jobs).
    last_batch: Option<Uuid>,
    last_added: Vec<CollectionEntry>,
}

impl CollectionImport {
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    pub fn url(&self) -> &str {
        &self.url
    }
    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn playlist_id(&self) -> Option<Uuid> {
        self.playlist_id
    }
    /// How many imports added entries (1 after the first).
    pub fn imports(&self) -> u32 {
        self.imports
    }
    pub fn last_batch(&self) -> Option<Uuid> {
        self.last_batch
    }
    pub fn last_added(&self) -> &[CollectionEntry] {
        &self.last_added
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CollectionImportCommand {
    Import {
        batch_id: Uuid,
        user_id: Uuid,
        url: String,
        title: String,
        playlist_id: Uuid,
        /// In the listing's order.
        entries: Vec<CollectionEntry>,
        skipped: Vec<SkippedEntry>,
        /// How many entries the source says it has (beyond the cap, if capped).
        listed: u64,
        capped: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CollectionImportEvent {
    CollectionImported {
        batch_id: Uuid,
        user_id: Uuid,
        url: String,
        title: String,
        playlist_id: Uuid,
        /// The entries this import added (not seen before), in the listing's order.
        added: Vec<CollectionEntry>,
        skipped: Vec<SkippedEntry>,
        listed: u64,
        capped: bool,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CollectionImportError {
    #[error("this collection was imported by another user")]
    NotOwner,
    #[error("a collection import lists at most 5000 entries")]
    TooMany,
}

impl DomainEvent for CollectionImportEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CollectionImported { .. } => "CollectionImported".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for CollectionImport {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = CollectionImportCommand;
    type Event = CollectionImportEvent;
    type Error = CollectionImportError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let CollectionImportCommand::Import {
            batch_id,
            user_id,
            url,
            title,
            playlist_id,
            entries,
            skipped,
            listed,
            capped,
        } = command;
        if self.user_id.is_some_and(|owner| owner != user_id) {
            return Err(CollectionImportError::NotOwner);
        }
        if entries.len() + skipped.len() > MAX_ENTRIES {
            return Err(CollectionImportError::TooMany);
        }
        let mut taken = HashSet::new();
        let added: Vec<CollectionEntry> = entries
            .into_iter()
            .filter(|e| !self.seen.contains(&e.track_id) && taken.insert(e.track_id.clone()))
            .collect();
        // Nothing new: the import is done already, and nothing is added twice.
        if added.is_empty() {
            return Ok(());
        }
        let event = CollectionImportEvent::CollectionImported {
            batch_id,
            user_id,
            url,
            title,
            // The first import's playlist stays the collection's.
            playlist_id: self.playlist_id.unwrap_or(playlist_id),
            added,
            skipped,
            listed,
            capped,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let CollectionImportEvent::CollectionImported {
            batch_id,
            user_id,
            url,
            title,
            playlist_id,
            added,
            ..
        } = event;
        self.user_id = Some(user_id);
        self.url = url;
        self.title = title;
        self.playlist_id = Some(playlist_id);
        self.seen.extend(added.iter().map(|e| e.track_id.clone()));
        self.imports += 1;
        self.last_batch = Some(batch_id);
        self.last_added = added;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<CollectionImport>;

    fn entry(n: u32) -> CollectionEntry {
        let url = format!("http://127.0.0.1:9/t{n}.mp3");
        CollectionEntry {
            track_id: TrackId::of_direct_link(&url),
            source: SourceRef::url(&url).unwrap(),
            title: Some(format!("Tone {n}")),
        }
    }

    fn import(
        batch_id: Uuid,
        user_id: Uuid,
        entries: Vec<CollectionEntry>,
    ) -> CollectionImportCommand {
        CollectionImportCommand::Import {
            batch_id,
            user_id,
            url: "http://127.0.0.1:9/feed.xml".into(),
            title: "Tones".into(),
            playlist_id: Uuid::nil(),
            entries,
            skipped: Vec::new(),
            listed: 3,
            capped: false,
        }
    }

    fn imported(
        batch_id: Uuid,
        user_id: Uuid,
        added: Vec<CollectionEntry>,
    ) -> CollectionImportEvent {
        CollectionImportEvent::CollectionImported {
            batch_id,
            user_id,
            url: "http://127.0.0.1:9/feed.xml".into(),
            title: "Tones".into(),
            playlist_id: Uuid::nil(),
            added,
            skipped: Vec::new(),
            listed: 3,
            capped: false,
        }
    }

    #[test]
    fn a_second_import_adds_only_entries_not_seen_and_nothing_twice() {
        let (first, second, user) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        Framework::with(())
            .given_no_previous_events()
            .when(import(first, user, vec![entry(1), entry(2), entry(1)]))
            .then_expect_events(vec![imported(first, user, vec![entry(1), entry(2)])]);
        Framework::with(())
            .given(vec![imported(first, user, vec![entry(1), entry(2)])])
            .when(import(second, user, vec![entry(1), entry(2)]))
            .then_expect_events(vec![]);
        Framework::with(())
            .given(vec![imported(first, user, vec![entry(1), entry(2)])])
            .when(import(second, user, vec![entry(1), entry(3), entry(2)]))
            .then_expect_events(vec![imported(second, user, vec![entry(3)])]);
    }

    #[test]
    fn only_its_user_imports_into_it() {
        let (first, user) = (Uuid::now_v7(), Uuid::now_v7());
        Framework::with(())
            .given(vec![imported(first, user, vec![entry(1)])])
            .when(import(Uuid::now_v7(), Uuid::now_v7(), vec![entry(2)]))
            .then_expect_error_message("this collection was imported by another user");
    }

    #[test]
    fn entries_are_classified_with_their_reason() {
        let youtube = |id: &str, title: &str| ListedEntry {
            id: Some(id.into()),
            ie_key: Some("Youtube".into()),
            url: Some(format!("https://www.youtube.com/watch?v={id}")),
            title: Some(title.into()),
            duration_s: Some(200.0),
            kind: Some("url".into()),
            ..ListedEntry::default()
        };
        let ok = classify(&youtube("dQw4w9WgXcQ", "Song"), 3600).unwrap();
        assert_eq!(ok.track_id.as_str(), "yt:dQw4w9WgXcQ");
        assert_eq!(ok.source, SourceRef::video("dQw4w9WgXcQ").unwrap());
        assert_eq!(
            classify(&youtube("aaaaaaaaaaa", "[Private video]"), 3600),
            Err(SkipReason::Private)
        );
        assert_eq!(
            classify(&youtube("aaaaaaaaaaa", "[Deleted video]"), 3600),
            Err(SkipReason::Deleted)
        );
        assert_eq!(
            classify(&youtube("aaaaaaaaaaa", "Long mix"), 100),
            Err(SkipReason::TooLong)
        );
        let nested = ListedEntry {
            kind: Some("playlist".into()),
            ..youtube("aaaaaaaaaaa", "Shorts")
        };
        assert_eq!(classify(&nested, 3600), Err(SkipReason::NotAudio));
        let feed = ListedEntry {
            url: Some(
                "http://127.0.0.1:9/t1.mp3#__youtubedl_smuggle=%7B%22force_videoid%22%7D".into(),
            ),
            kind: Some("url_transparent".into()),
            title: Some("Tone 1".into()),
            ..ListedEntry::default()
        };
        assert_eq!(classify(&feed, 3600), Ok(entry(1)));
        let gone = ListedEntry { url: None, ..feed };
        assert_eq!(classify(&gone, 3600), Err(SkipReason::Deleted));
    }

    #[test]
    fn one_url_is_one_collection_however_it_is_written() {
        let user = Uuid::now_v7();
        assert_eq!(
            id(
                user,
                "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLx#t=3"
            ),
            id(user, "https://youtube.com/playlist?list=PLx")
        );
        assert_eq!(
            id(user, " HTTP://Example.COM/feed/ "),
            id(user, "http://example.com/feed")
        );
        assert_ne!(
            id(user, "http://example.com/feed"),
            id(Uuid::now_v7(), "http://example.com/feed")
        );
        assert_ne!(key("http://example.com/a"), key("http://example.com/b"));
    }
}
