//! The object store: where transcoded tracks (and later covers) live.
//!
//! One trait, [`ObjectStore`], two backends: [`S3Store`] (rust-s3, path-style, for MinIO,
//! Garage, s3s-fs, AWS, R2) and [`LocalStore`] (a folder, the default when no S3 endpoint
//! is configured). Both pass the same contract tests (`storage/tests/contract.rs`).
//! Its own crate because two roles use it: the downloader writes, the stream role reads.
//!
//! The one promise that matters: **no partial object is ever visible under its final
//! key.** A put either makes the whole object visible at once or leaves the key as it was
//! (absent, or the previous object). The local backend writes a hidden temporary file in
//! the key's folder, fsyncs it and renames it over the key; S3 makes an object visible
//! only when its single PUT or its multipart upload completes, and a failed multipart
//! upload is aborted.

mod local;
mod s3;

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use secrecy::SecretString;
use tokio::io::AsyncRead;

pub use local::LocalStore;
pub use s3::S3Store;

/// A validated object key: `segment/segment/...`, each segment made of ASCII letters,
/// digits and `-_.:=+@~`, not starting with a dot (so `.`, `..` and the local backend's
/// hidden temporary files can never be named), no empty segment, no leading or trailing
/// slash, at most 512 bytes. The same key is a safe relative path on every platform we
/// run on and needs no escaping in an S3 URL path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub const MAX_LEN: usize = 512;

    pub fn parse(key: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidKey {
            key: key.chars().take(80).collect(),
            reason: reason.to_owned(),
        };
        if key.is_empty() {
            return Err(invalid("it is empty"));
        }
        if key.len() > Self::MAX_LEN {
            return Err(invalid("it is longer than 512 bytes"));
        }
        if key.starts_with('/') {
            return Err(invalid("it is an absolute path"));
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return Err(invalid("it has an empty path segment"));
            }
            if segment == "." || segment == ".." {
                return Err(invalid("it has a `.` or `..` segment"));
            }
            if segment.starts_with('.') {
                return Err(invalid("a path segment starts with a dot"));
            }
            if let Some(c) = segment
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "-_.:=+@~".contains(*c)))
            {
                return Err(invalid(&format!("it contains the character {c:?}")));
            }
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The MIME type the object is served with, from the key's extension.
    pub fn content_type(&self) -> &'static str {
        match self.0.rsplit_once('.').map(|(_, ext)| ext) {
            Some("m4a" | "mp4") => "audio/mp4",
            Some("mp3") => "audio/mpeg",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("png") => "image/png",
            Some("json") => "application/json",
            _ => "application/octet-stream",
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

impl TryFrom<&str> for ObjectKey {
    type Error = StoreError;
    fn try_from(key: &str) -> Result<Self, StoreError> {
        Self::parse(key)
    }
}

/// A byte range as HTTP writes it: `start` and an inclusive `end`; `end: None` means "to
/// the end of the object". An `end` past the last byte is clamped to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl ByteRange {
    /// `start..=end`.
    pub fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end: Some(end),
        }
    }

    /// `start..` to the end of the object.
    pub fn from(start: u64) -> Self {
        Self { start, end: None }
    }

    /// The inclusive `(first, last)` byte positions inside an object of `size` bytes, or
    /// `None` when the range is not satisfiable (starts at or past the end, or ends
    /// before it starts).
    pub fn resolve(&self, size: u64) -> Option<(u64, u64)> {
        let last = self.end.unwrap_or(u64::MAX).min(size.checked_sub(1)?);
        (self.start <= last).then_some((self.start, last))
    }
}

/// What is known about a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
}

/// The bytes of an object, or of a range of it, as a stream.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

/// An answer to [`ObjectStore::get`]: `content_length` bytes starting at `start`, out of
/// an object of `total_size` bytes (what an HTTP `Content-Range` needs).
pub struct ObjectBody {
    pub start: u64,
    pub content_length: u64,
    pub total_size: u64,
    pub stream: ByteStream,
}

impl ObjectBody {
    /// Reads the whole body into memory (tests and small objects).
    pub async fn bytes(self) -> Result<Vec<u8>, StoreError> {
        use futures::TryStreamExt;
        let mut out = Vec::with_capacity(self.content_length.min(64 << 20) as usize);
        let mut stream = self.stream;
        while let Some(chunk) = stream.try_next().await.map_err(|e| StoreError::Io {
            context: "reading an object".into(),
            source: e,
        })? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

impl fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBody")
            .field("start", &self.start)
            .field("content_length", &self.content_length)
            .field("total_size", &self.total_size)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("no object under key {0}")]
    NotFound(ObjectKey),
    #[error("range not satisfiable: the object is {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("object store: {op} failed: {message}")]
    Backend { op: &'static str, message: String },
}

impl StoreError {
    /// Worth retrying: the store or the network failed, not the request.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Backend { .. })
    }
}

/// Somewhere objects are kept. Every method takes a validated key, so no caller can
/// escape the store's root.
#[async_trait]
pub trait ObjectStore: fmt::Debug + Send + Sync {
    /// Creates the bucket (or folder) when it is missing. Safe to call again.
    async fn ensure_bucket(&self) -> Result<(), StoreError>;

    /// Stores everything `reader` yields under `key`, replacing any object there. The
    /// object becomes visible only once it is complete; if reading or uploading fails,
    /// the key keeps what it had before and nothing partial is left behind.
    async fn put_stream(
        &self,
        key: &ObjectKey,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<ObjectInfo, StoreError>;

    /// [`put_stream`](Self::put_stream) from a file.
    async fn put_file(&self, key: &ObjectKey, path: &Path) -> Result<ObjectInfo, StoreError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| StoreError::Io {
                context: format!("opening {} to store it as {key}", path.display()),
                source: e,
            })?;
        self.put_stream(key, &mut file).await
    }

    /// The object, or the given range of it. `NotFound` when there is no such object,
    /// `RangeNotSatisfiable` when the range starts past its end.
    async fn get(
        &self,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, StoreError>;

    /// The object's size, or `None` when there is no such object.
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError>;

    async fn exists(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        Ok(self.head(key).await?.is_some())
    }

    /// Removes the object. Removing a missing object is not an error.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;
}

/// Which backend to open, from configuration (`S3_*`, `OBJECT_STORE_DIR`).
#[derive(Clone, Debug)]
pub enum StoreConfig {
    Local { dir: PathBuf },
    S3(S3Config),
}

/// An S3-compatible endpoint, addressed path-style (`<endpoint>/<bucket>/<key>`), which
/// MinIO, Garage and s3s-fs need and AWS still accepts.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: SecretString,
    pub secret_key: SecretString,
}

/// Opens the configured store and makes sure its bucket (or folder) exists.
pub async fn open(config: &StoreConfig) -> Result<std::sync::Arc<dyn ObjectStore>, StoreError> {
    let store: std::sync::Arc<dyn ObjectStore> = match config {
        StoreConfig::Local { dir } => std::sync::Arc::new(LocalStore::new(dir.clone())),
        StoreConfig::S3(s3) => std::sync::Arc::new(S3Store::new(s3)?),
    };
    store.ensure_bucket().await?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_stay_inside_the_store_are_accepted() {
        for key in [
            "tracks/yt:dQw4w9WgXcQ.m4a",
            "a",
            "covers/url=ab12/x_y-z.jpg",
            "v1/a+b@c~d",
        ] {
            assert_eq!(ObjectKey::parse(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn keys_that_could_escape_or_hide_are_refused() {
        for (key, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../secret", "`..`"),
            ("tracks/../../x", "`..`"),
            ("tracks/./x", "`.`"),
            ("tracks//x", "empty path segment"),
            ("tracks/", "empty path segment"),
            ("tracks/.tmp-123", "starts with a dot"),
            ("tracks\\x", "'\\\\'"),
            ("tracks/a b", "' '"),
            ("tracks/\u{0}", "'\\0'"),
            ("tracks/é", "'é'"),
        ] {
            match ObjectKey::parse(key) {
                Err(StoreError::InvalidKey { reason, .. }) => {
                    assert!(reason.contains(why), "{key:?}: {reason} (expected {why})")
                }
                other => panic!("{key:?} was not refused: {other:?}"),
            }
        }
        let long = "a".repeat(ObjectKey::MAX_LEN + 1);
        assert!(ObjectKey::parse(&long).is_err());
    }

    #[test]
    fn ranges_resolve_like_http() {
        assert_eq!(ByteRange::new(0, 9).resolve(100), Some((0, 9)));
        assert_eq!(ByteRange::new(90, 200).resolve(100), Some((90, 99)));
        assert_eq!(ByteRange::from(99).resolve(100), Some((99, 99)));
        assert_eq!(ByteRange::from(100).resolve(100), None);
        assert_eq!(ByteRange::new(5, 4).resolve(100), None);
        assert_eq!(ByteRange::from(0).resolve(0), None);
    }
}
