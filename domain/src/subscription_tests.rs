use cqrs_es::test::TestFramework;
use time::macros::datetime;

use super::*;
use crate::media::SourceRef;

type Framework = TestFramework<Subscription>;

const URL: &str = "http://127.0.0.1:9/feed.xml";
const T0: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

fn entry(n: u32) -> CollectionEntry {
    let url = format!("http://127.0.0.1:9/t{n}.mp3");
    CollectionEntry {
        track_id: TrackId::of_direct_link(&url),
        source: SourceRef::url(&url).unwrap(),
        title: Some(format!("Tone {n}")),
    }
}

fn user() -> Uuid {
    Uuid::from_u128(1)
}

fn subscribed(latest: Option<u32>) -> SubscriptionEvent {
    SubscriptionEvent::Subscribed {
        user_id: user(),
        url: URL.into(),
        latest,
        at: T0,
    }
}

fn listed(entries: Vec<CollectionEntry>) -> CheckResult {
    CheckResult::Listed {
        batch_id: Uuid::from_u128(9),
        title: "Tones".into(),
        entries,
        skipped: Vec::new(),
        listed: 0,
        capped: false,
        next_check_at: T0 + Duration::hours(6),
    }
}

fn check(version: u64, result: CheckResult) -> SubscriptionCommand {
    SubscriptionCommand::Check {
        user_id: user(),
        expected_version: version,
        at: T0,
        result,
    }
}

fn checked(
    check: u32,
    found: u32,
    new: u32,
    imported: Vec<CollectionEntry>,
    passed_over: Vec<CollectionEntry>,
) -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionChecked {
        check,
        at: T0,
        title: "Tones".into(),
        found,
        new,
        skipped: 0,
        batch_id: Uuid::from_u128(9),
        imported,
        passed_over: passed_over.into_iter().map(|e| e.track_id).collect(),
        next_check_at: T0 + Duration::hours(6),
    }
}

fn failed(rate_limited: bool) -> CheckResult {
    CheckResult::Failed {
        rate_limited,
        reason: "HTTP Error 429: Too Many Requests".into(),
        backoff_base_s: 60,
        backoff_max_s: 300,
    }
}

#[test]
fn the_first_check_imports_only_the_latest_n_and_later_checks_only_new_entries() {
    Framework::with(())
        .given(vec![subscribed(Some(2))])
        .when(check(1, listed(vec![entry(3), entry(2), entry(1)])))
        .then_expect_events(vec![checked(
            1,
            3,
            3,
            vec![entry(3), entry(2)],
            vec![entry(1)],
        )]);
    // Entry 1 was passed over by the cap: seen, never imported later.
    Framework::with(())
        .given(vec![
            subscribed(Some(2)),
            checked(1, 3, 3, vec![entry(3), entry(2)], vec![entry(1)]),
        ])
        .when(check(
            2,
            listed(vec![entry(4), entry(3), entry(2), entry(1), entry(4)]),
        ))
        .then_expect_events(vec![checked(2, 5, 1, vec![entry(4)], vec![])]);
}

#[test]
fn a_check_claimed_at_an_older_version_or_while_paused_is_refused() {
    Framework::with(())
        .given(vec![subscribed(None)])
        .when(check(0, listed(vec![entry(1)])))
        .then_expect_error(SubscriptionError::StaleCheck);
    Framework::with(())
        .given(vec![
            subscribed(None),
            SubscriptionEvent::SubscriptionPaused { at: T0 },
        ])
        .when(check(2, listed(vec![entry(1)])))
        .then_expect_error(SubscriptionError::Paused);
    Framework::with(())
        .given(vec![
            subscribed(None),
            SubscriptionEvent::Unsubscribed { at: T0 },
        ])
        .when(check(2, listed(vec![entry(1)])))
        .then_expect_error(SubscriptionError::Unknown);
}

#[test]
fn failures_back_off_exponentially_up_to_the_cap_and_a_good_check_resets_them() {
    let fail = |check: u32, failures: u32, after: i64| SubscriptionEvent::SubscriptionCheckFailed {
        check,
        at: T0,
        rate_limited: true,
        reason: "HTTP Error 429: Too Many Requests".into(),
        failures,
        retry_at: T0 + Duration::seconds(after),
    };
    Framework::with(())
        .given(vec![subscribed(None)])
        .when(check(1, failed(true)))
        .then_expect_events(vec![fail(1, 1, 60)]);
    Framework::with(())
        .given(vec![subscribed(None), fail(1, 1, 60)])
        .when(check(2, failed(true)))
        .then_expect_events(vec![fail(2, 2, 120)]);
    Framework::with(())
        .given(vec![
            subscribed(None),
            fail(1, 1, 60),
            fail(2, 2, 120),
            fail(3, 3, 240),
        ])
        .when(check(4, failed(true)))
        .then_expect_events(vec![fail(4, 4, 300)]);
    Framework::with(())
        .given(vec![
            subscribed(None),
            fail(1, 1, 60),
            checked(2, 0, 0, vec![], vec![]),
        ])
        .when(check(3, failed(true)))
        .then_expect_events(vec![fail(3, 1, 60)]);
    assert_eq!(backoff(40, 60, 86_400), Duration::seconds(86_400));
}

#[test]
fn pause_resume_and_unsubscribe_belong_to_the_owner() {
    let stranger = Uuid::from_u128(2);
    Framework::with(())
        .given(vec![subscribed(None)])
        .when(SubscriptionCommand::Pause { by: user(), at: T0 })
        .then_expect_events(vec![SubscriptionEvent::SubscriptionPaused { at: T0 }]);
    Framework::with(())
        .given(vec![subscribed(None)])
        .when(SubscriptionCommand::Pause {
            by: stranger,
            at: T0,
        })
        .then_expect_error(SubscriptionError::Unknown);
    Framework::with(())
        .given(vec![subscribed(None)])
        .when(SubscriptionCommand::Resume { by: user(), at: T0 })
        .then_expect_error(SubscriptionError::NotPaused);
    Framework::with(())
        .given(vec![
            subscribed(None),
            SubscriptionEvent::SubscriptionPaused { at: T0 },
        ])
        .when(SubscriptionCommand::Resume { by: user(), at: T0 })
        .then_expect_events(vec![SubscriptionEvent::SubscriptionResumed { at: T0 }]);
    Framework::with(())
        .given(vec![subscribed(None)])
        .when(SubscriptionCommand::Unsubscribe { by: user(), at: T0 })
        .then_expect_events(vec![SubscriptionEvent::Unsubscribed { at: T0 }]);
    Framework::with(())
        .given_no_previous_events()
        .when(SubscriptionCommand::Unsubscribe { by: user(), at: T0 })
        .then_expect_error(SubscriptionError::Unknown);
}

#[test]
fn subscribing_twice_is_refused_and_after_unsubscribing_starts_over() {
    let subscribe = |latest| SubscriptionCommand::Subscribe {
        user_id: user(),
        url: URL.into(),
        latest,
        at: T0,
    };
    Framework::with(())
        .given(vec![subscribed(None)])
        .when(subscribe(None))
        .then_expect_error(SubscriptionError::AlreadySubscribed);
    Framework::with(())
        .given_no_previous_events()
        .when(subscribe(Some(0)))
        .then_expect_error(SubscriptionError::InvalidLatest);
    Framework::with(())
        .given(vec![
            subscribed(None),
            SubscriptionEvent::Unsubscribed { at: T0 },
        ])
        .when(subscribe(Some(1)))
        .then_expect_events(vec![subscribed(Some(1))]);
    // Re-subscribed, the first check is capped again, and entries seen before stay seen.
    Framework::with(())
        .given(vec![
            subscribed(None),
            checked(1, 1, 1, vec![entry(1)], vec![]),
            SubscriptionEvent::Unsubscribed { at: T0 },
            subscribed(Some(1)),
        ])
        .when(check(4, listed(vec![entry(3), entry(2), entry(1)])))
        .then_expect_events(vec![checked(2, 3, 2, vec![entry(3)], vec![entry(2)])]);
}
