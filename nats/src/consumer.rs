//! The one loop every durable consumer runs (processor, mail reactor, downloader,
//! projectors): pull, count redeliveries, hand each message (or batch) to the role,
//! settle it (ack, nak with a delay, term), stop on shutdown, and "die" when a fail point
//! fires, leaving what it holds unacked for JetStream to redeliver.
//!
//! A role only says what one message means ([`MessageHandler`]) or how a batch is applied
//! ([`BatchHandler`]); what happens around it is the same for all of them.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, PullConsumer};
use async_nats::jetstream::{AckKind, Message};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, error, warn, Instrument};

use crate::failpoint::{FailPointFired, FailPoints};
use crate::metrics::Redeliveries;

/// What to do with a message its handler is done with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Done: acked (after the `<role>.before_ack` fail point).
    Ack,
    /// Not now: nak'd, redelivered after the delay.
    Retry(Duration),
    /// Never: nobody can handle it (an unreadable message); terminated.
    Term,
}

/// A role's handling of one message. It may ack progress (`AckKind::Progress`) while it
/// works; the runtime settles the message with what it returns. `Err` means a fail point
/// fired: the consumer dies and the message stays unacked.
pub trait MessageHandler: Sync {
    fn handle(
        &self,
        message: &Message,
    ) -> impl Future<Output = Result<Settle, FailPointFired>> + Send;
}

/// Why a batch was not applied.
#[derive(Debug)]
pub enum BatchError {
    /// The consumer dies; the batch stays unacked.
    FailPoint(FailPointFired),
    /// Applied again after a pause, until it succeeds or the consumer stops.
    Retry(anyhow::Error),
}

impl From<FailPointFired> for BatchError {
    fn from(fired: FailPointFired) -> Self {
        Self::FailPoint(fired)
    }
}

/// A role's handling of a batch: messages in stream order without a hole, each stream
/// sequence once, some of which may repeat ones applied before (the handler skips those,
/// e.g. by a checkpoint). When it succeeds the runtime acks the batch's last message,
/// which acks them all (`AckPolicy::All`).
pub trait BatchHandler: Sync {
    fn apply(&self, messages: &[Message]) -> impl Future<Output = Result<(), BatchError>> + Send;
}

/// What happens to messages in hand when the consumer stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InHand {
    /// They are finished and settled (short work: a command, a mail).
    Finish,
    /// They are dropped unacked and redelivered later (long work: a download). A fail point
    /// firing drops them too.
    Abandon,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("{consumer}: could not pull messages: {reason}")]
    Pull { consumer: String, reason: String },
    #[error("{consumer}: its message stream ended")]
    Closed { consumer: String },
    #[error("{consumer} died at a fail point: {fired}")]
    Died {
        consumer: String,
        fired: FailPointFired,
    },
}

/// Pause before a failed batch is applied again (the database may be away for a while).
const BATCH_RETRY: Duration = Duration::from_millis(500);

/// One durable consumer's runtime.
#[derive(Clone, Debug)]
pub struct ConsumerRuntime {
    /// The durable consumer's name: the `consumer` label of its redeliveries.
    consumer: String,
    /// `<role>.before_ack`, the fail point just before a message (or batch) is acked.
    before_ack: String,
    pub fail_points: FailPoints,
    pub redeliveries: Redeliveries,
}

impl ConsumerRuntime {
    /// `role` names the fail points (`<role>.before_ack`); `consumer` is the durable name.
    pub fn new(role: &str, consumer: &str) -> Self {
        Self {
            consumer: consumer.to_owned(),
            before_ack: format!("{role}.before_ack"),
            fail_points: FailPoints::default(),
            redeliveries: Redeliveries::default(),
        }
    }

    pub fn with(mut self, fail_points: &FailPoints, redeliveries: &Redeliveries) -> Self {
        self.fail_points = fail_points.clone();
        self.redeliveries = redeliveries.clone();
        self
    }

    /// Hands messages to `handler`, `concurrency` at a time, until `shutdown` or until a
    /// fail point fires (then: `ConsumerError::Died`).
    pub async fn each<H: MessageHandler>(
        &self,
        consumer: &PullConsumer,
        concurrency: usize,
        in_hand: InHand,
        shutdown: &CancellationToken,
        handler: &H,
    ) -> Result<(), ConsumerError> {
        let messages = self.pull(consumer).await?;
        let died = CancellationToken::new();
        let (stop, dead) = (shutdown.clone(), died.clone());
        let fired = std::sync::Mutex::new(None);
        messages
            .take_until(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = dead.cancelled() => {}
                }
            })
            .for_each_concurrent(concurrency.max(1), |message| {
                let (died, fired) = (&died, &fired);
                async move {
                    let message = match message {
                        Ok(message) => message,
                        Err(error) => {
                            warn!(consumer = %self.consumer, %error, "consumer error");
                            return;
                        }
                    };
                    if died.is_cancelled() {
                        return; // as if killed: no ack, JetStream redelivers it
                    }
                    self.redeliveries.observe(&self.consumer, &message);
                    let handled = async {
                        let settle = handler.handle(&message).await?;
                        self.settle(&message, settle).await
                    };
                    let result = match in_hand {
                        InHand::Finish => handled.await,
                        InHand::Abandon => tokio::select! {
                            // Dropped (tools killed, temp files removed) and redelivered
                            // to whoever runs next.
                            _ = shutdown.cancelled() => Ok(()),
                            _ = died.cancelled() => Ok(()),
                            result = handled => result,
                        },
                    };
                    if let Err(point) = result {
                        fired.lock().expect("fired").get_or_insert(point);
                        died.cancel();
                    }
                }
            })
            .await;
        if let Some(fired) = fired.into_inner().expect("fired") {
            return Err(self.died(fired));
        }
        if !shutdown.is_cancelled() {
            return Err(ConsumerError::Closed {
                consumer: self.consumer.clone(),
            });
        }
        Ok(())
    }

    async fn settle(&self, message: &Message, settle: Settle) -> Result<(), FailPointFired> {
        let kind = match settle {
            Settle::Ack => {
                self.fail_points.check(&self.before_ack)?;
                AckKind::Ack
            }
            Settle::Retry(delay) => AckKind::Nak(Some(delay)),
            Settle::Term => AckKind::Term,
        };
        let settled = message
            .ack_with(kind)
            .instrument(debug_span!("consumer.settle", consumer = %self.consumer))
            .await;
        if let Err(error) = settled {
            // Handlers are idempotent: a redelivery finds its work done.
            warn!(consumer = %self.consumer, %error, ?settle, "could not settle a message; it will be redelivered");
        }
        Ok(())
    }

    /// Hands batches of up to `batch_size` messages, in stream order, each stream sequence
    /// once and without a hole, to `handler`; a batch that fails is applied again until it
    /// succeeds (a database outage delays the consumer, it loses nothing). Stops at
    /// `shutdown`, also while retrying, or when a fail point fires.
    pub async fn batches<H: BatchHandler>(
        &self,
        consumer: &PullConsumer,
        batch_size: usize,
        shutdown: &CancellationToken,
        handler: &H,
    ) -> Result<(), ConsumerError> {
        // Everything up to the ack floor was applied: the stream continues after it.
        let mut next = consumer.cached_info().ack_floor.stream_sequence + 1;
        let messages = self.pull(consumer).await?;
        let mut batches = std::pin::pin!(messages.ready_chunks(batch_size.max(1)));
        let mut gap_reported = 0;
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                batch = batches.next() => match batch {
                    Some(batch) => batch,
                    None => return Err(ConsumerError::Closed { consumer: self.consumer.clone() }),
                },
            };
            let mut messages: Vec<Message> = batch
                .into_iter()
                .filter_map(|m| {
                    m.map_err(|error| warn!(consumer = %self.consumer, %error, "consumer error"))
                        .ok()
                })
                .collect();
            for message in &messages {
                self.redeliveries.observe(&self.consumer, message);
            }
            // A message that waited in the client past `ack_wait` (behind a batch retried
            // through a database outage) is delivered again, and both copies can land in
            // one batch: the handler gets each stream sequence once, its latest delivery.
            messages.sort_by_key(|m| (stream_sequence(m), std::cmp::Reverse(deliveries(m))));
            messages.dedup_by_key(|m| stream_sequence(m));
            let kept = contiguous(messages.iter().map(stream_sequence), &mut next);
            if kept < messages.len() && gap_reported != next {
                gap_reported = next;
                warn!(
                    consumer = %self.consumer,
                    expected = next,
                    "messages arrived past a gap in the stream; waiting for the missing ones to be redelivered"
                );
            }
            let messages = &messages[..kept];
            let Some(last) = messages.last() else {
                continue;
            };
            loop {
                match handler.apply(messages).await {
                    Ok(()) => break,
                    Err(BatchError::FailPoint(fired)) => return Err(self.died(fired)),
                    Err(BatchError::Retry(error)) => {
                        warn!(consumer = %self.consumer, error = format!("{error:#}"), "batch failed, retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(BATCH_RETRY) => {}
                        }
                    }
                }
            }
            if let Err(fired) = self.fail_points.check(&self.before_ack) {
                return Err(self.died(fired));
            }
            if let Err(error) = last.ack().await {
                warn!(consumer = %self.consumer, %error, "ack failed; the batch will be redelivered and skipped");
            }
        }
    }

    async fn pull(&self, consumer: &PullConsumer) -> Result<pull::Stream, ConsumerError> {
        let messages = consumer
            .messages()
            .await
            .map_err(|error| ConsumerError::Pull {
                consumer: self.consumer.clone(),
                reason: error.to_string(),
            })?;
        self.redeliveries.watch(&self.consumer);
        Ok(messages)
    }

    fn died(&self, fired: FailPointFired) -> ConsumerError {
        error!(consumer = %self.consumer, %fired, "consumer stopping at fail point");
        ConsumerError::Died {
            consumer: self.consumer.clone(),
            fired,
        }
    }
}

/// How many times JetStream has delivered this message (1: the first time); `None` when
/// its metadata cannot be read.
pub fn delivery_count(message: &Message) -> Option<i64> {
    message.info().ok().map(|info| info.delivered)
}

fn stream_sequence(message: &Message) -> u64 {
    message.info().map_or(0, |info| info.stream_sequence)
}

fn deliveries(message: &Message) -> i64 {
    message.info().map_or(0, |info| info.delivered)
}

/// How many of a batch's messages (by stream sequence) to apply now: those that continue
/// the stream from `next` without a hole (repeats of earlier ones included: the handler
/// skips them), up to the first that comes after a missing one. `next` moves past what is
/// kept.
///
/// JetStream redelivers an unacked message only after `ack_wait`, and meanwhile delivers
/// newer ones: after a consumer dies mid-batch (or a NATS restart loses deliveries in
/// flight) the newer messages would arrive first, move a checkpoint past the missing
/// ones, and the missing ones would be skipped as "already applied" when they come back.
/// The messages after the hole are left unacked, so they come back too, in order.
fn contiguous(sequences: impl Iterator<Item = u64>, next: &mut u64) -> usize {
    let mut kept = 0;
    for sequence in sequences {
        if sequence > *next {
            break;
        }
        if sequence == *next {
            *next += 1;
        }
        kept += 1;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_after_a_hole_wait_for_the_missing_ones() {
        let mut next = 5;
        assert_eq!(contiguous([5, 6, 7].into_iter(), &mut next), 3);
        assert_eq!(next, 8);
        // A redelivered repeat is kept (the handler skips it); 10 comes after a hole.
        assert_eq!(contiguous([6, 8, 9, 11, 12].into_iter(), &mut next), 3);
        assert_eq!(next, 10);
        // Nothing continues the stream: nothing is applied or acked.
        assert_eq!(contiguous([11, 12].into_iter(), &mut next), 0);
        assert_eq!(next, 10);
        assert_eq!(contiguous([10, 11, 12].into_iter(), &mut next), 3);
        assert_eq!(next, 13);
    }
}
