//! The local-folder backend: an object is the file `<dir>/<key>`.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::{ByteRange, ObjectBody, ObjectInfo, ObjectKey, ObjectStore, StoreError};

/// Prefix of the temporary files a put writes next to its key. Keys cannot start a
/// segment with a dot, so these never collide with an object.
const TEMP_PREFIX: &str = ".tmp-";

#[derive(Clone, Debug)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes temporary files that a killed process left behind (a put that never
    /// reached its rename), if older than `older_than` so a put in progress elsewhere is
    /// left alone. They are never visible as objects; this only frees the space.
    pub fn sweep_temp_files(&self, older_than: std::time::Duration) -> std::io::Result<usize> {
        fn walk(
            dir: &Path,
            older_than: std::time::Duration,
            removed: &mut usize,
        ) -> std::io::Result<()> {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    walk(&entry.path(), older_than, removed)?;
                } else if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                    && entry
                        .metadata()?
                        .modified()?
                        .elapsed()
                        .is_ok_and(|age| age > older_than)
                {
                    std::fs::remove_file(entry.path())?;
                    *removed += 1;
                }
            }
            Ok(())
        }
        let mut removed = 0;
        walk(&self.dir, older_than, &mut removed)?;
        Ok(removed)
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        // A parsed key is relative, has no `.`/`..` segments and no separators other
        // than `/`: joining it cannot leave `dir`.
        self.dir.join(key.as_str())
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn ensure_bucket(&self) -> Result<(), StoreError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io(format!(
                "creating the object folder {}",
                self.dir.display()
            )))
    }

    #[tracing::instrument(skip_all, fields(key = %key))]
    async fn put_stream(
        &self,
        key: &ObjectKey,
        reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
    ) -> Result<ObjectInfo, StoreError> {
        let path = self.path(key);
        let parent = path.parent().expect("a key has a parent folder").to_owned();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(io(format!("creating the folder {}", parent.display())))?;

        // The temporary file lives in the key's folder so that the rename is atomic (same
        // file system). `NamedTempFile` deletes it when dropped: on error, and when this
        // future is dropped half-way.
        let temp = {
            let folder = parent.clone();
            tokio::task::spawn_blocking(move || {
                tempfile::Builder::new()
                    .prefix(TEMP_PREFIX)
                    .tempfile_in(folder)
            })
            .await
            .expect("creating a temporary file does not panic")
            .map_err(io(format!(
                "creating a temporary file in {}",
                parent.display()
            )))?
        };
        let mut file = tokio::fs::File::from_std(
            temp.as_file()
                .try_clone()
                .map_err(io("opening the temporary file"))?,
        );
        let size = tokio::io::copy(reader, &mut file)
            .await
            .map_err(io(format!("writing {key}")))?;
        file.flush().await.map_err(io(format!("writing {key}")))?;
        file.sync_all()
            .await
            .map_err(io(format!("syncing {key}")))?;
        drop(file);

        let target = path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            temp.persist(&target).map_err(|e| e.error)?;
            // Make the rename itself durable.
            std::fs::File::open(target.parent().expect("has a parent"))?.sync_all()
        })
        .await
        .expect("renaming does not panic")
        .map_err(io(format!("moving {key} into place")))?;
        Ok(ObjectInfo { size })
    }

    async fn get(
        &self,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, StoreError> {
        let path = self.path(key);
        // Open, size and seek in one trip to the blocking pool (not three): under many
        // concurrent range requests the hand-offs, not the reads, are the cost.
        let opened = tokio::task::spawn_blocking(move || {
            use std::io::Seek;
            let mut file = std::fs::File::open(&path)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Ok(None);
            }
            let total_size = meta.len();
            let resolved = match range {
                None => Some((0, total_size)),
                Some(range) => range
                    .resolve(total_size)
                    .map(|(first, last)| (first, last - first + 1)),
            };
            if let Some((start, _)) = resolved.filter(|(start, _)| *start > 0) {
                file.seek(SeekFrom::Start(start))?;
            }
            std::io::Result::Ok(Some((file, total_size, resolved)))
        })
        .await
        .map_err(|e| io(format!("opening {key}"))(std::io::Error::other(e)))?;
        let (file, total_size, resolved) = match opened {
            Ok(Some(opened)) => opened,
            Ok(None) => return Err(StoreError::NotFound(key.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(key.clone()))
            }
            Err(e) => return Err(io(format!("opening {key}"))(e)),
        };
        let (start, content_length) =
            resolved.ok_or(StoreError::RangeNotSatisfiable { size: total_size })?;
        let file = tokio::fs::File::from_std(file);
        let stream = ReaderStream::with_capacity(file.take(content_length), 64 * 1024);
        Ok(ObjectBody {
            start,
            content_length,
            total_size,
            stream: Box::pin(stream),
        })
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectInfo { size: meta.len() })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!("reading {key}"))(e)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("deleting {key}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leftover_temporary_files_are_swept_and_objects_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = ObjectKey::parse("tracks/kept.m4a").unwrap();
        store.put_stream(&key, &mut &b"audio"[..]).await.unwrap();
        // What a put killed before its rename leaves.
        let leftover = dir.path().join("tracks").join(".tmp-abc123");
        std::fs::write(&leftover, b"half").unwrap();
        assert_eq!(
            store
                .sweep_temp_files(std::time::Duration::from_secs(3600))
                .unwrap(),
            0
        );
        assert!(leftover.exists());
        assert_eq!(
            store.sweep_temp_files(std::time::Duration::ZERO).unwrap(),
            1
        );
        assert!(!leftover.exists());
        assert_eq!(store.head(&key).await.unwrap().unwrap().size, 5);
    }
}
