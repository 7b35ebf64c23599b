//! Store calls by operation: latency and failures, one pre-built entry per operation so a
//! call costs atomic additions only. Encoded in [`STORE_OPERATIONS`]' order, and only the
//! operations called at least once: a daemon that never touched tokens shows no token rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::histogram::{Buckets, LATENCY_BUCKETS};

/// The store operations timed, by name (the `operation` label): the store traits' calls.
pub const STORE_OPERATIONS: &[&str] = &[
    "lookup_job",
    "get_all_jobs",
    "stream_job_views",
    "get_job_view",
    "count_jobs",
    "get_next_run_time",
    "add_job",
    "update_job",
    "replace_job",
    "remove_job",
    "due_jobs",
    "commit_claims",
    "insert_run",
    "update_run",
    "get_run",
    "get_runs",
    "list_runs",
    "interrupt_orphaned_runs",
    "prune_runs",
    "due_runs",
    "next_due_run",
    "take_queued_run",
    "heartbeat",
    "get_nodes",
    "remove_nodes",
    "create_token",
    "list_tokens",
    "find_token",
    "revoke_token",
    "touch_token",
    "append_audit",
    "audit",
    "prune_audit",
    "enqueue_notifications",
    "due_notifications",
    "claim_notification",
    "record_attempt",
    "next_notification_at",
    "list_notifications",
    "prune_notifications",
    "ping",
];

/// One operation's counts.
#[derive(Debug)]
struct Counts {
    latency: Buckets,
    errors: AtomicU64,
}

/// One store operation's handle, resolved once.
#[derive(Debug, Clone)]
pub struct StoreOp(Arc<Counts>);

impl StoreOp {
    /// Counts one call that took `took`, and whether it failed.
    pub fn observe(&self, took: Duration, failed: bool) {
        self.0.latency.observe(took);
        if failed {
            self.0.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Every operation's counts, in [`STORE_OPERATIONS`]' order.
#[derive(Debug)]
pub(super) struct StoreOps(Vec<StoreOp>);

impl StoreOps {
    pub(super) fn new() -> StoreOps {
        StoreOps(
            STORE_OPERATIONS
                .iter()
                .map(|_| {
                    StoreOp(Arc::new(Counts {
                        latency: Buckets::new(LATENCY_BUCKETS),
                        errors: AtomicU64::new(0),
                    }))
                })
                .collect(),
        )
    }

    /// The handle of the operation named `operation`.
    pub(super) fn get(&self, operation: &str) -> Option<StoreOp> {
        let index = STORE_OPERATIONS.iter().position(|op| *op == operation)?;
        self.0.get(index).cloned()
    }

    /// The operations called at least once, with their counts.
    fn called(&self) -> impl Iterator<Item = (&'static str, &Counts)> {
        STORE_OPERATIONS
            .iter()
            .zip(self.0.iter())
            .map(|(name, op)| (*name, &*op.0))
            .filter(|(_, counts)| counts.latency.count() > 0)
    }
}

impl Collector for StoreOps {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut latency = encoder.encode_descriptor(
            "tickd_store_operation_duration_seconds",
            "Time the store took per call, by operation",
            None,
            MetricType::Histogram,
        )?;
        for (operation, counts) in self.called() {
            let labels = [("operation", operation)];
            counts
                .latency
                .encode_into(&mut latency.encode_family(&labels)?)?;
        }
        let mut errors = encoder.encode_descriptor(
            "tickd_store_errors",
            "Store calls that failed (the database unreachable or refusing), by operation",
            None,
            MetricType::Counter,
        )?;
        for (operation, counts) in self.called() {
            let labels = [("operation", operation)];
            let count = counts.errors.load(Ordering::Relaxed);
            ConstCounter::new(count).encode(errors.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
