//! Per-user quotas on what a library holds (issue 20, ADR 41): tracks, imports in
//! progress counted, and the stored bytes of those tracks. Checked on the read models
//! (`jobs`, then `library` and `tracks` as far as `jobs` had come, after the caller's
//! own writes) where an import is
//! accepted: `POST /songs/import`, `POST /songs/upload`, and a collection's confirm,
//! which is refused whole when its new tracks do not all fit.

use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::fresh::{models, After};
use crate::ports::Quota;
use crate::state::AppState;

/// A user's use against the quota, as the preview shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct QuotaUse {
    /// `IMPORT_MAX_TRACKS_PER_USER`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tracks: Option<u64>,
    /// `IMPORT_MAX_BYTES_PER_USER`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_bytes: Option<u64>,
    /// Tracks in my library.
    tracks: u64,
    /// My imports not finished yet; each counts as a track.
    in_progress: u64,
    /// Stored bytes of the tracks in my library.
    bytes: u64,
}

/// The user's use, or `None` when no quota is set (nothing is read then).
pub(super) async fn current(
    state: &AppState,
    after: &After,
    quota: Quota,
    user_id: Uuid,
) -> Result<Option<QuotaUse>, ApiError> {
    if quota.max_tracks.is_none() && quota.max_bytes.is_none() {
        return Ok(None);
    }
    after.wait(state, &[models::JOBS]).await?;
    let (in_progress, jobs_at) =
        jukebox_projections::imports::jobs::unfinished_as_of(&state.pool, user_id).await?;
    // The library as far as the jobs counted: a job finished since the count is there.
    crate::fresh::wait_for(state, jobs_at, &[models::LIBRARY, models::TRACKS]).await?;
    after
        .wait(state, &[models::LIBRARY, models::TRACKS])
        .await?;
    let (tracks, bytes) = jukebox_projections::library::usage(&state.pool, user_id).await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Some(QuotaUse {
        max_tracks: quota.max_tracks,
        max_bytes: quota.max_bytes,
        tracks: count(tracks),
        in_progress: count(in_progress),
        bytes: count(bytes),
    }))
}

impl QuotaUse {
    /// How many more tracks fit (`None`: any number). Bytes are known only once a track
    /// is stored, so the byte limit lets tracks in until the library reaches it.
    pub(super) fn room(&self) -> Option<u64> {
        let by_tracks = self
            .max_tracks
            .map(|max| max.saturating_sub(self.tracks + self.in_progress));
        let by_bytes = self
            .max_bytes
            .map(|max| if self.bytes >= max { 0 } else { u64::MAX });
        match (by_tracks, by_bytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Refuses `adding` new tracks of `adding_bytes` known bytes (an upload's size, else
    /// 0) that would pass a limit; the answer names the limit and the current use.
    pub(super) fn admit(&self, adding: u64, adding_bytes: u64) -> Result<(), ApiError> {
        if adding == 0 {
            return Ok(());
        }
        if let Some(max) = self.max_bytes {
            if self.bytes >= max || self.bytes + adding_bytes > max {
                let this = if adding_bytes > 0 {
                    format!(" and this file is {}", size(adding_bytes))
                } else {
                    String::new()
                };
                return Err(exceeded(format!(
                    "your library's tracks take {} and the limit is {} per user \
                     (IMPORT_MAX_BYTES_PER_USER){this}: remove some tracks to import more",
                    size(self.bytes),
                    size(max)
                )));
            }
        }
        if let Some(max) = self.max_tracks {
            let used = self.tracks + self.in_progress;
            if used + adding > max {
                let fits = max.saturating_sub(used);
                return Err(exceeded(format!(
                    "your library holds {} and {} in progress; the limit is {max} tracks per \
                     user (IMPORT_MAX_TRACKS_PER_USER): {} would pass it ({fits} fit)",
                    plural(self.tracks, "track"),
                    plural(self.in_progress, "import"),
                    plural(adding, "more track"),
                )));
            }
        }
        Ok(())
    }
}

fn plural(n: u64, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

fn exceeded(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "quota_exceeded", message)
}

/// Bytes for people: `812 KiB`, `3.4 MiB`, `1.20 GiB`.
pub(super) fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB * KIB {
        format!("{} KiB", bytes.div_ceil(1024))
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(max_tracks: Option<u64>, max_bytes: Option<u64>, tracks: u64, bytes: u64) -> QuotaUse {
        QuotaUse {
            max_tracks,
            max_bytes,
            tracks,
            in_progress: 1,
            bytes,
        }
    }

    #[test]
    fn room_is_the_smaller_of_the_two_limits() {
        assert_eq!(usage(None, None, 9, 9).room(), None);
        assert_eq!(usage(Some(5), None, 2, 0).room(), Some(2));
        assert_eq!(usage(Some(5), None, 7, 0).room(), Some(0));
        assert_eq!(usage(Some(5), Some(100), 2, 99).room(), Some(2));
        assert_eq!(usage(Some(5), Some(100), 2, 100).room(), Some(0));
        assert_eq!(usage(None, Some(100), 2, 10).room(), Some(u64::MAX));
    }

    #[test]
    fn a_refusal_names_the_limit_and_the_use() {
        let error = usage(Some(4), None, 2, 0).admit(2, 0).unwrap_err();
        assert_eq!(
            error.to_string(),
            "your library holds 2 tracks and 1 import in progress; the limit is 4 tracks per \
             user (IMPORT_MAX_TRACKS_PER_USER): 2 more tracks would pass it (1 fit)"
        );
        assert!(usage(Some(4), None, 2, 0).admit(1, 0).is_ok());
        assert!(usage(Some(4), None, 9, 0).admit(0, 0).is_ok());
        let error = usage(None, Some(3 << 20), 2, 1 << 20)
            .admit(1, 5 << 20)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "your library's tracks take 1.0 MiB and the limit is 3.0 MiB per user \
             (IMPORT_MAX_BYTES_PER_USER) and this file is 5.0 MiB: remove some tracks to \
             import more"
        );
        assert!(usage(None, Some(3 << 20), 2, 1 << 20).admit(1, 0).is_ok());
    }
}
