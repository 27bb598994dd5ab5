//! What the user did with an item, shown wherever it appears (issue 19): starred (when),
//! how often played and when last. Read per answer for the items in it, from the
//! `favourites` and `plays` read models; a route that shows them waits for both too.

use std::collections::HashMap;

use jukebox_projections::{favourites, plays};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::fresh::models;
use jukebox_projections::ReadModel;

/// The read models marks come from, for a route's wait.
pub const MODELS: [ReadModel; 2] = [models::FAVOURITES, models::PLAYS];

/// An item's marks, as answered beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Marks {
    /// RFC 3339, when I starred it; null when not starred.
    pub starred: Option<String>,
    /// How often I played it (an album: its tracks).
    pub play_count: i64,
    /// RFC 3339, my last play of it; null when never played.
    pub last_played: Option<String>,
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The marks of a set of items, read at once.
#[derive(Debug, Default)]
pub struct MarkSet {
    pub starred: HashMap<String, OffsetDateTime>,
    pub played: HashMap<String, plays::Played>,
}

impl MarkSet {
    /// The marks of these tracks.
    pub async fn tracks(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        ids: &[String],
    ) -> Result<Self, sqlx::Error> {
        let mut set = Self::default();
        for marks in plays::marks_of_tracks(pool, user_id, ids).await? {
            if let Some(at) = marks.starred_at {
                set.starred.insert(marks.id.clone(), at);
            }
            if let (Some(play_count), Some(last_played)) = (marks.play_count, marks.last_played) {
                let played = plays::Played {
                    play_count,
                    last_played,
                };
                set.played.insert(marks.id, played);
            }
        }
        Ok(set)
    }

    /// The marks of a page of `GET /library`, read with it.
    pub fn of_page(page: &jukebox_projections::library::Page) -> Self {
        let mut set = Self::default();
        for entry in &page.entries {
            if let Some(at) = entry.starred_at {
                set.starred.insert(entry.track_id.clone(), at);
            }
            if let (Some(play_count), Some(last_played)) = (entry.play_count, entry.last_played) {
                let played = plays::Played {
                    play_count,
                    last_played,
                };
                set.played.insert(entry.track_id.clone(), played);
            }
        }
        set
    }

    /// The marks of these albums (their plays are their tracks').
    pub async fn albums(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        ids: &[String],
    ) -> Result<Self, sqlx::Error> {
        Ok(Self {
            starred: favourites::starred_at(pool, user_id, ids).await?,
            played: plays::of_albums(pool, user_id, ids).await?,
        })
    }

    /// The marks of these artists (starred only).
    pub async fn artists(
        pool: &sqlx::PgPool,
        user_id: Uuid,
        ids: &[String],
    ) -> Result<Self, sqlx::Error> {
        Ok(Self {
            starred: favourites::starred_at(pool, user_id, ids).await?,
            played: HashMap::new(),
        })
    }

    /// Both sets in one (ids of tracks, albums and artists never collide: ADR 23).
    pub fn merge(mut self, other: Self) -> Self {
        self.starred.extend(other.starred);
        self.played.extend(other.played);
        self
    }

    pub fn of(&self, id: &str) -> Marks {
        let played = self.played.get(id);
        Marks {
            starred: self.starred.get(id).copied().map(rfc3339),
            play_count: played.map_or(0, |p| p.play_count),
            last_played: played.map(|p| rfc3339(p.last_played)),
        }
    }
}
