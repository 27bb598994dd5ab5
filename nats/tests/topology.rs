//! The topology against a real NATS server (`TEST_NATS_URL`), each test in a namespace
//! of its own: a durable consumer that exists takes a new release's filters and keeps
//! its delivery position (no `nats consumer rm` at an upgrade). One filter subject here:
//! several on one consumer (the mailer's) need NATS 2.10, and a test server may be older.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use jukebox_nats::{Namespace, Topology};

async fn setup() -> (jetstream::Context, Topology) {
    let url = std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = async_nats::connect(url)
        .await
        .expect("NATS at TEST_NATS_URL");
    let js = jetstream::new(client);
    let namespace = Namespace::new(&format!("tp{}", uuid::Uuid::new_v4().simple())).unwrap();
    let topology = Topology::new(namespace);
    topology.ensure_streams(&js).await.unwrap();
    (js, topology)
}

#[tokio::test]
async fn a_consumer_that_exists_takes_new_filters_and_keeps_its_position() {
    let (js, topology) = setup().await;
    let ns = topology.namespace.clone();
    let stream = ns.events_stream();
    let config = |filter: &str| consumer::pull::Config {
        durable_name: Some("mailer".into()),
        filter_subject: ns.subject(filter),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        ..Default::default()
    };
    for subject in [
        "evt.user.a.SignedUp",
        "evt.user.b.SignedUp",
        "evt.user.a.PasswordResetRequested",
        "evt.user.c.SignedUp",
    ] {
        js.publish(ns.subject(subject), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // The release before: the consumer takes sign-ups only. It acks the first two.
    let old = topology
        .pull_consumer(&js, &stream, config("evt.user.*.SignedUp"))
        .await
        .unwrap();
    let mut messages = old.fetch().max_messages(2).messages().await.unwrap();
    while let Some(message) = messages.next().await {
        message.unwrap().double_ack().await.unwrap();
    }
    let mut old = old;
    let before = old.info().await.unwrap().clone();
    assert_eq!(before.delivered.stream_sequence, 2);
    assert_eq!(before.ack_floor.stream_sequence, 2);

    // The new release takes every user event: the same consumer, a new filter.
    let mut new = topology
        .pull_consumer(&js, &stream, config("evt.user.>"))
        .await
        .unwrap();
    let info = new.info().await.unwrap().clone();
    assert_eq!(info.config.filter_subject, ns.subject("evt.user.>"));
    assert_eq!(info.config.durable_name.as_deref(), Some("mailer"));
    assert_eq!(
        info.created, before.created,
        "the same consumer, not a new one"
    );
    assert_eq!(info.delivered.stream_sequence, 2);
    assert_eq!(info.ack_floor.stream_sequence, 2);
    // It carries on after its position, through the new filter.
    let mut messages = new.fetch().max_messages(2).messages().await.unwrap();
    let mut subjects = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        subjects.push(message.subject.to_string());
        message.double_ack().await.unwrap();
    }
    assert_eq!(
        subjects,
        [
            ns.subject("evt.user.a.PasswordResetRequested"),
            ns.subject("evt.user.c.SignedUp")
        ]
    );

    // Setting up again with the same config changes nothing.
    let mut again = topology
        .pull_consumer(&js, &stream, config("evt.user.>"))
        .await
        .unwrap();
    assert_eq!(again.info().await.unwrap().ack_floor.stream_sequence, 4);
    topology.delete_streams(&js).await;
}

#[tokio::test]
async fn events_gets_its_max_age_and_an_existing_stream_is_brought_to_it() {
    let (js, topology) = setup().await;
    let name = topology.namespace.events_stream();
    let config = |js: &jetstream::Context| {
        let (js, name) = (js.clone(), name.clone());
        async move {
            js.get_stream(&name)
                .await
                .unwrap()
                .get_info()
                .await
                .unwrap()
        }
    };
    let info = config(&js).await;
    assert_eq!(info.config.max_age, jukebox_nats::DEFAULT_EVENTS_MAX_AGE);
    assert_eq!(info.config.max_age, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(info.config.duplicate_window, Duration::from_secs(300));
    js.publish(
        topology.namespace.subject("evt.user.a.SignedUp"),
        "{}".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    // A stream made before the retention (keeps everything) takes it at the next start,
    // messages and all; so does a changed EVENTS_MAX_AGE_SECS.
    let keep_all = Topology {
        events_max_age: Duration::ZERO,
        ..topology.clone()
    };
    keep_all.ensure_streams(&js).await.unwrap();
    assert_eq!(config(&js).await.config.max_age, Duration::ZERO);
    let week = Topology {
        events_max_age: Duration::from_secs(7 * 24 * 3600),
        ..topology.clone()
    };
    week.ensure_streams(&js).await.unwrap();
    let info = config(&js).await;
    assert_eq!(info.config.max_age, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(info.state.messages, 1);
    // COMMANDS keeps no age limit: a command waits for the processor however long.
    let commands = js
        .get_stream(topology.namespace.commands_stream())
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(commands.config.max_age, Duration::ZERO);
    topology.delete_streams(&js).await;
}
