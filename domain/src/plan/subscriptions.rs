//! The plans of the subscription commands (issue 20, ADR 40). Subscribe, pause, resume
//! and unsubscribe are one step on the `Subscription`. A check records itself on the
//! `Subscription` first (the event is the audit trail, and decides what is new and what
//! the first check's cap passes over); then the entries it imports go through the
//! collection import's plan on the user's `CollectionImport` of the same URL, so they
//! land in the same playlist, each track once.

use super::{apply, collections, finished, only, Issued, Next, Report, State};
use crate::collection;
use crate::command::{Command, CommandError, ErrorCode};
use crate::subscription::{CheckResult, SubscriptionCommand};

pub(super) fn next(command: &Command, issued: Issued, done: &[Report]) -> Next {
    let at = issued.at;
    match command {
        Command::Subscribe {
            subscription_id,
            user_id,
            url,
            latest,
        } => only(
            done,
            subscription_id.clone(),
            SubscriptionCommand::Subscribe {
                user_id: *user_id,
                url: url.clone(),
                latest: *latest,
                at,
            },
        ),
        Command::PauseSubscription {
            subscription_id,
            user_id,
        } => only(
            done,
            subscription_id.clone(),
            SubscriptionCommand::Pause { by: *user_id, at },
        ),
        Command::ResumeSubscription {
            subscription_id,
            user_id,
        } => only(
            done,
            subscription_id.clone(),
            SubscriptionCommand::Resume { by: *user_id, at },
        ),
        Command::Unsubscribe {
            subscription_id,
            user_id,
        } => only(
            done,
            subscription_id.clone(),
            SubscriptionCommand::Unsubscribe { by: *user_id, at },
        ),
        Command::CheckSubscription {
            subscription_id,
            user_id,
            expected_version,
            result,
        } => check(
            subscription_id,
            *user_id,
            *expected_version,
            result,
            at,
            done,
        ),
        _ => Next::Finish(Err(CommandError::new(
            ErrorCode::UnknownSubscription,
            "not a subscription command",
        ))),
    }
}

fn check(
    subscription_id: &str,
    user_id: uuid::Uuid,
    expected_version: u64,
    result: &CheckResult,
    at: time::OffsetDateTime,
    done: &[Report],
) -> Next {
    let [first, rest @ ..] = done else {
        // A failed check is all one step; a listed one goes on to import.
        let last = matches!(result, CheckResult::Failed { .. });
        return apply(
            subscription_id,
            SubscriptionCommand::Check {
                user_id,
                expected_version,
                at,
                result: result.clone(),
            },
            last,
        );
    };
    let Report::Applied {
        state: State::Subscription(subscription),
        ..
    } = first
    else {
        return finished(done);
    };
    let (
        CheckResult::Listed {
            skipped,
            listed,
            capped,
            ..
        },
        Some(batch_id),
    ) = (result, subscription.last_batch())
    else {
        return finished(done);
    };
    if subscription.last_imported().is_empty() {
        return Next::Finish(Ok(()));
    }
    let import = Command::ImportCollection {
        collection_id: subscription_id.to_owned(),
        batch_id,
        user_id,
        url: subscription.url().to_owned(),
        title: subscription
            .title()
            .unwrap_or(subscription.url())
            .to_owned(),
        playlist_id: collection::playlist_id(subscription_id),
        entries: subscription.last_imported().to_vec(),
        skipped: skipped.clone(),
        listed: *listed,
        capped: *capped,
    };
    collections::next(&import, rest)
}
