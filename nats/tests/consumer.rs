//! The consumer runtime against a real NATS server (`TEST_NATS_URL`), each test on a
//! stream of its own: how messages are settled, redeliveries counted, batches kept in
//! order, and what a fail point or a shutdown leaves unacked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{self, PullConsumer};
use async_nats::jetstream::{self, stream, Message};
use jukebox_nats::{
    BatchError, BatchHandler, ConsumerError, ConsumerRuntime, FailPointFired, FailPoints, InHand,
    MessageHandler, Namespace, Redeliveries, Settle,
};
use tokio_util::sync::CancellationToken;

/// Short, so a message a dead consumer held comes back soon.
const ACK_WAIT: Duration = Duration::from_secs(1);

struct TestStream {
    js: jetstream::Context,
    name: String,
    subject: String,
}

impl TestStream {
    async fn new(ack_policy: consumer::AckPolicy, ack_wait: Duration) -> (Self, PullConsumer) {
        let url = std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        let client = async_nats::connect(url)
            .await
            .expect("NATS at TEST_NATS_URL");
        let js = jetstream::new(client);
        let namespace = Namespace::new(&format!("rt{}", uuid::Uuid::new_v4().simple())).unwrap();
        let name = namespace.stream("RUNTIME");
        let subject = namespace.subject("runtime");
        js.create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .unwrap();
        let stream = Self { js, name, subject };
        let config = consumer::pull::Config {
            durable_name: Some("test".into()),
            ack_policy,
            ack_wait,
            ..Default::default()
        };
        let consumer = stream
            .js
            .get_stream(&stream.name)
            .await
            .unwrap()
            .get_or_create_consumer("test", config)
            .await
            .unwrap();
        (stream, consumer)
    }

    async fn publish(&self, payloads: &[&str]) {
        for payload in payloads {
            self.js
                .publish(self.subject.clone(), payload.to_string().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }

    /// (messages not yet delivered, delivered and not acked, the ack floor's sequence).
    async fn state(&self, consumer: &mut PullConsumer) -> (u64, usize, u64) {
        let info = consumer.info().await.unwrap();
        (
            info.num_pending,
            info.num_ack_pending,
            info.ack_floor.stream_sequence,
        )
    }

    async fn delete(self) {
        self.js.delete_stream(&self.name).await.unwrap();
    }
}

/// Settles each message as its payload says; `retry-once` asks for a retry the first time.
#[derive(Default)]
struct ByPayload {
    seen: Mutex<HashMap<String, u32>>,
}

impl ByPayload {
    fn seen(&self, payload: &str) -> u32 {
        self.seen.lock().unwrap().get(payload).copied().unwrap_or(0)
    }
}

impl MessageHandler for ByPayload {
    async fn handle(&self, message: &Message) -> Result<Settle, FailPointFired> {
        let payload = std::str::from_utf8(&message.payload).unwrap().to_owned();
        let times = {
            let mut seen = self.seen.lock().unwrap();
            let times = seen.entry(payload.clone()).or_default();
            *times += 1;
            *times
        };
        Ok(match payload.as_str() {
            "retry-once" if times == 1 => Settle::Retry(Duration::from_millis(50)),
            "unreadable" => Settle::Term,
            "hang" => std::future::pending().await,
            _ => Settle::Ack,
        })
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test]
async fn messages_are_acked_retried_or_terminated_as_their_handler_says() {
    let (stream, mut consumer) = TestStream::new(consumer::AckPolicy::Explicit, ACK_WAIT).await;
    stream
        .publish(&["a", "retry-once", "unreadable", "b"])
        .await;
    let handler = Arc::new(ByPayload::default());
    let runtime = ConsumerRuntime::new("test", "test");
    let shutdown = CancellationToken::new();
    let running = {
        let (runtime, consumer, shutdown, handler) = (
            runtime.clone(),
            consumer.clone(),
            shutdown.clone(),
            handler.clone(),
        );
        tokio::spawn(async move {
            runtime
                .each(&consumer, 4, InHand::Finish, &shutdown, &*handler)
                .await
        })
    };
    eventually("the retried message comes back", async || {
        handler.seen("retry-once") == 2
    })
    .await;
    eventually("every message is settled", async || {
        stream.state(&mut consumer).await == (0, 0, 4)
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    // Terminated and acked messages never come back; the nak'd one came back once.
    assert_eq!(
        ["a", "retry-once", "unreadable", "b"].map(|p| handler.seen(p)),
        [1, 2, 1, 1]
    );
    assert_eq!(runtime.redeliveries.get("test"), 1);
    stream.delete().await;
}

#[tokio::test]
async fn a_consumer_that_dies_before_an_ack_gets_the_message_again() {
    let (stream, mut consumer) = TestStream::new(consumer::AckPolicy::Explicit, ACK_WAIT).await;
    stream.publish(&["a"]).await;
    let handler = ByPayload::default();
    let redeliveries = Redeliveries::default();
    let fail_points = FailPoints::armed();
    fail_points.arm("test.before_ack", 1);
    let doomed = ConsumerRuntime::new("test", "test").with(&fail_points, &redeliveries);
    let shutdown = CancellationToken::new();
    let died = doomed
        .each(&consumer, 1, InHand::Finish, &shutdown, &handler)
        .await;
    assert!(
        matches!(&died, Err(ConsumerError::Died { fired, .. }) if fired.0 == "test.before_ack"),
        "{died:?}"
    );
    assert_eq!(stream.state(&mut consumer).await, (0, 1, 0));

    let survivor = ConsumerRuntime::new("test", "test").with(&FailPoints::default(), &redeliveries);
    let running = tokio::spawn({
        let (consumer, shutdown) = (consumer.clone(), shutdown.clone());
        async move {
            let handler = ByPayload::default();
            survivor
                .each(&consumer, 1, InHand::Finish, &shutdown, &handler)
                .await
        }
    });
    eventually("the redelivered message is acked", async || {
        stream.state(&mut consumer).await == (0, 0, 1)
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(handler.seen("a"), 1);
    assert_eq!(redeliveries.get("test"), 1);
    stream.delete().await;
}

#[tokio::test]
async fn a_shutdown_abandons_work_in_hand_unacked() {
    let (stream, mut consumer) = TestStream::new(consumer::AckPolicy::Explicit, ACK_WAIT).await;
    stream.publish(&["hang"]).await;
    let handler = Arc::new(ByPayload::default());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (consumer, shutdown, handler) = (consumer.clone(), shutdown.clone(), handler.clone());
        async move {
            ConsumerRuntime::new("test", "test")
                .each(&consumer, 1, InHand::Abandon, &shutdown, &*handler)
                .await
        }
    });
    eventually("the message is in hand", async || handler.seen("hang") == 1).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the consumer stops without finishing the message")
        .unwrap()
        .unwrap();
    assert_eq!(stream.state(&mut consumer).await, (0, 1, 0));
    stream.delete().await;
}

/// Records the batches it is given; fails the first `failures` attempts.
#[derive(Default)]
struct Batches {
    applied: Mutex<Vec<Vec<String>>>,
    attempts: Mutex<u32>,
    failures: u32,
}

impl BatchHandler for Batches {
    async fn apply(&self, messages: &[Message]) -> Result<(), BatchError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            *attempts += 1;
            *attempts
        };
        if attempt <= self.failures {
            return Err(BatchError::Retry(anyhow::anyhow!("the database is away")));
        }
        let payloads = messages
            .iter()
            .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
            .collect();
        self.applied.lock().unwrap().push(payloads);
        Ok(())
    }
}

/// Runs the batch runtime on `consumer` with `handler` until the token is cancelled.
fn run_batches(
    consumer: &PullConsumer,
    batch_size: usize,
    handler: &Arc<Batches>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), ConsumerError>>,
) {
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (consumer, shutdown, handler) = (consumer.clone(), shutdown.clone(), handler.clone());
        async move {
            ConsumerRuntime::new("test", "test")
                .batches(&consumer, batch_size, &shutdown, &*handler)
                .await
        }
    });
    (shutdown, running)
}

#[tokio::test]
async fn a_failed_batch_is_applied_again_then_acked_by_its_last_message() {
    // Longer than the retries, so the batch is not also redelivered meanwhile.
    let ack_wait = Duration::from_secs(30);
    let (stream, mut consumer) = TestStream::new(consumer::AckPolicy::All, ack_wait).await;
    stream.publish(&["1", "2", "3"]).await;
    let handler = Arc::new(Batches {
        failures: 2,
        ..Default::default()
    });
    let (shutdown, running) = run_batches(&consumer, 10, &handler);
    eventually("the batch is acked", async || {
        stream.state(&mut consumer).await == (0, 0, 3)
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let applied: Vec<String> = handler.applied.lock().unwrap().concat();
    assert_eq!(applied, ["1", "2", "3"]);
    assert_eq!(
        *handler.attempts.lock().unwrap() as usize,
        2 + handler.applied.lock().unwrap().len()
    );
    stream.delete().await;
}

/// While a batch is retried (Postgres away) past `ack_wait`, JetStream delivers the
/// messages in hand again, newer ones included: a later batch would hold two copies of a
/// message. The handler gets each stream sequence once per batch.
#[tokio::test]
async fn a_message_redelivered_while_a_batch_is_retried_comes_once_per_batch() {
    let ack_wait = Duration::from_millis(500);
    let (stream, mut consumer) = TestStream::new(consumer::AckPolicy::All, ack_wait).await;
    stream.publish(&["1", "2"]).await;
    // Retried every 500 ms: about 2.5 s, five ack waits.
    let handler = Arc::new(Batches {
        failures: 5,
        ..Default::default()
    });
    let (shutdown, running) = run_batches(&consumer, 100, &handler);
    eventually("the first batch is being retried", async || {
        *handler.attempts.lock().unwrap() >= 1
    })
    .await;
    // Delivered to the client behind the stuck batch, then again after `ack_wait`.
    stream.publish(&["3", "4"]).await;
    eventually("everything is acked", async || {
        stream.state(&mut consumer).await == (0, 0, 4)
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let batches = handler.applied.lock().unwrap().clone();
    assert_eq!(batches[0], ["1", "2"]);
    assert!(
        batches.len() > 1,
        "3 and 4 came in a later batch: {batches:?}"
    );
    for batch in &batches {
        let mut once = batch.clone();
        once.dedup();
        assert_eq!(batch, &once, "a message twice in one batch: {batches:?}");
    }
    let mut applied: Vec<String> = batches.concat();
    applied.sort();
    applied.dedup();
    assert_eq!(applied, ["1", "2", "3", "4"]);
    stream.delete().await;
}

#[tokio::test]
async fn a_batch_consumer_that_dies_before_its_ack_leaves_the_batch_unacked() {
    let (stream, mut consumer) = TestStream::new(consumer::AckPolicy::All, ACK_WAIT).await;
    stream.publish(&["1", "2"]).await;
    let fail_points = FailPoints::armed();
    fail_points.arm("projector.before_ack", 1);
    let handler = Batches::default();
    let died = ConsumerRuntime::new("projector", "test")
        .with(&fail_points, &Redeliveries::default())
        .batches(&consumer, 10, &CancellationToken::new(), &handler)
        .await;
    assert!(
        matches!(&died, Err(ConsumerError::Died { fired, .. }) if fired.0 == "projector.before_ack"),
        "{died:?}"
    );
    let (_, in_hand, floor) = stream.state(&mut consumer).await;
    assert_eq!(floor, 0);
    assert!(in_hand >= 1, "{in_hand} unacked");
    assert!(!handler.applied.lock().unwrap().is_empty());
    stream.delete().await;
}

/// Issue 21 (ADR 37): messages that aged out of the stream (`max_age`) while the consumer
/// was away are never redelivered. JetStream moves the consumer's ack floor past them,
/// so the batch runtime (which waits for a hole after its ack floor to be redelivered)
/// goes on with the next message instead of waiting forever.
#[tokio::test]
async fn a_hole_the_stream_aged_out_is_passed_not_waited_for() {
    let url = std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let namespace = Namespace::new(&format!("rt{}", uuid::Uuid::new_v4().simple())).unwrap();
    let (name, subject) = (namespace.stream("AGING"), namespace.subject("aging"));
    let max_age = Duration::from_secs(2);
    let aging = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::Memory,
            max_age,
            duplicate_window: max_age,
            ..Default::default()
        })
        .await
        .unwrap();
    let stream = TestStream {
        js: js.clone(),
        name,
        subject,
    };
    let config = consumer::pull::Config {
        durable_name: Some("test".into()),
        ack_policy: consumer::AckPolicy::All,
        ack_wait: Duration::from_secs(60),
        ..Default::default()
    };
    let consumer = aging.create_consumer(config.clone()).await.unwrap();
    stream.publish(&["1", "2", "3"]).await;
    // A consumer that applied "1", then died holding "2" and "3" unacked.
    let mut batch = consumer.fetch().max_messages(3).messages().await.unwrap();
    let mut held = Vec::new();
    while let Some(message) = futures::StreamExt::next(&mut batch).await {
        held.push(message.unwrap());
    }
    assert_eq!(held.len(), 3);
    held[0].ack().await.unwrap();
    eventually("2 and 3 age out", async || {
        aging.get_info().await.unwrap().state.messages == 0
    })
    .await;
    stream.publish(&["4"]).await;

    let handler = Arc::new(Batches::default());
    let consumer = aging.create_consumer(config).await.unwrap();
    let (shutdown, running) = run_batches(&consumer, 10, &handler);
    eventually("4 is applied", async || {
        handler.applied.lock().unwrap().concat() == ["4"]
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    stream.delete().await;
}
