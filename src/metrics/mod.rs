//! Prometheus metrics (issue 17): what the scheduler, the store and the HTTP API count, and
//! their exposition as text. A leaf: it imports nothing of tickd; the scheduler, the store's
//! timing wrapper (`store::metered`) and the API's layer call into it.
//!
//! prometheus-client (the Prometheus project's own Rust client) keeps the registry, the
//! label sets (typed, escaped) and both text formats; what is counted on hot paths is
//! pre-resolved so that it costs atomic additions only: the HTTP counters (`http.rs`), the
//! store's per-operation handles (`store_ops.rs`) and a histogram without a lock
//! (`histogram.rs`). Values that are state rather than events (jobs by state, runs in
//! progress, cluster members) are read at scrape time and set just before encoding.
//!
//! # Layout
//! - here: [`Metrics`], the registry and every metric's name and help.
//! - `histogram`: a lock-free histogram of durations, and the bucket bounds.
//! - `http`: requests by route template, method and status, with latency.
//! - `job_labels`: per-job label values, capped (`[metrics] max_job_labels`).
//! - `store_ops`: store calls by operation, latency and failures.

mod histogram;
mod http;
mod job_labels;
mod store_ops;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use histogram::Histogram;
pub use http::{HttpMetrics, UNMATCHED};
pub use job_labels::OTHER;
pub use store_ops::{STORE_OPERATIONS, StoreOp};

use histogram::{DURATION_BUCKETS, LATENESS_BUCKETS};
use job_labels::JobLabels;
use store_ops::StoreOps;

/// The `Content-Type` of the Prometheus text format (0.0.4).
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// The `Content-Type` of OpenMetrics text (1.0.0), answered when a scraper asks for it.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RunLabels {
    job: String,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeliveryLabels {
    webhook: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// Builds a histogram with fixed bounds inside a `Family`.
#[derive(Debug, Clone, Copy)]
struct Bounds(&'static [f64]);

impl MetricConstructor<Histogram> for Bounds {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0)
    }
}

/// What a scrape reads from the scheduler just before encoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Jobs with a next fire time.
    pub scheduled: u64,
    /// Jobs without one (paused).
    pub paused: u64,
    /// Jobs added while the scheduler was stopped.
    pub pending: u64,
    /// Scripts running now.
    pub running: u64,
    /// Daemons sharing the store (this one included).
    pub members: u64,
}

/// Every metric tickd keeps; cloning is a reference-count bump.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    job_labels: JobLabels,
    runs: Family<RunLabels, Counter>,
    lateness: Histogram,
    duration: Family<JobLabel, Histogram, Bounds>,
    store_ops: Arc<StoreOps>,
    jobs: Family<StateLabel, Gauge>,
    running: Gauge,
    members: Gauge,
    deliveries: Family<DeliveryLabels, Counter>,
    http: Arc<HttpMetrics>,
}

impl Metrics {
    /// The metrics of a daemon whose API has these route templates, with at most
    /// `max_job_labels` jobs labelled by their own id.
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a str>, max_job_labels: usize) -> Metrics {
        let mut registry = Registry::default();
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "tickd_runs",
            "Runs ended, by job and status (missed and skipped included; jobs beyond \
             [metrics] max_job_labels count as job=\"_other\")",
            runs.clone(),
        );
        let lateness = Histogram::new(LATENESS_BUCKETS);
        registry.register(
            "tickd_fire_lateness_seconds",
            "Time from a run's scheduled fire time to its script's spawn",
            lateness.clone(),
        );
        let duration = Family::new_with_constructor(Bounds(DURATION_BUCKETS));
        registry.register(
            "tickd_run_duration_seconds",
            "Time from a script's spawn to its end, by job",
            duration.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "tickd_runs_in_progress",
            "Scripts running now",
            running.clone(),
        );
        let jobs = Family::<StateLabel, Gauge>::default();
        registry.register(
            "tickd_jobs",
            "Jobs in the store by state: scheduled (a next fire time), paused (none), pending \
             (added while the scheduler was stopped)",
            jobs.clone(),
        );
        let store_ops = Arc::new(StoreOps::new());
        registry.register_collector(Box::new(store_ops.clone()));
        let members = Gauge::default();
        registry.register(
            "tickd_cluster_members",
            "Daemons sharing the store, this one included",
            members.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "tickd_notification_deliveries",
            "Webhook delivery attempts by webhook (a job's own target counts as webhook=\"job\") \
             and outcome: delivered (2xx), failed (tried again later), gave_up",
            deliveries.clone(),
        );
        registry.register(
            "tickd_build",
            "The running build",
            Info::new(VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let http = Arc::new(HttpMetrics::new(routes));
        registry.register_collector(Box::new(http.clone()));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                job_labels: JobLabels::new(max_job_labels),
                runs,
                lateness,
                duration,
                store_ops,
                jobs,
                running,
                members,
                deliveries,
                http,
            }),
        }
    }

    /// A run ended (or never ran: `missed`, `skipped`) with `status`; `took` is its script's
    /// time, when one ran.
    pub fn run_ended(&self, job_id: &str, status: &'static str, took: Option<Duration>) {
        let job = self.inner.job_labels.label(job_id).to_string();
        if let Some(took) = took {
            self.inner
                .duration
                .get_or_create(&JobLabel { job: job.clone() })
                .observe(took);
        }
        self.inner
            .runs
            .get_or_create(&RunLabels { job, status })
            .inc();
    }

    /// A webhook delivery attempt ended with `outcome` (`delivered`, `failed`, `gave_up`).
    pub fn delivery(&self, webhook: &str, outcome: &'static str) {
        self.inner
            .deliveries
            .get_or_create(&DeliveryLabels {
                webhook: webhook.to_owned(),
                outcome,
            })
            .inc();
    }

    /// A scheduled run's script was spawned `late` after its fire time.
    pub fn run_started_late(&self, late: Duration) {
        self.inner.lateness.observe(late);
    }

    /// The handles of a store operation named in [`STORE_OPERATIONS`]; `None` for another
    /// name.
    pub fn store_op(&self, operation: &str) -> Option<StoreOp> {
        self.inner.store_ops.get(operation)
    }

    /// The HTTP counters, for the API's layer.
    pub fn http(&self) -> &HttpMetrics {
        &self.inner.http
    }

    /// Every metric as text: OpenMetrics when `openmetrics`, else Prometheus 0.0.4; the state
    /// gauges set from `snapshot` first.
    ///
    /// # Errors
    /// Never in practice: writing to a `String` does not fail.
    pub fn encode(&self, snapshot: Snapshot, openmetrics: bool) -> Result<String, std::fmt::Error> {
        let inner = &self.inner;
        for (state, count) in [
            ("scheduled", snapshot.scheduled),
            ("paused", snapshot.paused),
            ("pending", snapshot.pending),
        ] {
            inner
                .jobs
                .get_or_create(&StateLabel { state })
                .set(gauge(count));
        }
        inner.running.set(gauge(snapshot.running));
        inner.members.set(gauge(snapshot.members));
        let mut text = String::with_capacity(16 * 1024);
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &inner.registry)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &inner.registry)?;
        }
        Ok(text)
    }
}

fn gauge(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_metric() {
        let metrics = Metrics::new(["/scheduler/jobs/{id}"], 1);
        metrics.run_ended("a", "succeeded", Some(Duration::from_millis(20)));
        metrics.run_ended("b", "missed", None);
        metrics.run_started_late(Duration::from_millis(3));
        if let Some(op) = metrics.store_op("add_job") {
            op.observe(Duration::from_micros(80), true);
        }
        let route = metrics.http().route("/scheduler/jobs/x");
        metrics
            .http()
            .record(route, "GET", 200, Duration::from_micros(50));
        let text = metrics.encode(Snapshot::default(), false).unwrap();
        for line in [
            r#"tickd_runs_total{job="a",status="succeeded"} 1"#,
            r#"tickd_runs_total{job="_other",status="missed"} 1"#,
            r#"tickd_run_duration_seconds_count{job="a"} 1"#,
            "tickd_fire_lateness_seconds_count 1",
            r#"tickd_store_errors_total{operation="add_job"} 1"#,
            r#"tickd_http_requests_total{method="GET",route="/scheduler/jobs/{id}",status="200"} 1"#,
            r#"tickd_jobs{state="paused"} 0"#,
            r#"tickd_build_info{version=""#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let open = metrics.encode(Snapshot::default(), true).unwrap();
        assert!(open.ends_with("# EOF\n"), "{open}");
    }
}
