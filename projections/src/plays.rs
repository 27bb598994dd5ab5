//! `plays`: per user and track, how many plays and the last one (issue 19, ADR 26), keyed
//! `<user>/<track_id>`. Each `PlayRecorded` is one play (its `play` aggregate took a retry
//! already). Album figures are the sums over the album's tracks in the library, read with
//! `music` (a correction that moves a track to another album moves its plays with it).

use std::collections::HashMap;

use jukebox_domain::PlayEvent;
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::music::queries::{Album, Track, ALBUM_COLUMNS, FIRST_TRACK, TRACK_COLUMNS};
use crate::runtime::Projection;

pub struct Plays;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlayRow {
    pub key: String,
    pub user_id: Uuid,
    pub track_id: String,
    pub play_count: i64,
    pub last_played: OffsetDateTime,
}

impl Plays {
    pub fn key(user_id: Uuid, track_id: &str) -> String {
        format!("{user_id}/{track_id}")
    }
}

impl Projection for Plays {
    const USER_COLUMN: Option<&'static str> = Some("user_id");
    const NAME: &'static str = "plays";
    const AGGREGATES: &'static [&'static str] = &[jukebox_domain::play::AGGREGATE_TYPE];
    const TABLE: &'static str = "plays";
    const KEY_COLUMN: &'static str = "key";
    const KEY_TYPE: &'static str = "text";
    const COLUMNS: &'static [&'static str] =
        &["key", "user_id", "track_id", "play_count", "last_played"];
    type Row = PlayRow;

    fn key(row: &Self::Row) -> String {
        row.key.clone()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        match event.decode::<PlayEvent>() {
            Ok(PlayEvent::PlayRecorded {
                user_id, track_id, ..
            }) => vec![Self::key(user_id, track_id.as_str())],
            Err(_) => Vec::new(),
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let Ok(PlayEvent::PlayRecorded {
            user_id,
            track_id,
            played_at,
        }) = event.decode::<PlayEvent>()
        else {
            return;
        };
        let key = Self::key(user_id, track_id.as_str());
        let row = rows.entry(key.clone()).or_insert_with(|| PlayRow {
            key,
            user_id,
            track_id: track_id.as_str().to_owned(),
            play_count: 0,
            last_played: played_at,
        });
        row.play_count += 1;
        // Plays may be sent late (a phone offline): the last is the latest time, not the
        // latest event.
        row.last_played = row.last_played.max(played_at);
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        vec![
            Some(row.key.clone()),
            Some(row.user_id.to_string()),
            Some(row.track_id.clone()),
            Some(row.play_count.to_string()),
            Some(row.last_played.format(&Rfc3339).expect("timestamps format")),
        ]
    }
}

/// How often and when last something was played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Played {
    pub play_count: i64,
    pub last_played: OffsetDateTime,
}

/// The plays of these tracks of `user_id`'s; tracks never played are absent.
pub async fn of_tracks(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    track_ids: &[String],
) -> Result<HashMap<String, Played>, sqlx::Error> {
    if track_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64, OffsetDateTime)> = sqlx::query_as(
        "SELECT track_id, play_count, last_played FROM plays
         WHERE user_id = $1 AND track_id = ANY($2)",
    )
    .bind(user_id)
    .bind(track_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, play_count, last_played)| {
            (
                id,
                Played {
                    play_count,
                    last_played,
                },
            )
        })
        .collect())
}

/// A track's star and plays, as `marks_of_tracks` reads them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrackMarks {
    pub id: String,
    pub starred_at: Option<OffsetDateTime>,
    pub play_count: Option<i64>,
    pub last_played: Option<OffsetDateTime>,
}

/// The stars and plays of these tracks of `user_id`'s in one statement (a page of the
/// library reads them beside its own); tracks neither starred nor played are absent.
pub async fn marks_of_tracks(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    track_ids: &[String],
) -> Result<Vec<TrackMarks>, sqlx::Error> {
    if track_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT t.id, f.starred_at, p.play_count, p.last_played FROM unnest($2::text[]) t(id)
         LEFT JOIN favourites f ON f.key = $1::uuid::text || '/track:' || t.id
         LEFT JOIN plays p ON p.key = $1::uuid::text || '/' || t.id
         WHERE f.key IS NOT NULL OR p.key IS NOT NULL",
    )
    .bind(user_id)
    .bind(track_ids)
    .fetch_all(pool)
    .await
}

/// The plays of these albums (sums over their tracks in `user_id`'s library).
pub async fn of_albums(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    album_ids: &[String],
) -> Result<HashMap<String, Played>, sqlx::Error> {
    if album_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64, OffsetDateTime)> = sqlx::query_as(
        "SELECT m.album_id, sum(p.play_count)::bigint, max(p.last_played) FROM music m
         JOIN plays p ON p.key = $1::uuid::text || '/' || m.id
         WHERE m.kind = 'entry' AND m.user_id = $1 AND m.album_id = ANY($2)
         GROUP BY m.album_id",
    )
    .bind(user_id)
    .bind(album_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, play_count, last_played)| {
            (
                id,
                Played {
                    play_count,
                    last_played,
                },
            )
        })
        .collect())
}

/// A played track of the library with its plays.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlayedTrack {
    #[sqlx(flatten)]
    pub track: Track,
    #[sqlx(flatten)]
    pub played: Played,
}

/// Which plays come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayOrder {
    /// Last played first.
    Recent,
    /// Most played first (then last played first).
    Frequent,
}

impl PlayOrder {
    fn sql(self) -> &'static str {
        match self {
            Self::Recent => "last_played DESC",
            Self::Frequent => "play_count DESC, last_played DESC",
        }
    }
}

/// `user_id`'s played tracks still in the library, in `order`.
pub async fn tracks(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    order: PlayOrder,
    limit: i64,
    offset: i64,
) -> Result<Vec<PlayedTrack>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TRACK_COLUMNS}, p.play_count, p.last_played FROM plays p
         JOIN music ON music.key = $1::uuid::text || '/t/' || p.track_id
         WHERE p.user_id = $1
         ORDER BY p.{}, p.track_id LIMIT $2 OFFSET $3",
        order.sql().replace(", ", ", p.")
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// `user_id`'s albums with a played track, in `order` of the album's plays.
pub async fn albums(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    order: PlayOrder,
    limit: i64,
    offset: i64,
) -> Result<Vec<Album>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ALBUM_COLUMNS} FROM (
             SELECT m.album_id, sum(p.play_count) AS play_count, max(p.last_played) AS last_played
             FROM plays p JOIN music m ON m.key = $1::uuid::text || '/t/' || p.track_id
             WHERE p.user_id = $1 GROUP BY m.album_id) s
         JOIN music a ON a.key = $1::uuid::text || '/al/' || s.album_id {FIRST_TRACK}
         ORDER BY s.{}, a.id LIMIT $2 OFFSET $3",
        order.sql().replace(", ", ", s.")
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given::Log;
    use jukebox_domain::TrackId;

    #[test]
    fn each_play_counts_once_and_the_latest_time_is_the_last() {
        let user = Uuid::from_u128(1);
        let other = Uuid::from_u128(2);
        let a = TrackId::parse("yt:aaaaaaaaaaa").unwrap();
        let b = TrackId::parse("yt:bbbbbbbbbbb").unwrap();
        let play = |user_id, track_id: &TrackId, n| {
            (
                jukebox_domain::play::id(user_id, track_id, Log::time(n)),
                PlayEvent::PlayRecorded {
                    user_id,
                    track_id: track_id.clone(),
                    played_at: Log::time(n),
                },
            )
        };
        let mut log = Log::new();
        // The third play of `a` arrives late, with an earlier time.
        for (user_id, track, n) in [
            (user, &a, 5),
            (user, &a, 9),
            (user, &a, 2),
            (user, &b, 3),
            (other, &a, 4),
        ] {
            let (id, event) = play(user_id, track, n);
            log = log.event("play", id, event);
        }
        let rows = log.rows::<Plays>();
        let summary: Vec<(String, i64, OffsetDateTime)> = rows
            .values()
            .map(|r| (r.key.clone(), r.play_count, r.last_played))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Plays::key(user, "yt:aaaaaaaaaaa"), 3, Log::time(9)),
                (Plays::key(user, "yt:bbbbbbbbbbb"), 1, Log::time(3)),
                (Plays::key(other, "yt:aaaaaaaaaaa"), 1, Log::time(4)),
            ]
        );
    }
}
