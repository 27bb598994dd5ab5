//! The downloader's metrics, registered in the process' Prometheus registry by the binary.

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
