//! `Favourite`: one starred item of one user (id `<user_id>/<kind>:<item_id>`, ADR 26), so
//! starring costs the same with 10,000 favourites as with none, and two clients starring
//! one item race on this one aggregate. Starring a starred item and unstarring one that is
//! not starred change nothing: Subsonic clients send both freely.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::media::TrackId;

/// The aggregate type, for readers of the log without `cqrs_es`.
pub const AGGREGATE_TYPE: &str = "favourite";

/// What can be starred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FavouriteKind {
    Track,
    Album,
    Artist,
}

impl FavouriteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Album => "album",
            Self::Artist => "artist",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "track" => Some(Self::Track),
            "album" => Some(Self::Album),
            "artist" => Some(Self::Artist),
            _ => None,
        }
    }
}

/// A starrable item: a track id, or an album's or artist's UUID (ADR 23).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FavouriteItem {
    pub kind: FavouriteKind,
    pub item_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FavouriteError {
    #[error("a track id looks like `yt:<video id>`; an album or artist id is a UUID")]
    InvalidItem,
}

impl FavouriteItem {
    /// Parses an item id of `kind`: a track id, or a UUID (written lower-case).
    pub fn parse(kind: FavouriteKind, raw: &str) -> Result<Self, FavouriteError> {
        let item_id = match kind {
            FavouriteKind::Track => TrackId::parse(raw)
                .map_err(|_| FavouriteError::InvalidItem)?
                .as_str()
                .to_owned(),
            FavouriteKind::Album | FavouriteKind::Artist => Uuid::try_parse(raw)
                .map_err(|_| FavouriteError::InvalidItem)?
                .to_string(),
        };
        Ok(Self { kind, item_id })
    }

    /// The aggregate id of this item among `user_id`'s favourites.
    pub fn aggregate_id(&self, user_id: Uuid) -> String {
        format!("{user_id}/{}:{}", self.kind.as_str(), self.item_id)
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Favourite {
    #[serde(with = "time::serde::rfc3339::option")]
    starred_at: Option<OffsetDateTime>,
}

impl Favourite {
    pub fn starred(&self) -> bool {
        self.starred_at.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FavouriteCommand {
    Star {
        user_id: Uuid,
        item: FavouriteItem,
        at: OffsetDateTime,
    },
    Unstar {
        user_id: Uuid,
        item: FavouriteItem,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FavouriteEvent {
    ItemStarred {
        user_id: Uuid,
        item: FavouriteItem,
        #[serde(with = "time::serde::rfc3339")]
        starred_at: OffsetDateTime,
    },
    ItemUnstarred {
        user_id: Uuid,
        item: FavouriteItem,
    },
}

impl FavouriteEvent {
    /// Whose favourite, and which item.
    pub fn item(&self) -> (Uuid, &FavouriteItem) {
        match self {
            Self::ItemStarred { user_id, item, .. } | Self::ItemUnstarred { user_id, item } => {
                (*user_id, item)
            }
        }
    }
}

impl DomainEvent for FavouriteEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ItemStarred { .. } => "ItemStarred".into(),
            Self::ItemUnstarred { .. } => "ItemUnstarred".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for Favourite {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = FavouriteCommand;
    type Event = FavouriteEvent;
    type Error = FavouriteError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            FavouriteCommand::Star { .. } if self.starred() => return Ok(()),
            FavouriteCommand::Star { user_id, item, at } => FavouriteEvent::ItemStarred {
                user_id,
                item,
                starred_at: at,
            },
            FavouriteCommand::Unstar { .. } if !self.starred() => return Ok(()),
            FavouriteCommand::Unstar { user_id, item } => {
                FavouriteEvent::ItemUnstarred { user_id, item }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.starred_at = match event {
            FavouriteEvent::ItemStarred { starred_at, .. } => Some(starred_at),
            FavouriteEvent::ItemUnstarred { .. } => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<Favourite>;

    #[test]
    fn an_item_is_starred_once_and_unstarred_once() {
        let user_id = Uuid::now_v7();
        let item = FavouriteItem::parse(FavouriteKind::Track, "yt:dQw4w9WgXcQ").unwrap();
        let at = time::macros::datetime!(2026-01-01 00:00 UTC);
        let star = FavouriteCommand::Star {
            user_id,
            item: item.clone(),
            at,
        };
        let starred = FavouriteEvent::ItemStarred {
            user_id,
            item: item.clone(),
            starred_at: at,
        };
        let unstar = FavouriteCommand::Unstar {
            user_id,
            item: item.clone(),
        };
        let unstarred = FavouriteEvent::ItemUnstarred { user_id, item };
        Framework::with(())
            .given_no_previous_events()
            .when(star.clone())
            .then_expect_events(vec![starred.clone()]);
        Framework::with(())
            .given(vec![starred.clone()])
            .when(star.clone())
            .then_expect_events(vec![]);
        Framework::with(())
            .given(vec![starred.clone()])
            .when(unstar.clone())
            .then_expect_events(vec![unstarred.clone()]);
        Framework::with(())
            .given(vec![starred.clone(), unstarred.clone()])
            .when(unstar.clone())
            .then_expect_events(vec![]);
        Framework::with(())
            .given_no_previous_events()
            .when(unstar)
            .then_expect_events(vec![]);
        Framework::with(())
            .given(vec![starred.clone(), unstarred])
            .when(star)
            .then_expect_events(vec![starred]);
    }

    #[test]
    fn items_are_parsed_by_kind() {
        let user = Uuid::from_u128(1);
        let album =
            FavouriteItem::parse(FavouriteKind::Album, "6F9619FF-8B86-D011-B42D-00C04FC964FF")
                .unwrap();
        assert_eq!(album.item_id, "6f9619ff-8b86-d011-b42d-00c04fc964ff");
        assert_eq!(
            album.aggregate_id(user),
            format!("{user}/album:6f9619ff-8b86-d011-b42d-00c04fc964ff")
        );
        assert!(FavouriteItem::parse(FavouriteKind::Artist, "yt:dQw4w9WgXcQ").is_err());
        assert!(FavouriteItem::parse(FavouriteKind::Track, "nope").is_err());
        assert_eq!(FavouriteKind::parse("album"), Some(FavouriteKind::Album));
        assert_eq!(FavouriteKind::parse("song"), None);
    }
}
