use jukebox_domain::collection::CollectionEntry;
use jukebox_domain::{SourceRef, TrackId};
use time::Duration;

use super::*;
use crate::given::Log;

const URL: &str = "http://127.0.0.1:9/feed.xml";

fn id(n: u128) -> String {
    format!("{}/0123456789abcdef0123456789abcdef", Uuid::from_u128(n))
}

fn subscribed(n: u128, latest: Option<u32>) -> SubscriptionEvent {
    SubscriptionEvent::Subscribed {
        user_id: Uuid::from_u128(n),
        url: URL.into(),
        latest,
        at: Log::time(0),
    }
}

fn entry(n: u32) -> CollectionEntry {
    let url = format!("http://127.0.0.1:9/t{n}.mp3");
    CollectionEntry {
        track_id: TrackId::of_direct_link(&url),
        source: SourceRef::url(&url).unwrap(),
        title: None,
    }
}

fn checked(check: u32, imported: Vec<CollectionEntry>) -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionChecked {
        check,
        at: Log::time(10),
        title: "Tones".into(),
        found: 5,
        new: 3,
        skipped: 1,
        batch_id: Uuid::from_u128(9),
        imported,
        passed_over: vec![entry(9).track_id],
        next_check_at: Log::time(10) + Duration::hours(6),
    }
}

fn failed(check: u32, failures: u32) -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionCheckFailed {
        check,
        at: Log::time(20),
        rate_limited: true,
        reason: "HTTP Error 429: Too Many Requests".into(),
        failures,
        retry_at: Log::time(20) + Duration::minutes(15),
    }
}

#[test]
fn a_subscription_is_due_at_once_and_a_check_sets_its_figures_and_next_time() {
    let rows = Log::new()
        .event(AGGREGATE_TYPE, id(1), subscribed(1, Some(2)))
        .rows::<Subscriptions>();
    let row = &rows[&id(1)];
    assert_eq!(
        (row.status.as_str(), row.version, row.next_check_at),
        ("active", 1, Some(Log::time(0)))
    );
    assert_eq!(row.latest, Some(2));
    let rows = Log::new()
        .event(AGGREGATE_TYPE, id(1), subscribed(1, Some(2)))
        .event(AGGREGATE_TYPE, id(1), checked(1, vec![entry(1), entry(2)]))
        .rows::<Subscriptions>();
    assert_eq!(
        rows[&id(1)],
        SubscriptionRow {
            id: id(1),
            user_id: Uuid::from_u128(1),
            url: URL.into(),
            title: Some("Tones".into()),
            status: "active".into(),
            latest: Some(2),
            subscribed_at: Log::time(0),
            version: 2,
            checks: 1,
            last_checked_at: Some(Log::time(10)),
            next_check_at: Some(Log::time(10) + Duration::hours(6)),
            failures: 0,
            rate_limited: false,
            reason: None,
            retry_at: None,
            last_found: 5,
            last_new: 3,
            last_imported: 2,
            last_skipped: 1,
            imported_total: 2,
        }
    );
}

#[test]
fn a_failed_check_backs_off_until_retry_at_and_a_good_one_clears_it() {
    let log = Log::new()
        .event(AGGREGATE_TYPE, id(1), subscribed(1, None))
        .event(AGGREGATE_TYPE, id(1), checked(1, vec![entry(1)]))
        .event(AGGREGATE_TYPE, id(1), failed(2, 1));
    let row = &log.rows::<Subscriptions>()[&id(1)];
    let retry_at = Log::time(20) + Duration::minutes(15);
    assert_eq!(
        (
            row.failures,
            row.rate_limited,
            row.retry_at,
            row.next_check_at
        ),
        (1, true, Some(retry_at), Some(retry_at))
    );
    assert_eq!(
        row.reason.as_deref(),
        Some("HTTP Error 429: Too Many Requests")
    );
    let rows = log
        .event(AGGREGATE_TYPE, id(1), checked(3, vec![entry(2)]))
        .rows::<Subscriptions>();
    let row = &rows[&id(1)];
    assert_eq!(
        (row.failures, row.rate_limited, row.reason.clone()),
        (0, false, None)
    );
    assert_eq!((row.checks, row.imported_total, row.version), (3, 2, 4));
}

#[test]
fn pause_and_resume_keep_a_running_backoff_and_unsubscribe_removes_the_row() {
    let log = Log::new()
        .event(AGGREGATE_TYPE, id(1), subscribed(1, None))
        .event(AGGREGATE_TYPE, id(2), subscribed(2, None))
        .event(AGGREGATE_TYPE, id(1), failed(1, 1))
        .event(
            AGGREGATE_TYPE,
            id(1),
            SubscriptionEvent::SubscriptionPaused { at: Log::time(21) },
        );
    assert_eq!(log.rows::<Subscriptions>()[&id(1)].status, "paused");
    let log = log.event(
        AGGREGATE_TYPE,
        id(1),
        SubscriptionEvent::SubscriptionResumed { at: Log::time(22) },
    );
    let row = &log.rows::<Subscriptions>()[&id(1)];
    assert_eq!(row.status, "active");
    assert_eq!(
        row.next_check_at,
        Some(Log::time(20) + Duration::minutes(15))
    );
    let rows = log
        .event(
            AGGREGATE_TYPE,
            id(1),
            SubscriptionEvent::Unsubscribed { at: Log::time(23) },
        )
        .rows::<Subscriptions>();
    assert_eq!(rows.keys().collect::<Vec<_>>(), vec![&id(2)]);
}

#[test]
fn subscribing_again_after_unsubscribing_starts_a_fresh_row() {
    let rows = Log::new()
        .event(AGGREGATE_TYPE, id(1), subscribed(1, None))
        .event(AGGREGATE_TYPE, id(1), checked(1, vec![entry(1)]))
        .event(
            AGGREGATE_TYPE,
            id(1),
            SubscriptionEvent::Unsubscribed { at: Log::time(23) },
        )
        .event(AGGREGATE_TYPE, id(1), subscribed(1, Some(1)))
        .rows::<Subscriptions>();
    let row = &rows[&id(1)];
    assert_eq!(
        (row.version, row.checks, row.imported_total, row.latest),
        (4, 0, 0, Some(1))
    );
}
