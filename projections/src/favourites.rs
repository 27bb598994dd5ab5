//! `favourites`: one row per item a user starred (issue 19, ADR 26), keyed as its
//! `favourite` aggregate (`<user>/<kind>:<item_id>`); unstarring deletes the row. Lists of
//! starred tracks, albums and artists join `music`, so an item no longer in the library is
//! not listed (its star comes back with it).

use std::collections::HashMap;

use jukebox_domain::FavouriteEvent;
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::music::queries::TRACK_COLUMNS;
use crate::music::queries::{Album, Artist, Track, ALBUM_COLUMNS, ARTIST_COLUMNS, FIRST_TRACK};
use crate::runtime::Projection;

pub struct Favourites;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FavouriteRow {
    pub key: String,
    pub user_id: Uuid,
    /// `track`, `album` or `artist`.
    pub kind: String,
    pub item_id: String,
    pub starred_at: OffsetDateTime,
}

impl Projection for Favourites {
    const USER_COLUMN: Option<&'static str> = Some("user_id");
    const NAME: &'static str = "favourites";
    const AGGREGATES: &'static [&'static str] = &[jukebox_domain::favourite::AGGREGATE_TYPE];
    const TABLE: &'static str = "favourites";
    const KEY_COLUMN: &'static str = "key";
    const KEY_TYPE: &'static str = "text";
    const COLUMNS: &'static [&'static str] = &["key", "user_id", "kind", "item_id", "starred_at"];
    type Row = FavouriteRow;

    fn key(row: &Self::Row) -> String {
        row.key.clone()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        match event.decode::<FavouriteEvent>() {
            Ok(_) => vec![event.aggregate_id.clone()],
            Err(_) => Vec::new(),
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let Ok(decoded) = event.decode::<FavouriteEvent>() else {
            return;
        };
        let key = event.aggregate_id.clone();
        match decoded {
            FavouriteEvent::ItemStarred {
                user_id,
                item,
                starred_at,
            } => {
                rows.insert(
                    key.clone(),
                    FavouriteRow {
                        key,
                        user_id,
                        kind: item.kind.as_str().to_owned(),
                        item_id: item.item_id,
                        starred_at,
                    },
                );
            }
            FavouriteEvent::ItemUnstarred { .. } => {
                rows.remove(&key);
            }
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        vec![
            Some(row.key.clone()),
            Some(row.user_id.to_string()),
            Some(row.kind.clone()),
            Some(row.item_id.clone()),
            Some(row.starred_at.format(&Rfc3339).expect("timestamps format")),
        ]
    }
}

/// When each of these items (tracks, albums or artists, by id) was starred by `user_id`;
/// items not starred are absent.
pub async fn starred_at(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    item_ids: &[String],
) -> Result<HashMap<String, OffsetDateTime>, sqlx::Error> {
    if item_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, OffsetDateTime)> = sqlx::query_as(
        "SELECT item_id, starred_at FROM favourites WHERE user_id = $1 AND item_id = ANY($2)",
    )
    .bind(user_id)
    .bind(item_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A starred track of the library, with when it was starred.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StarredTrack {
    #[sqlx(flatten)]
    pub track: Track,
    pub starred_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StarredAlbum {
    #[sqlx(flatten)]
    pub album: Album,
    pub starred_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StarredArtist {
    #[sqlx(flatten)]
    pub artist: Artist,
    pub starred_at: OffsetDateTime,
}

/// `user_id`'s starred tracks still in the library, last starred first.
pub async fn tracks(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<StarredTrack>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TRACK_COLUMNS}, fav.starred_at FROM favourites fav
         JOIN music ON music.key = $1::uuid::text || '/t/' || fav.item_id
         WHERE fav.user_id = $1 AND fav.kind = 'track'
         ORDER BY fav.starred_at DESC, fav.item_id LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// `user_id`'s starred albums still in the library, last starred first.
pub async fn albums(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<StarredAlbum>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ALBUM_COLUMNS}, fav.starred_at FROM favourites fav
         JOIN music a ON a.key = $1::uuid::text || '/al/' || fav.item_id {FIRST_TRACK}
         WHERE fav.user_id = $1 AND fav.kind = 'album'
         ORDER BY fav.starred_at DESC, fav.item_id LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// `user_id`'s starred artists still in the library, last starred first.
pub async fn artists(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<StarredArtist>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ARTIST_COLUMNS}, fav.starred_at FROM favourites fav
         JOIN music ON music.key = $1::uuid::text || '/ar/' || fav.item_id
         WHERE fav.user_id = $1 AND fav.kind = 'artist'
         ORDER BY fav.starred_at DESC, fav.item_id LIMIT $2 OFFSET $3"
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
    use jukebox_domain::{FavouriteItem, FavouriteKind};

    #[test]
    fn a_star_is_a_row_until_unstarred() {
        let user = Uuid::from_u128(1);
        let track = FavouriteItem::parse(FavouriteKind::Track, "yt:aaaaaaaaaaa").unwrap();
        let album =
            FavouriteItem::parse(FavouriteKind::Album, &Uuid::from_u128(9).to_string()).unwrap();
        let starred = |item: &FavouriteItem, n| FavouriteEvent::ItemStarred {
            user_id: user,
            item: item.clone(),
            starred_at: Log::time(n),
        };
        let log = Log::new()
            .event("favourite", track.aggregate_id(user), starred(&track, 1))
            .event("favourite", album.aggregate_id(user), starred(&album, 2))
            .event(
                "favourite",
                track.aggregate_id(user),
                FavouriteEvent::ItemUnstarred {
                    user_id: user,
                    item: track.clone(),
                },
            )
            .event("favourite", track.aggregate_id(user), starred(&track, 4));
        let rows = log.rows::<Favourites>();
        let summary: Vec<(&str, &str, OffsetDateTime)> = rows
            .values()
            .map(|r| (r.kind.as_str(), r.item_id.as_str(), r.starred_at))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("album", album.item_id.as_str(), Log::time(2)),
                ("track", "yt:aaaaaaaaaaa", Log::time(4)),
            ]
        );
        let unstarred = Log::new()
            .event("favourite", album.aggregate_id(user), starred(&album, 1))
            .event(
                "favourite",
                album.aggregate_id(user),
                FavouriteEvent::ItemUnstarred {
                    user_id: user,
                    item: album.clone(),
                },
            );
        assert!(unstarred.rows::<Favourites>().is_empty());
    }
}
