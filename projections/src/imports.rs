//! The import flow's read models: `jobs` (one row per import job) and `tracks` (the
//! shared catalog of stored tracks). Who has which track is `library` (`crate::library`).

use std::collections::HashMap;

use jukebox_domain::{ImportEvent, SourceRef, TrackEvent};
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::position::Position;
use crate::runtime::Projection;

fn time(t: &OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("timestamps format")
}

pub struct Jobs;

/// Job status as the API shows it: `requested`, `waiting`, `downloading`,
/// `transcoding`, `storing`, `completed` or `failed`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub job_id: Uuid,
    pub user_id: Uuid,
    pub source_kind: String,
    pub source: String,
    pub status: String,
    pub track_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The read-your-writes position of the last event applied to the job.
    pub position: Option<String>,
}

impl JobRow {
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed")
    }
}

impl Projection for Jobs {
    const USER_COLUMN: Option<&'static str> = Some("user_id");
    const NAME: &'static str = "jobs";
    const AGGREGATES: &'static [&'static str] = &["import"];
    const TABLE: &'static str = "jobs";
    const KEY_COLUMN: &'static str = "job_id";
    const KEY_TYPE: &'static str = "uuid";
    const COLUMNS: &'static [&'static str] = &[
        "job_id",
        "user_id",
        "source_kind",
        "source",
        "status",
        "track_id",
        "error_code",
        "error_message",
        "created_at",
        "updated_at",
        "position",
    ];
    type Row = JobRow;

    fn key(row: &Self::Row) -> String {
        row.job_id.to_string()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        if event.aggregate_type == "import" {
            vec![event.aggregate_id.clone()]
        } else {
            Vec::new()
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let Ok(import_event) = event.decode::<ImportEvent>() else {
            return;
        };
        if let ImportEvent::ImportRequested {
            job_id,
            requested_by,
            source,
        } = &import_event
        {
            let (source_kind, source) = match source {
                SourceRef::Video { video_id } => ("video", video_id.clone()),
                SourceRef::Url { url } => ("url", url.clone()),
                SourceRef::Upload { filename, .. } => {
                    ("upload", filename.clone().unwrap_or_default())
                }
            };
            rows.insert(
                event.aggregate_id.clone(),
                JobRow {
                    job_id: *job_id,
                    user_id: *requested_by,
                    source_kind: source_kind.into(),
                    source,
                    status: "requested".into(),
                    track_id: None,
                    error_code: None,
                    error_message: None,
                    created_at: event.recorded_at,
                    updated_at: event.recorded_at,
                    position: Some(Position::of(event).to_string()),
                },
            );
            return;
        }
        let Some(row) = rows.get_mut(&event.aggregate_id) else {
            return;
        };
        row.updated_at = event.recorded_at;
        row.position = Some(Position::of(event).to_string());
        match import_event {
            ImportEvent::ImportRequested { .. } => {}
            ImportEvent::ImportStageChanged { stage } => row.status = stage.as_str().into(),
            ImportEvent::ImportCompleted { track_id } => {
                row.status = "completed".into();
                row.track_id = Some(track_id.to_string());
            }
            ImportEvent::ImportFailed { code, reason } => {
                row.status = "failed".into();
                row.error_code = Some(code);
                row.error_message = Some(reason);
            }
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        vec![
            Some(row.job_id.to_string()),
            Some(row.user_id.to_string()),
            Some(row.source_kind.clone()),
            Some(row.source.clone()),
            Some(row.status.clone()),
            row.track_id.clone(),
            row.error_code.clone(),
            row.error_message.clone(),
            Some(time(&row.created_at)),
            Some(time(&row.updated_at)),
            row.position.clone(),
        ]
    }
}

pub struct Tracks;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrackRow {
    pub track_id: String,
    pub object_key: String,
    pub size: i64,
    pub duration_ms: i64,
    pub codec: String,
    pub bitrate: i64,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub has_cover: bool,
    pub origin: String,
    pub stored_at: OffsetDateTime,
    /// The cover image object (key, size, content type), when one is stored.
    pub cover_key: Option<String>,
    pub cover_size: Option<i64>,
    pub cover_type: Option<String>,
}

impl Projection for Tracks {
    const NAME: &'static str = "tracks";
    const AGGREGATES: &'static [&'static str] = &["track"];
    const TABLE: &'static str = "tracks";
    const KEY_COLUMN: &'static str = "track_id";
    const KEY_TYPE: &'static str = "text";
    const COLUMNS: &'static [&'static str] = &[
        "track_id",
        "object_key",
        "size",
        "duration_ms",
        "codec",
        "bitrate",
        "title",
        "artist",
        "album",
        "has_cover",
        "origin",
        "stored_at",
        "cover_key",
        "cover_size",
        "cover_type",
    ];
    type Row = TrackRow;

    fn key(row: &Self::Row) -> String {
        row.track_id.clone()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        if event.aggregate_type == "track" {
            vec![event.aggregate_id.clone()]
        } else {
            Vec::new()
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let track = match event.decode::<TrackEvent>() {
            Ok(TrackEvent::TrackStored(track)) => track,
            // Its objects left the store (ADR 42): out of the catalog until stored again.
            Ok(TrackEvent::TrackDiscarded { .. }) => {
                rows.remove(&event.aggregate_id);
                return;
            }
            Err(_) => return,
        };
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        rows.insert(
            event.aggregate_id.clone(),
            TrackRow {
                track_id: track.track_id.to_string(),
                object_key: track.object_key,
                size: as_i64(track.size),
                duration_ms: as_i64(track.duration_ms),
                codec: track.codec,
                bitrate: as_i64(track.bitrate),
                title: track.title,
                artist: track.artist,
                album: track.album,
                has_cover: track.has_cover,
                origin: track.origin,
                stored_at: event.recorded_at,
                cover_size: track.cover.as_ref().map(|c| as_i64(c.size)),
                cover_type: track.cover.as_ref().map(|c| c.content_type.clone()),
                cover_key: track.cover.map(|c| c.object_key),
            },
        );
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        vec![
            Some(row.track_id.clone()),
            Some(row.object_key.clone()),
            Some(row.size.to_string()),
            Some(row.duration_ms.to_string()),
            Some(row.codec.clone()),
            Some(row.bitrate.to_string()),
            row.title.clone(),
            row.artist.clone(),
            row.album.clone(),
            Some(row.has_cover.to_string()),
            Some(row.origin.clone()),
            Some(time(&row.stored_at)),
            row.cover_key.clone(),
            row.cover_size.map(|s| s.to_string()),
            row.cover_type.clone(),
        ]
    }
}

/// Queries on `jobs`.
pub mod jobs {
    use std::collections::HashMap;

    use jukebox_nats::log;
    use sqlx::PgPool;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::{JobRow, Jobs};
    use crate::runtime::Projection;

    const COLUMNS: &str = "job_id, user_id, source_kind, source, status, track_id, \
        error_code, error_message, created_at, updated_at, position";

    /// The job's row; for a job requested a moment ago that the projector has not reached
    /// yet, the same fold (`Jobs::apply`) over the job's own events in the log.
    pub async fn get(pool: &PgPool, job_id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
        let row: Option<JobRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE job_id = $1"))
                .bind(job_id)
                .fetch_optional(pool)
                .await?;
        if row.is_some() {
            return Ok(row);
        }
        let id = job_id.to_string();
        let mut rows = HashMap::new();
        for event in log::aggregate(pool, "import", &id, None, None).await? {
            Jobs::apply(&mut rows, &event);
        }
        Ok(rows.remove(&id))
    }

    /// How many of the user's jobs have not ended (neither completed nor failed).
    pub async fn unfinished(pool: &PgPool, user_id: Uuid) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE user_id = $1 AND status NOT IN ('completed', 'failed')",
        )
        .bind(user_id)
        .fetch_one(pool)
        .await
    }

    /// How many of the user's jobs have not ended, and the `jobs` checkpoint that count
    /// is as of (one statement, so one snapshot). A job completes after its track is in
    /// the library, so once `library` reaches that checkpoint every job not counted here
    /// is there: a quota count of the two neither misses a job nor counts it twice (but
    /// for one completing between the two reads).
    pub async fn unfinished_as_of(
        pool: &PgPool,
        user_id: Uuid,
    ) -> Result<(i64, crate::position::Position), sqlx::Error> {
        let (count, xid, global_position): (i64, String, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM jobs WHERE user_id = $1
                       AND status NOT IN ('completed', 'failed')),
                    coalesce(c.transaction_id::text, '0'), coalesce(c.global_position, 0)
             FROM (SELECT 1) one
             LEFT JOIN projection_checkpoints c ON c.projection = $2",
        )
        .bind(user_id)
        .bind(<Jobs as Projection>::NAME)
        .fetch_one(pool)
        .await?;
        let position = crate::position::Position {
            transaction_id: xid.parse().unwrap_or(0),
            global_position,
        };
        Ok((count, position))
    }

    /// The rows of these jobs (those the projector has reached), in no order.
    pub async fn many(pool: &PgPool, job_ids: &[Uuid]) -> Result<Vec<JobRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE job_id = ANY($1)"
        ))
        .bind(job_ids)
        .fetch_all(pool)
        .await
    }

    /// A user's jobs, newest first.
    pub async fn of_user(
        pool: &PgPool,
        user_id: Uuid,
        limit: i64,
    ) -> Result<Vec<JobRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE user_id = $1
             ORDER BY created_at DESC, job_id DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit)
        .fetch_all(pool)
        .await
    }

    /// What the admin's job list filters on; `None` matches everything.
    #[derive(Debug, Clone, Default)]
    pub struct Filter {
        /// A stage, or `running` for every stage before the end.
        pub status: Option<String>,
        pub user_id: Option<Uuid>,
        /// A `LIKE` pattern on the lower-cased source, track id or error message.
        pub pattern: Option<String>,
    }

    /// One job in the admin's list, with its requester's address (`admin_users`).
    #[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
    pub struct AdminJobRow {
        pub job_id: Uuid,
        pub user_id: Uuid,
        pub email: Option<String>,
        pub source_kind: String,
        pub source: String,
        pub status: String,
        pub track_id: Option<String>,
        pub error_code: Option<String>,
        pub error_message: Option<String>,
        pub created_at: OffsetDateTime,
        pub updated_at: OffsetDateTime,
    }

    /// Every user's jobs, newest first (the admin's list).
    pub async fn page(
        pool: &PgPool,
        filter: &Filter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AdminJobRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT j.job_id, j.user_id, u.email, j.source_kind, j.source, j.status, j.track_id,
                    j.error_code, j.error_message, j.created_at, j.updated_at
             FROM jobs j LEFT JOIN admin_users u ON u.user_id = j.user_id
             WHERE ($1::text IS NULL OR j.status = $1
                    OR ($1 = 'running' AND j.status NOT IN ('completed', 'failed')))
               AND ($2::uuid IS NULL OR j.user_id = $2)
               AND ($3::text IS NULL OR lower(j.source) LIKE $3 OR lower(j.track_id) LIKE $3
                    OR lower(j.error_message) LIKE $3)
             ORDER BY j.created_at DESC, j.job_id LIMIT $4 OFFSET $5",
        )
        .bind(&filter.status)
        .bind(filter.user_id)
        .bind(&filter.pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
    }
}

/// Queries on `tracks`, the catalog.
pub mod tracks {
    use std::collections::HashMap;

    use sqlx::PgPool;
    use time::OffsetDateTime;

    /// One stored track in the admin's catalog, with how many libraries hold it.
    #[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
    pub struct CatalogRow {
        pub track_id: String,
        pub origin: String,
        pub object_key: String,
        pub size: i64,
        pub duration_ms: i64,
        pub codec: String,
        pub bitrate: i64,
        pub title: Option<String>,
        pub artist: Option<String>,
        pub stored_at: OffsetDateTime,
        pub libraries: i32,
    }

    /// The catalog, newest first; `pattern` (a `LIKE` pattern) on the lower-cased title,
    /// artist or track id. The holders count is the `library` model's track row.
    pub async fn catalog(
        pool: &PgPool,
        pattern: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CatalogRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT t.track_id, t.origin, t.object_key, t.size, t.duration_ms, t.codec, t.bitrate,
                    t.title, t.artist, t.stored_at, coalesce(l.holders, 0) AS libraries
             FROM tracks t LEFT JOIN library l ON l.entry_id = 'track/' || t.track_id
             WHERE $1::text IS NULL OR lower(t.title) LIKE $1 OR lower(t.artist) LIKE $1
                   OR lower(t.track_id) LIKE $1
             ORDER BY t.stored_at DESC, t.track_id LIMIT $2 OFFSET $3",
        )
        .bind(pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
    }

    /// Title and artist of those of `track_ids` that are stored.
    pub async fn tags(
        pool: &PgPool,
        track_ids: &[&str],
    ) -> Result<HashMap<String, (Option<String>, Option<String>)>, sqlx::Error> {
        let rows: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT track_id, title, artist FROM tracks WHERE track_id = ANY($1)")
                .bind(track_ids)
                .fetch_all(pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, title, artist)| (id, (title, artist)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use jukebox_domain::{ImportStage, StoredCover, StoredTrack, TrackId};

    use super::*;
    use crate::given::Log;

    fn job() -> Uuid {
        Uuid::from_u128(0x10b)
    }

    fn user() -> Uuid {
        Uuid::from_u128(1)
    }

    fn track() -> TrackId {
        TrackId::parse("yt:aaaaaaaaaaa").unwrap()
    }

    fn requested(source: SourceRef) -> Log {
        Log::new().event(
            "import",
            job(),
            ImportEvent::ImportRequested {
                job_id: job(),
                requested_by: user(),
                source,
            },
        )
    }

    fn stored(track_id: &TrackId, cover: bool) -> TrackEvent {
        TrackEvent::TrackStored(StoredTrack {
            track_id: track_id.clone(),
            object_key: format!("tracks/{track_id}.m4a"),
            size: 4_000_000,
            duration_ms: 213_000,
            codec: "aac".into(),
            bitrate: 256_000,
            title: Some("First Song".into()),
            artist: Some("Channel One".into()),
            album: None,
            artists: Vec::new(),
            year: None,
            has_cover: cover,
            origin: "https://www.youtube.com/watch?v=aaaaaaaaaaa".into(),
            cover: cover.then(|| StoredCover {
                object_key: format!("tracks/{track_id}.jpg"),
                size: 12_000,
                content_type: "image/jpeg".into(),
            }),
        })
    }

    #[test]
    fn a_requested_job_is_a_row_named_by_its_source() {
        let upload = SourceRef::Upload {
            object_key: "uploads/x".into(),
            sha256: "ab".repeat(32),
            size: 10,
            filename: Some("song.mp3".into()),
        };
        for (source, kind, shown) in [
            (
                SourceRef::video("aaaaaaaaaaa").unwrap(),
                "video",
                "aaaaaaaaaaa",
            ),
            (
                SourceRef::url("https://example.com/a.mp3").unwrap(),
                "url",
                "https://example.com/a.mp3",
            ),
            (upload, "upload", "song.mp3"),
        ] {
            let rows = requested(source).rows::<Jobs>();
            assert_eq!(
                rows.values().collect::<Vec<_>>(),
                [&JobRow {
                    job_id: job(),
                    user_id: user(),
                    source_kind: kind.into(),
                    source: shown.into(),
                    status: "requested".into(),
                    track_id: None,
                    error_code: None,
                    error_message: None,
                    created_at: Log::time(1),
                    updated_at: Log::time(1),
                    position: Some("1.1".into()),
                }]
            );
        }
    }

    #[test]
    fn stages_then_completion_show_on_the_job() {
        let log = requested(SourceRef::video("aaaaaaaaaaa").unwrap()).event(
            "import",
            job(),
            ImportEvent::ImportStageChanged {
                stage: ImportStage::Transcoding,
            },
        );
        let rows = log.rows::<Jobs>();
        let row = &rows[&job().to_string()];
        assert_eq!(row.status, "transcoding");
        assert!(!row.is_finished());

        let rows = log
            .event(
                "import",
                job(),
                ImportEvent::ImportCompleted { track_id: track() },
            )
            .rows::<Jobs>();
        let row = &rows[&job().to_string()];
        assert_eq!(row.status, "completed");
        assert_eq!(row.track_id.as_deref(), Some("yt:aaaaaaaaaaa"));
        assert_eq!(
            (row.created_at, row.updated_at),
            (Log::time(1), Log::time(3))
        );
        assert!(row.is_finished());
    }

    #[test]
    fn a_failure_keeps_its_code_and_reason() {
        let rows = requested(SourceRef::url("https://example.com/a.mp3").unwrap())
            .event(
                "import",
                job(),
                ImportEvent::ImportFailed {
                    code: "not_audio".into(),
                    reason: "the file has no audio stream".into(),
                },
            )
            .rows::<Jobs>();
        let row = &rows[&job().to_string()];
        assert_eq!(row.status, "failed");
        assert_eq!(row.error_code.as_deref(), Some("not_audio"));
        assert_eq!(
            row.error_message.as_deref(),
            Some("the file has no audio stream")
        );
    }

    #[test]
    fn events_of_a_job_never_requested_make_no_row() {
        let rows = Log::new()
            .event(
                "import",
                job(),
                ImportEvent::ImportCompleted { track_id: track() },
            )
            .rows::<Jobs>();
        assert!(rows.is_empty(), "{rows:?}");
    }

    #[test]
    fn a_stored_track_is_a_catalog_row_with_its_cover_object() {
        let rows = Log::new()
            .event("track", track(), stored(&track(), true))
            .rows::<Tracks>();
        assert_eq!(
            rows.values().collect::<Vec<_>>(),
            [&TrackRow {
                track_id: "yt:aaaaaaaaaaa".into(),
                object_key: "tracks/yt:aaaaaaaaaaa.m4a".into(),
                size: 4_000_000,
                duration_ms: 213_000,
                codec: "aac".into(),
                bitrate: 256_000,
                title: Some("First Song".into()),
                artist: Some("Channel One".into()),
                album: None,
                has_cover: true,
                origin: "https://www.youtube.com/watch?v=aaaaaaaaaaa".into(),
                stored_at: Log::time(1),
                cover_key: Some("tracks/yt:aaaaaaaaaaa.jpg".into()),
                cover_size: Some(12_000),
                cover_type: Some("image/jpeg".into()),
            }]
        );
        let rows = Log::new()
            .event("track", track(), stored(&track(), false))
            .rows::<Tracks>();
        let row = &rows["yt:aaaaaaaaaaa"];
        assert_eq!(
            (&row.cover_key, row.cover_size, &row.cover_type),
            (&None, None, &None)
        );
    }

    #[test]
    fn a_discarded_track_leaves_the_catalog_until_stored_again() {
        let discarded = TrackEvent::TrackDiscarded {
            object_keys: vec!["tracks/yt:aaaaaaaaaaa.m4a".into()],
        };
        let log = Log::new()
            .event("track", track(), stored(&track(), false))
            .event("track", track(), discarded);
        assert!(log.rows::<Tracks>().is_empty());
        let rows = log
            .event("track", track(), stored(&track(), true))
            .rows::<Tracks>();
        let row = &rows["yt:aaaaaaaaaaa"];
        assert_eq!((row.stored_at, row.has_cover), (Log::time(3), true));
    }
}
