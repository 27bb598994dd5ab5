//! The per-job temporary folder downloads and transcodes happen in.

use std::path::Path;
use std::time::Duration;

use super::MediaError;

/// A job's own temporary folder, removed when dropped (on success, on error, on panic,
/// and when the job's future is cancelled). Only a killed process leaves one behind:
/// [`JobDir::sweep`] removes those at start-up.
#[derive(Debug)]
pub struct JobDir(tempfile::TempDir);

impl JobDir {
    const PREFIX: &'static str = "jukebox-job-";

    /// A new folder under `base` (the system temp folder when `None`).
    pub fn new(base: Option<&Path>) -> Result<Self, MediaError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(Self::PREFIX);
        let dir = match base {
            Some(base) => std::fs::create_dir_all(base).and_then(|()| builder.tempdir_in(base)),
            None => builder.tempdir(),
        };
        dir.map(Self).map_err(|e| MediaError::Tool {
            tool: "pipeline",
            reason: format!("creating a job folder: {e}"),
        })
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Removes job folders under `base` left by a process that was killed, if they are
    /// older than `older_than` (so a running job of another process is left alone).
    /// Returns how many were removed.
    pub fn sweep(base: &Path, older_than: Duration) -> std::io::Result<usize> {
        let mut removed = 0;
        let entries = match std::fs::read_dir(base) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let stale = entry
                .file_name()
                .to_string_lossy()
                .starts_with(Self::PREFIX)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > older_than);
            if stale && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_folders_go_away_when_dropped_and_leftovers_are_swept() {
        let base = tempfile::tempdir().unwrap();
        let job = JobDir::new(Some(base.path())).unwrap();
        std::fs::write(job.path().join("source.mp3"), b"x").unwrap();
        let path = job.path().to_owned();
        drop(job);
        assert!(!path.exists());

        // What a killed process leaves behind, next to something that is not ours.
        let leftover = base.path().join("jukebox-job-dead");
        std::fs::create_dir_all(leftover.join("inner")).unwrap();
        let other = base.path().join("not-a-job");
        std::fs::create_dir(&other).unwrap();
        assert_eq!(
            JobDir::sweep(base.path(), Duration::from_secs(3600)).unwrap(),
            0
        );
        assert!(leftover.exists());
        assert_eq!(JobDir::sweep(base.path(), Duration::ZERO).unwrap(), 1);
        assert!(!leftover.exists() && other.exists());
    }
}
