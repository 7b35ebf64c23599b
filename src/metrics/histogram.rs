//! A histogram of durations whose `observe` takes no lock: a bucket search and two atomic
//! additions. prometheus-client's own `Histogram` takes a mutex per observation, which the
//! HTTP layer would take on every request; this one is encoded through the same
//! `EncodeMetric` trait, so the registry, the text formats and the escaping stay the
//! crate's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Bucket bounds in seconds for HTTP and store latencies: 100 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// Bucket bounds in seconds for fire lateness (scheduled → spawned): 1 ms to 5 min.
pub const LATENESS_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0,
];

/// Bucket bounds in seconds for run durations: 10 ms to 6 h.
pub const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21_600.0,
];

/// The counts behind a histogram; held inline where many are kept (per route and method),
/// shared through [`Histogram`] elsewhere.
#[derive(Debug)]
pub struct Buckets {
    bounds: &'static [f64],
    /// One count per bound, then the overflow (`+Inf`) bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    /// The sum of observations, in nanoseconds (584 years fit).
    sum_nanos: AtomicU64,
}

impl Buckets {
    /// Empty buckets with these upper bounds (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Buckets {
        Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one observation: two atomic additions (the count is the buckets' sum, so it
    /// is not kept apart: on the HTTP path every shared cache line written costs).
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let index = self.bounds.partition_point(|bound| *bound < seconds);
        if let Some(bucket) = self.counts.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations were counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Writes the histogram's samples (`_sum`, `_count`, `_bucket`).
    pub fn encode_into(&self, encoder: &mut MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' total, read once, so a scrape never shows `_count`
        // disagreeing with the `+Inf` bucket.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// A shared [`Buckets`], registrable as a metric (also inside a `Family`).
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Buckets>);

impl Histogram {
    /// An empty histogram with these upper bounds (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram(Arc::new(Buckets::new(bounds)))
    }

    /// Counts one observation.
    pub fn observe(&self, value: Duration) {
        self.0.observe(value);
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode_into(&mut encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let buckets = Buckets::new(&[0.001, 0.01]);
        buckets.observe(Duration::from_micros(1_000)); // on the bound: le="0.001"
        buckets.observe(Duration::from_millis(5));
        buckets.observe(Duration::from_secs(3));
        let counts: Vec<u64> = buckets
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [1, 1, 1]);
        assert_eq!(buckets.count(), 3);
        assert_eq!(buckets.sum_nanos.load(Ordering::Relaxed), 3_006_000_000);
    }
}
