//! The playlists' queries: a user's playlists, the public ones, one playlist's entries a
//! page at a time (offset by index on `(playlist_id, rank)`), and the look-ups the edge
//! checks commands with (which tracks a user holds, an import's matches).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A playlist as lists show it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Summary {
    pub playlist_id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub description: String,
    pub public: bool,
    pub entry_count: i32,
    /// The songs' total length (entries whose track left the owner's library count 0).
    pub duration_ms: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One entry of a playlist, where it stands.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Item {
    pub entry_no: i64,
    pub track_id: String,
}

// The count is the entries' own (one index range), not the row's counter: a count that
// cannot drift from the list it counts.
const SUMMARY: &str = "SELECT p.playlist_id, p.owner_id, p.name, p.description, p.public,
        (SELECT count(*) FROM playlist_entries c
          WHERE c.playlist_id = p.playlist_id AND c.entry_no >= 0)::int
            AS entry_count,
        COALESCE(d.duration_ms, 0)::bigint AS duration_ms,
        p.created_at, p.updated_at
    FROM playlists p
    LEFT JOIN LATERAL (
        SELECT sum(m.duration_ms) AS duration_ms FROM playlist_entries e
        JOIN music m ON m.key = p.owner_id::text || '/t/' || e.track_id AND m.kind = 'entry'
        WHERE e.playlist_id = p.playlist_id AND e.entry_no >= 0) d ON true";

/// One playlist, whoever owns it (the caller decides who may see it).
pub async fn get(pool: &PgPool, playlist_id: Uuid) -> Result<Option<Summary>, sqlx::Error> {
    sqlx::query_as(&format!("{SUMMARY} WHERE p.playlist_id = $1"))
        .bind(playlist_id)
        .fetch_optional(pool)
        .await
}

/// `user_id`'s own playlists by name, then the public ones of others when `with_public`.
pub async fn visible(
    pool: &PgPool,
    user_id: Uuid,
    with_public: bool,
) -> Result<Vec<Summary>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SUMMARY} WHERE p.owner_id = $1 OR ($2 AND p.public)
         ORDER BY p.owner_id <> $1, lower(p.name), p.playlist_id"
    ))
    .bind(user_id)
    .bind(with_public)
    .fetch_all(pool)
    .await
}

/// `limit` entries of the playlist from index `offset`, in order.
pub async fn items(
    pool: &PgPool,
    playlist_id: Uuid,
    offset: i64,
    limit: i64,
) -> Result<Vec<Item>, sqlx::Error> {
    sqlx::query_as(
        "SELECT entry_no, track_id FROM playlist_entries
         WHERE playlist_id = $1 AND entry_no >= 0
         ORDER BY rank, entry_no OFFSET $2 LIMIT $3",
    )
    .bind(playlist_id)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Which of `track_ids` are in `user_id`'s library (each once).
pub async fn held_tracks(
    pool: &PgPool,
    user_id: Uuid,
    track_ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let keys: Vec<String> = track_ids
        .iter()
        .map(|id| crate::library::UserLibrary::entry_id(user_id, id))
        .collect();
    sqlx::query_scalar("SELECT track_id FROM library WHERE entry_id = ANY($1)")
        .bind(keys)
        .fetch_all(pool)
        .await
}

/// The tracks of `user_id`'s library imported from these source URLs (the import job's
/// `source`), as `(source, track_id)`.
pub async fn tracks_by_source(
    pool: &PgPool,
    user_id: Uuid,
    sources: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (j.source) j.source, j.track_id FROM jobs j
         JOIN library l ON l.entry_id = j.user_id::text || '/' || j.track_id
         WHERE j.user_id = $1 AND j.source = ANY($2) AND j.track_id IS NOT NULL
         ORDER BY j.source, j.created_at",
    )
    .bind(user_id)
    .bind(sources)
    .fetch_all(pool)
    .await
}

/// The first track (by when it was added) in `user_id`'s library whose lower-cased
/// artist and title are these, for each pair given, as `(artist, title, track_id)`.
pub async fn tracks_by_name(
    pool: &PgPool,
    user_id: Uuid,
    artists: &[String],
    titles: &[String],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (w.artist, w.title) w.artist, w.title, l.track_id
         FROM unnest($2::text[], $3::text[]) AS w(artist, title)
         JOIN library l ON l.user_id = $1 AND l.artist_key = w.artist AND l.title_key = w.title
         ORDER BY w.artist, w.title, l.added_at, l.track_id",
    )
    .bind(user_id)
    .bind(artists)
    .bind(titles)
    .fetch_all(pool)
    .await
}

/// Every source a track of `user_id`'s was imported from, as `(track_id, source)` (the
/// export writes them as the entries' locations).
pub async fn sources_of(
    pool: &PgPool,
    user_id: Uuid,
    track_ids: &[String],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (track_id) track_id, source_kind, source FROM jobs
         WHERE user_id = $1 AND track_id = ANY($2) AND status = 'completed'
         ORDER BY track_id, created_at",
    )
    .bind(user_id)
    .bind(track_ids)
    .fetch_all(pool)
    .await
}

/// Whether the playlist lists `track_id` (any entry): a public playlist's listener may
/// stream the owner's copy of its tracks (ADR 32).
pub async fn lists_track(
    pool: &PgPool,
    playlist_id: Uuid,
    track_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM playlist_entries
                        WHERE playlist_id = $1 AND track_id = $2 AND entry_no >= 0)",
    )
    .bind(playlist_id)
    .bind(track_id)
    .fetch_one(pool)
    .await
}
