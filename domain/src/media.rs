//! Value types of the import flow: what a user asks to import (`SourceRef`), the id of a
//! stored track (`TrackId`), and where a job is (`ImportStage`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A source or track id that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// What an import starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceRef {
    /// A YouTube video id (11 characters of `[A-Za-z0-9_-]`).
    Video { video_id: String },
    /// Any http(s) URL yt-dlp understands. Checked again (addresses) by the downloader.
    Url { url: String },
    /// A file the edge accepted (probed) and put in the object store under `object_key`.
    Upload {
        object_key: String,
        /// SHA-256 of the uploaded bytes, hex: the same file is one track.
        sha256: String,
        size: u64,
        filename: Option<String>,
    },
}

impl SourceRef {
    pub fn video(video_id: &str) -> Result<Self, SourceError> {
        let ok = video_id.len() == 11
            && video_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(SourceError(
                "a YouTube video id is 11 letters, digits, '-' or '_'".into(),
            ));
        }
        Ok(Self::Video {
            video_id: video_id.to_owned(),
        })
    }

    /// An http(s) URL of at most 2,048 characters without spaces or control characters.
    /// Whether its host is allowed is decided by the downloader (it resolves names).
    pub fn url(url: &str) -> Result<Self, SourceError> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(SourceError(
                "only http and https links can be imported".into(),
            ));
        }
        if url.len() > 2048 {
            return Err(SourceError(
                "the link is longer than 2048 characters".into(),
            ));
        }
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(SourceError(
                "the link contains spaces or control characters".into(),
            ));
        }
        Ok(Self::Url {
            url: url.to_owned(),
        })
    }

    /// The track this source is, when that is known before asking yt-dlp: a YouTube
    /// video or an uploaded file. A URL is named only once yt-dlp has resolved it.
    pub fn known_track_id(&self) -> Option<TrackId> {
        match self {
            Self::Video { video_id } => Some(TrackId(format!("yt:{video_id}"))),
            Self::Upload { sha256, .. } => Some(TrackId(format!(
                "upload:{}",
                &sha256[..sha256.len().min(32)]
            ))),
            Self::Url { .. } => None,
        }
    }

    /// The track a URL names when it was stored before, found without asking yt-dlp:
    /// `yt:<id>` for a YouTube video link, else the `url:<hash>` yt-dlp's generic
    /// extractor gives a direct link. A source named by another extractor is not
    /// recognised here (it goes through `yt-dlp -J`); a candidate that is not stored says
    /// nothing. Videos and uploads answer their `known_track_id`.
    pub fn stored_candidate(&self) -> Option<TrackId> {
        match self {
            Self::Url { url } => Some(
                youtube_video_id(url)
                    .map(|id| TrackId(format!("yt:{id}")))
                    .unwrap_or_else(|| TrackId::of_direct_link(url)),
            ),
            _ => self.known_track_id(),
        }
    }

    /// The URL yt-dlp is given (`None` for uploads).
    pub fn fetch_url(&self) -> Option<String> {
        match self {
            Self::Video { video_id } => Some(format!("https://www.youtube.com/watch?v={video_id}")),
            Self::Url { url } => Some(url.clone()),
            Self::Upload { .. } => None,
        }
    }
}

/// The video id of a YouTube video link (`youtube.com/watch?v=`, `/shorts/`, `/embed/`,
/// `/live/`, `youtu.be/`, on `www.`, `m.` and `music.` too), when it is one.
pub fn youtube_video_id(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.to_ascii_lowercase();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let path = path.split('#').next().unwrap_or_default();
    let candidate = match host.as_str() {
        "youtu.be" => path.split('/').next().map(str::to_owned),
        "youtube.com" | "www.youtube.com" | "m.youtube.com" | "music.youtube.com" => {
            match path.split('/').collect::<Vec<_>>().as_slice() {
                ["watch"] => query
                    .split('#')
                    .next()
                    .unwrap_or_default()
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("v="))
                    .map(str::to_owned),
                ["shorts" | "embed" | "live", id] => Some((*id).to_owned()),
                _ => None,
            }
        }
        _ => None,
    }?;
    SourceRef::video(&candidate).ok().map(|_| candidate)
}

/// A stored track's id, derived from its source so one source is one track:
/// `yt:<video id>`, `<extractor>:<id>`, `url:<hash>` or `upload:<hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrackId(String);

impl TrackId {
    /// A direct link's id, as the downloader names what yt-dlp's generic extractor
    /// resolves: `url:` and the first 16 bytes of the link's SHA-256, hex.
    pub fn of_direct_link(url: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(url.as_bytes());
        Self(format!("url:{}", hex::encode(&digest[..16])))
    }

    /// 3 to 200 visible ASCII characters with a `:` after a non-empty prefix.
    pub fn parse(id: &str) -> Result<Self, SourceError> {
        let ok = (3..=200).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_graphic())
            && id.find(':').is_some_and(|at| at > 0 && at + 1 < id.len());
        if !ok {
            return Err(SourceError(format!("{id:?} is not a track id")));
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an import job is. `Requested` is implied by `ImportRequested`; the downloader
/// records the others as it gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStage {
    Requested,
    /// Another job is downloading the same source; this one waits for its track.
    Waiting,
    Downloading,
    Transcoding,
    Storing,
}

impl ImportStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Waiting => "waiting",
            Self::Downloading => "downloading",
            Self::Transcoding => "transcoding",
            Self::Storing => "storing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_parsed() {
        assert!(SourceRef::video("dQw4w9WgXcQ").is_ok());
        assert!(SourceRef::video("short").is_err());
        assert!(SourceRef::video("dQw4w9WgXc/").is_err());
        assert!(SourceRef::url("https://example.com/a.mp3").is_ok());
        assert!(SourceRef::url("file:///etc/passwd").is_err());
        assert!(SourceRef::url("https://example.com/a b").is_err());
        assert!(SourceRef::url(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
        assert_eq!(
            SourceRef::video("dQw4w9WgXcQ")
                .unwrap()
                .known_track_id()
                .unwrap()
                .as_str(),
            "yt:dQw4w9WgXcQ"
        );
    }

    #[test]
    fn stored_candidates_are_named_without_yt_dlp() {
        let candidate = |url: &str| {
            SourceRef::url(url)
                .unwrap()
                .stored_candidate()
                .unwrap()
                .to_string()
        };
        for url in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com/watch?feature=share&v=dQw4w9WgXcQ&list=PL1",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ#t=3",
            "https://m.youtube.com/shorts/dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ?si=abc",
            "http://www.youtube.com/embed/dQw4w9WgXcQ",
        ] {
            assert_eq!(candidate(url), "yt:dQw4w9WgXcQ", "{url}");
        }
        // Not a video link: the generic extractor's id of a direct link.
        for url in [
            "https://www.youtube.com/playlist?list=PL1",
            "https://www.youtube.com/watch?v=short",
            "https://example.com/a.mp3",
        ] {
            assert_eq!(
                candidate(url),
                TrackId::of_direct_link(url).to_string(),
                "{url}"
            );
        }
        assert_eq!(
            TrackId::of_direct_link("https://example.com/a.mp3").as_str(),
            "url:f0494a592230c98995ac065a56487c56"
        );
    }

    #[test]
    fn track_ids_are_parsed() {
        assert!(TrackId::parse("yt:dQw4w9WgXcQ").is_ok());
        assert!(TrackId::parse("url:0123abcd").is_ok());
        assert!(TrackId::parse("nocolon").is_err());
        assert!(TrackId::parse(":x").is_err());
        assert!(TrackId::parse("yt:a b").is_err());
    }
}
