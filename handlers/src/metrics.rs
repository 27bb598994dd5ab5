//! The downloader's and the processor's metrics, registered in the process' Prometheus
//! registry by the binary.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How an import attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// The track is stored and the job completed.
    Succeeded,
    /// The job ended as `ImportFailed` (a permanent error, or out of attempts).
    Failed,
    /// A transient error: the job comes back later.
    Retried,
}

impl JobOutcome {
    const ALL: [JobOutcome; 3] = [Self::Succeeded, Self::Failed, Self::Retried];

    fn label(self) -> [(&'static str, &'static str); 1] {
        [(
            "outcome",
            match self {
                Self::Succeeded => "succeeded",
                Self::Failed => "failed",
                Self::Retried => "retried",
            },
        )]
    }
}

/// `jukebox_downloader_jobs_total{outcome}` and `jukebox_downloader_jobs_in_flight`.
#[derive(Clone, Debug, Default)]
pub struct DownloaderMetrics {
    jobs: Family<[(&'static str, &'static str); 1], Counter>,
    in_flight: Gauge,
}

impl DownloaderMetrics {
    pub fn job(&self, outcome: JobOutcome) {
        self.jobs.get_or_create(&outcome.label()).inc();
    }

    pub fn jobs(&self, outcome: JobOutcome) -> u64 {
        self.jobs
            .get(&outcome.label())
            .map_or(0, |counter| counter.get())
    }

    /// Counts a job in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub fn register(&self, registry: &mut Registry) {
        // Every outcome exported from the start, so a rate over them is defined at once.
        for outcome in JobOutcome::ALL {
            let _ = self.jobs.get_or_create(&outcome.label());
        }
        registry.register(
            "jukebox_downloader_jobs",
            "Import attempts by how they ended",
            self.jobs.clone(),
        );
        registry.register(
            "jukebox_downloader_jobs_in_flight",
            "Imports this downloader is working on",
            self.in_flight.clone(),
        );
    }
}

pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `jukebox_processor_conflicts_total{outcome}`: optimistic-concurrency conflicts on one
/// aggregate step: `retried` (reloaded and decided again) and `exhausted` (still
/// conflicting after every retry: the command fails and comes back later).
#[derive(Clone, Debug, Default)]
pub struct ProcessorMetrics {
    conflicts: Family<[(&'static str, &'static str); 1], Counter>,
}

impl ProcessorMetrics {
    const RETRIED: [(&'static str, &'static str); 1] = [("outcome", "retried")];
    const EXHAUSTED: [(&'static str, &'static str); 1] = [("outcome", "exhausted")];

    pub fn conflict_retried(&self) {
        self.conflicts.get_or_create(&Self::RETRIED).inc();
    }

    pub fn conflicts_exhausted(&self) {
        self.conflicts.get_or_create(&Self::EXHAUSTED).inc();
    }

    /// (retried, exhausted) so far.
    pub fn conflicts(&self) -> (u64, u64) {
        let get = |label| self.conflicts.get(label).map_or(0, |c| c.get());
        (get(&Self::RETRIED), get(&Self::EXHAUSTED))
    }

    pub fn register(&self, registry: &mut Registry) {
        let _ = self.conflicts.get_or_create(&Self::RETRIED);
        let _ = self.conflicts.get_or_create(&Self::EXHAUSTED);
        registry.register(
            "jukebox_processor_conflicts",
            "Optimistic-concurrency conflicts of aggregate steps, retried or out of retries",
            self.conflicts.clone(),
        );
    }
}
