//! JetStream streams and durable consumers, created idempotently at start.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::names::Namespace;

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("could not create or read stream {stream}: {source}")]
    Stream {
        stream: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("could not change the replicas of stream {stream} from {from} to {to}: {source}")]
    Replicas {
        stream: String,
        from: usize,
        to: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("could not create or read consumer {consumer} on {stream}: {source}")]
    Consumer {
        stream: String,
        consumer: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// How the streams are laid out. `replicas` is 1 on one server, 3 on a cluster.
#[derive(Debug, Clone)]
pub struct Topology {
    pub namespace: Namespace,
    pub replicas: usize,
    /// How long `EVENTS` keeps a message (`EVENTS_MAX_AGE_SECS`; zero keeps them all).
    /// The log in Postgres is the source of truth: a projector behind by more re-feeds
    /// the gap from it (ADR 37).
    pub events_max_age: Duration,
}

const COMMAND_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
const EVENT_DUPLICATE_WINDOW: Duration = Duration::from_secs(300);
/// `EVENTS_MAX_AGE_SECS` unset: 30 days.
pub const DEFAULT_EVENTS_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

impl Topology {
    pub fn new(namespace: Namespace) -> Self {
        Self {
            namespace,
            replicas: 1,
            events_max_age: DEFAULT_EVENTS_MAX_AGE,
        }
    }

    /// Creates `COMMANDS` (work queue) and `EVENTS` (limits, the replayable bus), and
    /// brings an existing stream's replica count to `replicas`. Needs the JetStream API
    /// rights `STREAM.INFO` and, unless the streams are already as configured,
    /// `STREAM.CREATE`/`STREAM.UPDATE` (the admin user's; see infra/nats).
    pub async fn ensure_streams(&self, js: &jetstream::Context) -> Result<(), TopologyError> {
        let ns = &self.namespace;
        let configs = [
            stream::Config {
                name: ns.commands_stream(),
                subjects: vec![ns.subject("cmd.>")],
                retention: stream::RetentionPolicy::WorkQueue,
                duplicate_window: COMMAND_DUPLICATE_WINDOW,
                num_replicas: self.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            },
            stream::Config {
                name: ns.events_stream(),
                subjects: vec![ns.subject("evt.>")],
                retention: stream::RetentionPolicy::Limits,
                max_age: self.events_max_age,
                // JetStream refuses a window longer than the age (a test's short one).
                duplicate_window: if self.events_max_age.is_zero() {
                    EVENT_DUPLICATE_WINDOW
                } else {
                    EVENT_DUPLICATE_WINDOW.min(self.events_max_age)
                },
                num_replicas: self.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            },
        ];
        for config in configs {
            let name = config.name.clone();
            let stream = js.get_or_create_stream(config.clone()).await.map_err(|e| {
                TopologyError::Stream {
                    stream: name.clone(),
                    source: Box::new(e),
                }
            })?;
            let current = stream.cached_info().config.clone();
            if current.max_age != config.max_age
                || current.duplicate_window != config.duplicate_window
            {
                // The retention follows the configuration too (EVENTS_MAX_AGE_SECS).
                let updated = stream::Config {
                    max_age: config.max_age,
                    duplicate_window: config.duplicate_window,
                    ..current.clone()
                };
                js.update_stream(updated)
                    .await
                    .map_err(|e| TopologyError::Stream {
                        stream: name.clone(),
                        source: Box::new(e),
                    })?;
                tracing::info!(stream = %name, max_age = ?config.max_age, "stream retention changed");
            }
            if current.num_replicas != self.replicas {
                // The replica count and the retention follow the configuration; anything
                // else an operator changed with `nats stream edit` stays as it is.
                let replicas = self.replicas;
                let updated = stream::Config {
                    num_replicas: replicas,
                    max_age: config.max_age,
                    duplicate_window: config.duplicate_window,
                    ..current.clone()
                };
                js.update_stream(updated)
                    .await
                    .map_err(|e| TopologyError::Replicas {
                        stream: name.clone(),
                        from: current.num_replicas,
                        to: replicas,
                        source: Box::new(e),
                    })?;
                tracing::info!(stream = %name, from = current.num_replicas, to = replicas, "stream replicas changed");
            }
        }
        Ok(())
    }

    /// The command processor's durable work-queue consumer.
    pub async fn processor_consumer(
        &self,
        js: &jetstream::Context,
        ack_wait: Duration,
    ) -> Result<consumer::PullConsumer, TopologyError> {
        let config = consumer::pull::Config {
            durable_name: Some("processor".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            // A command is never dropped: failures are retried with a delay (nak).
            max_deliver: -1,
            max_ack_pending: 1024,
            ..Default::default()
        };
        self.pull_consumer(js, &self.namespace.commands_stream(), config)
            .await
    }

    /// A projection's durable consumer on `EVENTS`. Acks cover everything before them.
    pub async fn projection_consumer(
        &self,
        js: &jetstream::Context,
        projection: &str,
        ack_wait: Duration,
    ) -> Result<consumer::PullConsumer, TopologyError> {
        let config = consumer::pull::Config {
            durable_name: Some(format!("proj-{projection}")),
            filter_subject: self.namespace.subject("evt.>"),
            ack_policy: consumer::AckPolicy::All,
            ack_wait,
            max_deliver: -1,
            max_ack_pending: 10_000,
            ..Default::default()
        };
        self.pull_consumer(js, &self.namespace.events_stream(), config)
            .await
    }

    /// Removes the per-model projector consumers of releases before ADR 39, which one
    /// consumer (`proj-all`) replaced, so that they do not linger in `nats consumer ls`.
    /// Best effort: one that is not there is what every start after the first finds.
    pub async fn retire_projection_consumers(&self, js: &jetstream::Context, models: &[&str]) {
        let stream = self.namespace.events_stream();
        for model in models {
            let name = format!("proj-{model}");
            match js.delete_consumer_from_stream(&name, &stream).await {
                Ok(_) => tracing::info!(consumer = %name, "retired a per-model projector consumer"),
                Err(error) => tracing::debug!(consumer = %name, %error, "nothing to retire"),
            }
        }
    }

    /// The downloader's durable consumer on `ImportRequested` events. `slots` jobs are in
    /// hand at once (`max_ack_pending`); a job is offered `max_deliver` times in all.
    pub async fn downloader_consumer(
        &self,
        js: &jetstream::Context,
        slots: usize,
        ack_wait: Duration,
        max_deliver: i64,
    ) -> Result<consumer::PullConsumer, TopologyError> {
        let config = consumer::pull::Config {
            durable_name: Some("downloader".into()),
            filter_subject: self.namespace.subject("evt.import.*.ImportRequested"),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_deliver,
            max_ack_pending: slots.max(1) as i64,
            ..Default::default()
        };
        self.pull_consumer(js, &self.namespace.events_stream(), config)
            .await
    }

    /// The mail reactor's durable consumer (`reactor-mail`) on the events it answers
    /// (`subjects`, below `evt.`). One at a time per event, explicitly acked.
    pub async fn reactor_consumer(
        &self,
        js: &jetstream::Context,
        subjects: &[&str],
        ack_wait: Duration,
    ) -> Result<consumer::PullConsumer, TopologyError> {
        let config = consumer::pull::Config {
            durable_name: Some("reactor-mail".into()),
            filter_subjects: subjects.iter().map(|s| self.namespace.subject(s)).collect(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_deliver: -1,
            max_ack_pending: 256,
            ..Default::default()
        };
        self.pull_consumer(js, &self.namespace.events_stream(), config)
            .await
    }

    pub async fn pull_consumer(
        &self,
        js: &jetstream::Context,
        stream_name: &str,
        config: consumer::pull::Config,
    ) -> Result<consumer::PullConsumer, TopologyError> {
        let consumer_name = config.durable_name.clone().unwrap_or_default();
        let consumer_error =
            |e: Box<dyn std::error::Error + Send + Sync>| TopologyError::Consumer {
                stream: stream_name.to_owned(),
                consumer: consumer_name.clone(),
                source: e,
            };
        let stream = js
            .get_stream(stream_name)
            .await
            .map_err(|e| consumer_error(Box::new(e)))?;
        // Create or update: a consumer that exists takes this release's config (filters,
        // ack wait, limits) and keeps its delivery position, so a release that changes
        // what a role filters needs no manual `nats consumer rm`. Uses the same
        // `CONSUMER.CREATE` API subject (and NATS permission) as a plain create.
        stream
            .create_consumer(config)
            .await
            .map_err(|e| consumer_error(Box::new(e)))
    }

    /// Removes this namespace's streams (tests clean up with this).
    pub async fn delete_streams(&self, js: &jetstream::Context) {
        for name in [
            self.namespace.commands_stream(),
            self.namespace.events_stream(),
        ] {
            let _ = js.delete_stream(&name).await;
        }
    }
}
