//! The command bus client: publish a command to JetStream, then wait (bounded) for the
//! processor's answer on core NATS. JetStream never stores reply subjects, so the answer
//! subject travels in a header and the edge listens on one wildcard subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use futures::StreamExt;
use tokio::sync::oneshot;
use tracing::{debug, debug_span, warn, Instrument};
use uuid::Uuid;

use crate::envelope::{CommandEnvelope, CommandOutcome};
use crate::names::{Namespace, CORRELATION_ID_HEADER, REPLY_TO_HEADER};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the command bus is unavailable: {0}")]
    Unavailable(String),
}

type Waiters = Arc<Mutex<HashMap<Uuid, oneshot::Sender<CommandOutcome>>>>;

#[derive(Clone)]
pub struct CommandBus {
    js: jetstream::Context,
    namespace: Namespace,
    edge_id: String,
    waiters: Waiters,
}

impl CommandBus {
    /// Subscribes to this edge's reply subjects and starts dispatching answers.
    pub async fn start(
        client: async_nats::Client,
        namespace: Namespace,
    ) -> Result<Self, async_nats::SubscribeError> {
        // `<user>.<random>`: app::connect_nats gives each NATS user the inbox prefix
        // `_INBOX_<user>`, so each user's answers come on its own `reply.<user>.>` and no
        // other role's user may read them (infra/nats/users.conf).
        let inbox = client.new_inbox();
        let owner = inbox
            .split('.')
            .next()
            .and_then(|prefix| prefix.strip_prefix("_INBOX_"))
            .unwrap_or("any");
        let edge_id = format!("{owner}.{}", Uuid::new_v4().simple());
        let mut replies = client
            .subscribe(namespace.subject(&format!("reply.{edge_id}.*")))
            .await?;
        let waiters: Waiters = Arc::default();
        let dispatch = waiters.clone();
        tokio::spawn(async move {
            while let Some(message) = replies.next().await {
                match serde_json::from_slice::<CommandOutcome>(&message.payload) {
                    Ok(outcome) => {
                        let waiter = dispatch
                            .lock()
                            .expect("waiters")
                            .remove(&outcome.command_id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(outcome);
                        }
                    }
                    Err(error) => warn!(%error, "unreadable command outcome"),
                }
            }
        });
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(3))
            .build(client);
        Ok(Self {
            js,
            namespace,
            edge_id,
            waiters,
        })
    }

    /// Publishes the command (deduplicated by its id) and waits up to `wait` for its
    /// outcome. `Ok(None)` means accepted but not answered in time: the outcome can be
    /// read later by command id.
    pub async fn send(
        &self,
        envelope: &CommandEnvelope,
        wait: Duration,
    ) -> Result<Option<CommandOutcome>, SendError> {
        let command_id = envelope.command_id;
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().expect("waiters").insert(command_id, tx);
        let _guard = WaiterGuard {
            waiters: &self.waiters,
            command_id,
        };

        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", command_id.to_string().as_str());
        headers.insert(
            REPLY_TO_HEADER,
            self.namespace
                .reply_subject(&self.edge_id, &command_id.simple().to_string())
                .as_str(),
        );
        headers.insert(
            CORRELATION_ID_HEADER,
            envelope.correlation_id.to_string().as_str(),
        );
        let payload = serde_json::to_vec(envelope).expect("envelopes serialize");
        let subject = self
            .namespace
            .command_subject(envelope.command.subject_suffix());
        // One span per hop (`LOG_SPANS=close` prints their times): stored on COMMANDS,
        // then answered by the processor.
        let ack = async {
            self.js
                .publish_with_headers(subject, headers, payload.into())
                .await
                .map_err(|e| SendError::Unavailable(e.to_string()))?
                .await
                .map_err(|e| SendError::Unavailable(e.to_string()))
        }
        .instrument(debug_span!("bus.publish", %command_id))
        .await?;
        debug!(%command_id, duplicate = ack.duplicate, "command accepted");

        match tokio::time::timeout(wait, rx)
            .instrument(debug_span!("bus.await_outcome", %command_id))
            .await
        {
            Ok(Ok(outcome)) => Ok(Some(outcome)),
            _ => Ok(None),
        }
    }
}

/// Removes a waiter whatever way `send` ends, so abandoned requests do not leak.
struct WaiterGuard<'a> {
    waiters: &'a Waiters,
    command_id: Uuid,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.waiters
            .lock()
            .expect("waiters")
            .remove(&self.command_id);
    }
}
