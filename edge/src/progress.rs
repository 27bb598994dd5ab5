//! Live import progress: one core-NATS subscription per edge process keeps the latest
//! progress of every job, for `GET /jobs` and `GET /jobs/{id}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jukebox_nats::Namespace;
use serde_json::Value;
use uuid::Uuid;

/// The latest live progress per job, from core NATS `progress.import.*`.
#[derive(Clone, Default)]
pub struct ProgressCache(Arc<Mutex<HashMap<Uuid, (Value, Instant)>>>);

impl ProgressCache {
    /// Subscribes to every job's progress (one subscription per edge process).
    pub async fn start(
        client: async_nats::Client,
        namespace: &Namespace,
    ) -> Result<Self, async_nats::SubscribeError> {
        let cache = Self::default();
        let mut subscription = client
            .subscribe(namespace.subject("progress.import.*"))
            .await?;
        let entries = cache.0.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let Ok(body) = serde_json::from_slice::<Value>(&message.payload) else {
                    continue;
                };
                let Some(job_id) = body["job_id"].as_str().and_then(|j| j.parse().ok()) else {
                    continue;
                };
                let now = Instant::now();
                let mut body = body;
                if body["status"] == "retrying" {
                    // Relative to when it was said; `GET /jobs` answers with a moment.
                    let next_in = body["next_in_s"].as_u64().unwrap_or(0);
                    let at = time::OffsetDateTime::now_utc() + Duration::from_secs(next_in);
                    if let Ok(at) = at.format(&time::format_description::well_known::Rfc3339) {
                        body["next_at"] = Value::String(at);
                    }
                }
                let mut entries = entries.lock().expect("progress cache");
                if entries.len() > 10_000 {
                    entries.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(600));
                }
                entries.insert(job_id, (body, now));
            }
        });
        Ok(cache)
    }

    pub(crate) fn get(&self, job_id: Uuid) -> Option<Value> {
        self.0
            .lock()
            .expect("progress cache")
            .get(&job_id)
            .map(|(v, _)| v.clone())
    }
}
