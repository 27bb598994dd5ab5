//! `play_queues`: each user's saved play queue (issue 19, ADR 28), the latest of their
//! `PlayQueueSaved` events. Every save is its own aggregate, so the row's key (the user)
//! comes from the event's payload. A save older than the row's (`saved_at`, the edge's
//! clock) changes nothing: a command redelivered late cannot bring back an old queue.
//! Equal times keep the later one in relay order, the same live and in a rebuild.

use std::collections::HashMap;

use jukebox_domain::PlayQueueEvent;
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runtime::{text_array, Projection};

pub struct PlayQueues;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlayQueueRow {
    pub user_id: Uuid,
    pub save_id: Uuid,
    pub track_ids: Vec<String>,
    pub current_track: Option<String>,
    pub position_ms: i64,
    pub client: String,
    pub saved_at: OffsetDateTime,
}

fn saved(event: &EventRecord) -> Option<jukebox_domain::SavedQueue> {
    match event.decode::<PlayQueueEvent>().ok()? {
        PlayQueueEvent::PlayQueueSaved(queue) => Some(queue),
    }
}

impl Projection for PlayQueues {
    const USER_COLUMN: Option<&'static str> = Some("user_id");
    const NAME: &'static str = "play_queues";
    const AGGREGATES: &'static [&'static str] = &[jukebox_domain::play_queue::AGGREGATE_TYPE];
    const TABLE: &'static str = "play_queues";
    const KEY_COLUMN: &'static str = "user_id";
    const KEY_TYPE: &'static str = "uuid";
    const COLUMNS: &'static [&'static str] = &[
        "user_id",
        "save_id",
        "track_ids",
        "current_track",
        "position_ms",
        "client",
        "saved_at",
    ];
    type Row = PlayQueueRow;

    fn key(row: &Self::Row) -> String {
        row.user_id.to_string()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        saved(event)
            .map(|queue| vec![queue.user_id.to_string()])
            .unwrap_or_default()
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let Some(queue) = saved(event) else {
            return;
        };
        let Ok(save_id) = event.aggregate_id.parse() else {
            return;
        };
        let key = queue.user_id.to_string();
        if rows
            .get(&key)
            .is_some_and(|row| row.saved_at > queue.saved_at)
        {
            return;
        }
        rows.insert(
            key,
            PlayQueueRow {
                user_id: queue.user_id,
                save_id,
                track_ids: queue.track_ids.iter().map(|t| t.to_string()).collect(),
                current_track: queue.current_track.map(|t| t.to_string()),
                position_ms: i64::try_from(queue.position_ms).unwrap_or(i64::MAX),
                client: queue.client,
                saved_at: queue.saved_at,
            },
        );
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        vec![
            Some(row.user_id.to_string()),
            Some(row.save_id.to_string()),
            Some(text_array(&row.track_ids)),
            row.current_track.clone(),
            Some(row.position_ms.to_string()),
            Some(row.client.clone()),
            Some(row.saved_at.format(&Rfc3339).expect("timestamps format")),
        ]
    }
}

/// The user's saved queue, if they ever saved one.
pub async fn get(pool: &sqlx::PgPool, user_id: Uuid) -> Result<Option<PlayQueueRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {} FROM play_queues WHERE user_id = $1",
        PlayQueues::COLUMNS.join(", ")
    ))
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use jukebox_domain::{SavedQueue, TrackId};
    use time::Duration;

    use super::*;
    use crate::given::Log;

    fn user(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn save(owner: u128, tracks: &[&str], current: Option<&str>, at: i64) -> PlayQueueEvent {
        PlayQueueEvent::PlayQueueSaved(SavedQueue {
            user_id: user(owner),
            track_ids: tracks.iter().map(|t| TrackId::parse(t).unwrap()).collect(),
            current_track: current.map(|t| TrackId::parse(t).unwrap()),
            position_ms: 42_000,
            client: "Jukebox web".into(),
            saved_at: Log::time(0) + Duration::seconds(at),
        })
    }

    const TYPE: &str = jukebox_domain::play_queue::AGGREGATE_TYPE;

    #[test]
    fn each_user_keeps_their_latest_save() {
        let (a, b, c) = (
            Uuid::from_u128(11),
            Uuid::from_u128(12),
            Uuid::from_u128(13),
        );
        let rows = Log::new()
            .event(TYPE, a, save(1, &["yt:a1", "yt:a2"], Some("yt:a2"), 1))
            .event(TYPE, b, save(2, &["yt:b1"], Some("yt:b1"), 2))
            .event(
                TYPE,
                c,
                save(1, &["yt:c1", "yt:a\"\\{,}"], Some("yt:c1"), 3),
            )
            .rows::<PlayQueues>();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let first = &rows[&user(1).to_string()];
        assert_eq!(
            first,
            &PlayQueueRow {
                user_id: user(1),
                save_id: c,
                track_ids: vec!["yt:c1".into(), "yt:a\"\\{,}".into()],
                current_track: Some("yt:c1".into()),
                position_ms: 42_000,
                client: "Jukebox web".into(),
                saved_at: Log::time(0) + Duration::seconds(3),
            }
        );
        assert_eq!(rows[&user(2).to_string()].save_id, b);
        assert_eq!(text_array(&first.track_ids), r#"{"yt:c1","yt:a\"\\{,}"}"#);
    }

    #[test]
    fn an_empty_save_clears_the_queue_but_keeps_the_row() {
        let rows = Log::new()
            .event(
                TYPE,
                Uuid::from_u128(21),
                save(1, &["yt:a1"], Some("yt:a1"), 1),
            )
            .event(TYPE, Uuid::from_u128(22), save(1, &[], None, 2))
            .rows::<PlayQueues>();
        let row = &rows[&user(1).to_string()];
        assert!(row.track_ids.is_empty());
        assert_eq!(row.current_track, None);
        assert_eq!(row.save_id, Uuid::from_u128(22));
    }

    #[test]
    fn an_older_save_committed_later_changes_nothing_and_a_tie_takes_the_later() {
        let rows = Log::new()
            .event(
                TYPE,
                Uuid::from_u128(31),
                save(1, &["yt:new"], Some("yt:new"), 10),
            )
            .event(
                TYPE,
                Uuid::from_u128(32),
                save(1, &["yt:old"], Some("yt:old"), 5),
            )
            .rows::<PlayQueues>();
        assert_eq!(rows[&user(1).to_string()].save_id, Uuid::from_u128(31));
        let rows = Log::new()
            .event(
                TYPE,
                Uuid::from_u128(41),
                save(1, &["yt:x"], Some("yt:x"), 10),
            )
            .event(
                TYPE,
                Uuid::from_u128(42),
                save(1, &["yt:y"], Some("yt:y"), 10),
            )
            .rows::<PlayQueues>();
        assert_eq!(rows[&user(1).to_string()].save_id, Uuid::from_u128(42));
    }

    #[test]
    fn a_save_under_an_id_that_is_not_a_uuid_is_ignored() {
        let rows = Log::new()
            .event(TYPE, "not-a-uuid", save(1, &["yt:a1"], Some("yt:a1"), 1))
            .rows::<PlayQueues>();
        assert!(rows.is_empty(), "{rows:?}");
    }
}
