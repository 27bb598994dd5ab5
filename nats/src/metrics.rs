//! Metrics of the durable consumers (processor, projectors, downloader), registered in
//! the process' one Prometheus registry by the binary.

use async_nats::jetstream::Message;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// `jukebox_consumer_redeliveries_total{consumer}`: messages a consumer received more
/// than once (a crash or timeout before the ack, a lost ack, a nak'd retry).
#[derive(Clone, Debug, Default)]
pub struct Redeliveries {
    family: Family<[(&'static str, String); 1], Counter>,
}

impl Redeliveries {
    /// Exports the consumer's series at 0, so `rate()` sees its first redelivery.
    pub fn watch(&self, consumer: &str) {
        let _ = self.family.get_or_create(&label(consumer));
    }

    /// Counts `message` when JetStream says it was delivered before.
    pub fn observe(&self, consumer: &str, message: &Message) {
        if message.info().is_ok_and(|info| info.delivered > 1) {
            self.family.get_or_create(&label(consumer)).inc();
        }
    }

    pub fn get(&self, consumer: &str) -> u64 {
        self.family
            .get(&label(consumer))
            .map_or(0, |counter| counter.get())
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "jukebox_consumer_redeliveries",
            "Messages a durable consumer received more than once",
            self.family.clone(),
        );
    }
}

fn label(consumer: &str) -> [(&'static str, String); 1] {
    [("consumer", consumer.to_owned())]
}
