//! The read side of `music`: artists, albums and tracks of one user's library. Every
//! statement is fixed per sort (no optional arms, ADR 20) and reads one index range of
//! migration 0012's partial indexes. A page skips its offset in the index alone (an
//! index-only scan of the sort's columns and the id, from which the row's key follows)
//! and then reads its own rows by key: at 10,000 tracks, the last page of 500 cost 40 ms
//! when the skipped rows were read too, 2 ms this way.

use time::OffsetDateTime;
use uuid::Uuid;

/// An artist in a user's library.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Artist {
    /// A UUIDv5 of the normalized name, the same for every user (ADR 23).
    pub id: String,
    pub name: String,
    /// Albums whose artist (first artist of its tracks) it is.
    pub album_count: i32,
    /// Tracks it is one of the artists of.
    pub track_count: i32,
    pub duration_ms: i64,
}

/// An album in a user's library.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Album {
    /// A UUIDv5 of the album artist and title, or of the track id for a single (ADR 23).
    pub id: String,
    pub name: String,
    pub artist: String,
    pub artist_id: String,
    pub year: Option<i32>,
    pub track_count: i32,
    pub duration_ms: i64,
    /// When its first track was added.
    pub added_at: Option<OffsetDateTime>,
    /// The album's first track, whose cover is the album's when `cover_stored`.
    pub first_track_id: Option<String>,
    pub cover_stored: bool,
}

impl Album {
    /// The track whose stored cover is the album's, if any.
    pub fn cover_track_id(&self) -> Option<&str> {
        self.first_track_id.as_deref().filter(|_| self.cover_stored)
    }
}

/// A track of a user's library with its details as the owner sees them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Track {
    pub track_id: String,
    pub title: String,
    pub artists: Vec<String>,
    pub artist_ids: Vec<String>,
    /// The album's title (a single's is the track's title).
    pub album: String,
    pub album_id: String,
    pub year: Option<i32>,
    pub duration_ms: i64,
    pub cover_stored: bool,
    /// The audio object's size in bytes, bit rate and codec (`aac`).
    pub size: i64,
    pub bitrate: i64,
    pub codec: String,
    pub added_at: Option<OffsetDateTime>,
}

/// The orders an album list comes in (the Subsonic `getAlbumList2` types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlbumSort {
    /// Most recently added first.
    Newest,
    AlphabeticalByName,
    AlphabeticalByArtist,
    Random,
    /// Albums with a year from `from` to `to`, both included; descending when
    /// `from > to`. Albums without a year are left out.
    ByYear {
        from: i32,
        to: i32,
    },
}

pub(crate) const TRACK_COLUMNS: &str = "id AS track_id, name AS title, artists, artist_ids,
     COALESCE(album, name) AS album, album_id AS album_id, year, duration_ms, cover_stored,
     size, bitrate, codec, added_at";

pub(crate) const ALBUM_COLUMNS: &str =
    "a.id, a.name, a.artists[1] AS artist, a.artist_ids[1] AS artist_id,
     a.year, a.track_count, a.duration_ms, a.added_at,
     f.id AS first_track_id, COALESCE(f.cover_stored, false) AS cover_stored";

/// The album's first track (its cover is the album's).
pub(crate) const FIRST_TRACK: &str = "LEFT JOIN LATERAL (
         SELECT e.id, e.cover_stored FROM music e
         WHERE e.kind = 'entry' AND e.user_id = a.user_id AND e.album_id = a.id
         ORDER BY e.added_at, e.id LIMIT 1) f ON true";

pub(crate) const ARTIST_COLUMNS: &str = "id, name, album_count, track_count, duration_ms";

pub mod artists {
    use super::*;

    const COLUMNS: &str = ARTIST_COLUMNS;

    /// `user_id`'s artists by name, `limit` from `offset`.
    pub async fn page(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Artist>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM music WHERE key IN (
                 SELECT $1::uuid::text || '/ar/' || id FROM music
                 WHERE kind = 'artist' AND user_id = $1
                 ORDER BY name_key, id LIMIT $2 OFFSET $3)
             ORDER BY name_key, id"
        ))
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
    }

    /// How many artists `user_id`'s library has.
    pub async fn count(pool: &sqlx::PgPool, user_id: Uuid) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM music WHERE kind = 'artist' AND user_id = $1")
            .bind(user_id)
            .fetch_one(pool)
            .await
    }

    /// The artist, and the albums whose artist it is (newest year first), or `None`
    /// when `user_id`'s library has no such artist.
    pub async fn get(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        artist_id: &str,
    ) -> Result<Option<(Artist, Vec<Album>)>, sqlx::Error> {
        let artist: Option<Artist> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM music WHERE key = $1 AND kind = 'artist'"
        ))
        .bind(crate::music::Music::artist_key(user_id, artist_id))
        .fetch_optional(pool)
        .await?;
        let Some(artist) = artist else {
            return Ok(None);
        };
        let albums = sqlx::query_as(&format!(
            "SELECT {ALBUM_COLUMNS} FROM music a {FIRST_TRACK}
             WHERE a.kind = 'album' AND a.user_id = $1 AND a.artist_ids[1] = $2
             ORDER BY a.year DESC NULLS LAST, a.name_key, a.id"
        ))
        .bind(user_id)
        .bind(artist_id)
        .fetch_all(pool)
        .await?;
        Ok(Some((artist, albums)))
    }
}

pub mod albums {
    use super::*;

    /// `user_id`'s albums in `sort`, `limit` from `offset`.
    pub async fn page(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        sort: AlbumSort,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Album>, sqlx::Error> {
        // The order as columns of the table aliased `{t}`.
        let (condition, order) = match sort {
            AlbumSort::Newest => ("", "{t}.added_at DESC, {t}.id DESC"),
            AlbumSort::AlphabeticalByName => ("", "{t}.name_key, {t}.id"),
            AlbumSort::AlphabeticalByArtist => ("", "{t}.artist_key, {t}.name_key, {t}.id"),
            AlbumSort::Random => ("", "random()"),
            AlbumSort::ByYear { from, to } if from <= to => (
                " AND s.year BETWEEN $4 AND $5",
                "{t}.year, {t}.name_key, {t}.id",
            ),
            AlbumSort::ByYear { .. } => (
                " AND s.year BETWEEN $5 AND $4",
                "{t}.year DESC, {t}.name_key, {t}.id",
            ),
        };
        let (inner, outer) = (order.replace("{t}", "s"), order.replace("{t}", "a"));
        let sql = if sort == AlbumSort::Random {
            // Every album is drawn from anyway: no index to skip in.
            format!(
                "SELECT {ALBUM_COLUMNS} FROM (
                     SELECT * FROM music s WHERE s.kind = 'album' AND s.user_id = $1
                     ORDER BY random() LIMIT $2 OFFSET $3) a
                 {FIRST_TRACK}"
            )
        } else {
            format!(
                "SELECT {ALBUM_COLUMNS} FROM music a {FIRST_TRACK}
                 WHERE a.key IN (
                     SELECT $1::uuid::text || '/al/' || s.id FROM music s
                     WHERE s.kind = 'album' AND s.user_id = $1{condition}
                     ORDER BY {inner} LIMIT $2 OFFSET $3)
                 ORDER BY {outer}"
            )
        };
        let mut query = sqlx::query_as(&sql).bind(user_id).bind(limit).bind(offset);
        if let AlbumSort::ByYear { from, to } = sort {
            query = query.bind(from).bind(to);
        }
        query.fetch_all(pool).await
    }

    /// How many albums `user_id`'s library has.
    pub async fn count(pool: &sqlx::PgPool, user_id: Uuid) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM music WHERE kind = 'album' AND user_id = $1")
            .bind(user_id)
            .fetch_one(pool)
            .await
    }

    /// The album and its tracks in order (as added), or `None` when `user_id`'s library
    /// has no such album.
    pub async fn get(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        album_id: &str,
    ) -> Result<Option<(Album, Vec<Track>)>, sqlx::Error> {
        let album: Option<Album> = sqlx::query_as(&format!(
            "SELECT {ALBUM_COLUMNS} FROM music a {FIRST_TRACK}
             WHERE a.key = $1 AND a.kind = 'album'"
        ))
        .bind(crate::music::Music::album_key(user_id, album_id))
        .fetch_optional(pool)
        .await?;
        let Some(album) = album else {
            return Ok(None);
        };
        let tracks = super::tracks::of_album(pool, user_id, album_id).await?;
        Ok(Some((album, tracks)))
    }
}

pub mod tracks {
    use super::*;

    /// The track in `user_id`'s library, with the owner's details.
    pub async fn get(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        track_id: &str,
    ) -> Result<Option<Track>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {TRACK_COLUMNS} FROM music WHERE key = $1 AND kind = 'entry'"
        ))
        .bind(crate::music::Music::entry_key(user_id, track_id))
        .fetch_optional(pool)
        .await
    }

    /// An album's tracks in order: as they were added, then by id.
    pub async fn of_album(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        album_id: &str,
    ) -> Result<Vec<Track>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {TRACK_COLUMNS} FROM music
             WHERE kind = 'entry' AND user_id = $1 AND album_id = $2
             ORDER BY added_at, id"
        ))
        .bind(user_id)
        .bind(album_id)
        .fetch_all(pool)
        .await
    }

    /// The tracks an artist is one of the artists of, by title.
    pub async fn of_artist(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        artist_id: &str,
    ) -> Result<Vec<Track>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {TRACK_COLUMNS} FROM music
             WHERE kind = 'entry' AND user_id = $1 AND artist_ids @> ARRAY[$2::text]
             ORDER BY name_key, id"
        ))
        .bind(user_id)
        .bind(artist_id)
        .fetch_all(pool)
        .await
    }

    /// `user_id`'s tracks by title, `limit` from `offset` (a full sync pages through
    /// them).
    pub async fn page(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Track>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {TRACK_COLUMNS} FROM music WHERE key IN (
                 SELECT $1::uuid::text || '/t/' || id FROM music
                 WHERE kind = 'entry' AND user_id = $1
                 ORDER BY name_key, id LIMIT $2 OFFSET $3)
             ORDER BY name_key, id"
        ))
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
    }

    /// Up to `limit` of `user_id`'s tracks at random.
    pub async fn random(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        limit: i64,
    ) -> Result<Vec<Track>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {TRACK_COLUMNS} FROM music WHERE kind = 'entry' AND user_id = $1
             ORDER BY random() LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit)
        .fetch_all(pool)
        .await
    }

    /// The tracks of `track_ids` in `user_id`'s library, in the order asked (a track
    /// asked twice is answered twice); ids not in the library are left out.
    pub async fn many(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        track_ids: &[String],
    ) -> Result<Vec<Track>, sqlx::Error> {
        let keys: Vec<String> = track_ids
            .iter()
            .map(|t| crate::music::Music::entry_key(user_id, t))
            .collect();
        let found: Vec<Track> = sqlx::query_as(&format!(
            "SELECT {TRACK_COLUMNS} FROM music WHERE key = ANY($1) AND kind = 'entry'"
        ))
        .bind(&keys)
        .fetch_all(pool)
        .await?;
        let by_id: std::collections::HashMap<&str, &Track> =
            found.iter().map(|t| (t.track_id.as_str(), t)).collect();
        Ok(track_ids
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).map(|t| (*t).clone()))
            .collect())
    }
}
