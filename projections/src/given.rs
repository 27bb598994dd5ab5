//! Given events, then rows: a read model's fold run in memory, for the unit tests beside
//! each projection (no database). `live` applies each event as the runtime does (it loads
//! only the rows `keys` names and writes back only those), `rebuilt` as a rebuild does
//! (every row in memory); `rows` insists the two agree and returns the table. A
//! `UserErased` forgets the user's rows in both, as the runtime and a rebuild do.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

use cqrs_es::DomainEvent;
use jukebox_nats::EventRecord;
use time::{Duration, OffsetDateTime};

use crate::runtime::{erasure, forget_user, takes, Projection};

/// A log of events in relay order.
#[derive(Default)]
pub struct Log {
    events: Vec<EventRecord>,
}

impl Log {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `event` to the aggregate `aggregate_type`/`aggregate_id`, recorded at
    /// `Log::time(n)` for the n-th event of the log.
    pub fn event<E: DomainEvent>(
        mut self,
        aggregate_type: &str,
        aggregate_id: impl Display,
        event: E,
    ) -> Self {
        let aggregate_id = aggregate_id.to_string();
        let n = self.events.len() + 1;
        let sequence = self
            .events
            .iter()
            .filter(|e| e.aggregate_type == aggregate_type && e.aggregate_id == aggregate_id)
            .count()
            + 1;
        self.events.push(EventRecord {
            global_position: n as i64,
            transaction_id: n.to_string(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id,
            sequence: sequence as i64,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_value(&event).expect("events serialize"),
            metadata: serde_json::json!({}),
            recorded_at: Self::time(n),
        });
        self
    }

    /// The events, in relay order.
    pub fn records(&self) -> &[EventRecord] {
        &self.events
    }

    /// When the n-th event (from 1) was recorded.
    pub fn time(n: usize) -> OffsetDateTime {
        time::macros::datetime!(2026-01-01 00:00 UTC) + Duration::minutes(n as i64)
    }

    /// The table after the live runtime applied every event, one at a time.
    pub fn live<P: Projection>(&self) -> BTreeMap<String, P::Row> {
        let mut table = BTreeMap::new();
        for event in self.events.iter().filter(|e| takes::<P>(e)) {
            // The runtime deletes an erased user's rows in SQL, where the erasure stands.
            if let Some(user) = erasure::<P>(event) {
                let mut rows: HashMap<String, P::Row> =
                    std::mem::take(&mut table).into_iter().collect();
                forget_user::<P>(&mut rows, user);
                table = rows.into_iter().collect();
                continue;
            }
            let mut touched = P::keys(event);
            touched.sort();
            touched.dedup();
            let mut rows: HashMap<String, P::Row> = touched
                .iter()
                .filter_map(|k| table.get(k).map(|row: &P::Row| (k.clone(), row.clone())))
                .collect();
            for key in P::more_keys(&rows, event) {
                if !touched.contains(&key) {
                    if let Some(row) = table.get(&key) {
                        rows.insert(key.clone(), row.clone());
                    }
                    touched.push(key);
                }
            }
            P::apply(&mut rows, event);
            for key in touched {
                match rows.remove(&key) {
                    Some(row) => {
                        assert_eq!(P::key(&row), key, "a row is stored under its own key");
                        table.insert(key, row);
                    }
                    None => {
                        table.remove(&key);
                    }
                }
            }
        }
        table
    }

    /// The table a rebuild makes: every event folded over all rows in memory.
    pub fn rebuilt<P: Projection>(&self) -> BTreeMap<String, P::Row> {
        let mut rows = HashMap::new();
        for event in &self.events {
            if let Some(user) = erasure::<P>(event) {
                forget_user::<P>(&mut rows, user);
            } else if P::consumes(event) {
                P::apply(&mut rows, event);
            }
        }
        rows.into_iter().collect()
    }

    /// The rows, the same live and rebuilt.
    pub fn rows<P: Projection>(&self) -> BTreeMap<String, P::Row> {
        let live = self.live::<P>();
        assert_eq!(
            live,
            self.rebuilt::<P>(),
            "the live fold and a rebuild agree"
        );
        live
    }
}
