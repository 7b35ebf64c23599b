//! A [`Store`] that times every call of the store it wraps and counts its failures, by
//! operation (`tickd_store_operation_duration_seconds`, `tickd_store_errors_total`). The
//! app wraps the opened store in it when metrics are on, so the scheduler, the API's tokens
//! and the audit log are all measured at the one place they meet the database, and a daemon
//! without metrics pays nothing. Each operation's handles are resolved once: a call costs two
//! clock reads and a few atomic additions.
//!
//! Failures are the store's own (`Unavailable`, `Backend`); `NotFound`, `Conflict` and
//! `Stale` are answers, not faults. A stream (`stream_job_views`) is timed from its call to
//! its end or abandonment.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::{
    AuditFilter, AuditLog, AuditRecord, Claim, JobCounts, JobStore, Membership, NodeRecord,
    NotificationRecord, Orphans, Outbox, RunFilter, RunLog, Store, StoreError, StoredView,
    TokenRecord, TokenStore, ViewFilter, ViewStream,
};
use crate::job::{Job, RunRecord};
use crate::metrics::{Metrics, STORE_OPERATIONS, StoreOp};

/// See the module's doc.
#[derive(Debug)]
pub struct MeteredStore {
    store: Arc<dyn Store>,
    /// One per [`STORE_OPERATIONS`] entry, in its order.
    ops: Vec<StoreOp>,
}

/// Wraps `store` so that its calls are counted in `metrics`.
pub fn metered(store: Arc<dyn Store>, metrics: &Metrics) -> Arc<dyn Store> {
    let ops: Option<Vec<StoreOp>> = STORE_OPERATIONS
        .iter()
        .map(|op| metrics.store_op(op))
        .collect();
    match ops {
        Some(ops) => Arc::new(MeteredStore { store, ops }),
        None => store,
    }
}

/// Whether a result is the store's fault.
fn failed<T>(result: &Result<T, StoreError>) -> bool {
    matches!(
        result,
        Err(StoreError::Unavailable(_) | StoreError::Backend(_))
    )
}

impl MeteredStore {
    fn op(&self, name: &str) -> Option<&StoreOp> {
        let index = STORE_OPERATIONS.iter().position(|op| *op == name)?;
        self.ops.get(index)
    }
}

/// Awaits `$call`, counting it under `$op`.
macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let started = Instant::now();
        let result = $call.await;
        if let Some(op) = $self.op($op) {
            op.observe(started.elapsed(), failed(&result));
        }
        result
    }};
}

#[async_trait]
impl JobStore for MeteredStore {
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        timed!(self, "lookup_job", self.store.lookup_job(id))
    }
    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        timed!(self, "get_all_jobs", self.store.get_all_jobs())
    }
    fn stream_job_views(&self, filter: ViewFilter) -> ViewStream<'_> {
        let Some(op) = self.op("stream_job_views").cloned() else {
            return self.store.stream_job_views(filter);
        };
        let timer = StreamTimer {
            op,
            started: Instant::now(),
            failed: false,
        };
        self.store
            .stream_job_views(filter)
            .scan(timer, |timer, item| {
                timer.failed |= failed(&item);
                std::future::ready(Some(item))
            })
            .boxed()
    }
    async fn count_jobs(&self) -> Result<JobCounts, StoreError> {
        timed!(self, "count_jobs", self.store.count_jobs())
    }
    async fn get_job_view(&self, id: &str) -> Result<Option<StoredView>, StoreError> {
        timed!(self, "get_job_view", self.store.get_job_view(id))
    }
    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        timed!(self, "get_next_run_time", self.store.get_next_run_time())
    }
    async fn add_job(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        timed!(self, "add_job", self.store.add_job(job, view))
    }
    async fn update_job(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        timed!(self, "update_job", self.store.update_job(job, view))
    }
    async fn replace_job(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        timed!(self, "replace_job", self.store.replace_job(job, view))
    }
    async fn remove_job(&self, id: &str) -> Result<(), StoreError> {
        timed!(self, "remove_job", self.store.remove_job(id))
    }
    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        timed!(self, "due_jobs", self.store.due_jobs(now, limit))
    }
    async fn commit_claims(
        &self,
        claims: Vec<(Job, Claim)>,
    ) -> Result<Vec<(Job, Claim)>, StoreError> {
        timed!(self, "commit_claims", self.store.commit_claims(claims))
    }
}

/// Counts a stream when it ends or is dropped.
struct StreamTimer {
    op: StoreOp,
    started: Instant,
    failed: bool,
}

impl Drop for StreamTimer {
    fn drop(&mut self) {
        self.op.observe(self.started.elapsed(), self.failed);
    }
}

#[async_trait]
impl RunLog for MeteredStore {
    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        timed!(self, "insert_run", self.store.insert_run(run))
    }
    async fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        timed!(self, "update_run", self.store.update_run(run))
    }
    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        timed!(self, "get_run", self.store.get_run(run_id))
    }
    async fn get_runs(
        &self,
        job_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        timed!(self, "get_runs", self.store.get_runs(job_id, limit, before))
    }
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        timed!(self, "list_runs", self.store.list_runs(filter))
    }
    async fn due_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        timed!(self, "due_runs", self.store.due_runs(now, limit))
    }
    async fn next_due_run(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        timed!(self, "next_due_run", self.store.next_due_run(after))
    }
    async fn take_queued_run(&self, run: &RunRecord) -> Result<bool, StoreError> {
        timed!(self, "take_queued_run", self.store.take_queued_run(run))
    }
    async fn interrupt_orphaned_runs(&self, orphans: &Orphans<'_>) -> Result<u64, StoreError> {
        timed!(
            self,
            "interrupt_orphaned_runs",
            self.store.interrupt_orphaned_runs(orphans)
        )
    }
    async fn prune_runs(
        &self,
        older_than: DateTime<Utc>,
        keep_per_job: u32,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            "prune_runs",
            self.store.prune_runs(older_than, keep_per_job)
        )
    }
}

#[async_trait]
impl Outbox for MeteredStore {
    async fn enqueue_notifications(&self, batch: &[NotificationRecord]) -> Result<(), StoreError> {
        timed!(
            self,
            "enqueue_notifications",
            self.store.enqueue_notifications(batch)
        )
    }
    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        timed!(
            self,
            "due_notifications",
            self.store.due_notifications(now, limit)
        )
    }
    async fn claim_notification(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        timed!(
            self,
            "claim_notification",
            self.store.claim_notification(id, owner, until, now)
        )
    }
    async fn record_attempt(
        &self,
        record: &NotificationRecord,
        owner: &str,
    ) -> Result<bool, StoreError> {
        timed!(
            self,
            "record_attempt",
            self.store.record_attempt(record, owner)
        )
    }
    async fn next_notification_at(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        timed!(
            self,
            "next_notification_at",
            self.store.next_notification_at(after)
        )
    }
    async fn list_notifications(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        timed!(
            self,
            "list_notifications",
            self.store.list_notifications(limit, before)
        )
    }
    async fn prune_notifications(&self, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        timed!(
            self,
            "prune_notifications",
            self.store.prune_notifications(older_than)
        )
    }
}

#[async_trait]
impl Membership for MeteredStore {
    async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError> {
        timed!(self, "heartbeat", self.store.heartbeat(node))
    }
    async fn get_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        timed!(self, "get_nodes", self.store.get_nodes())
    }
    async fn remove_nodes(&self, id: &str, before: DateTime<Utc>) -> Result<(), StoreError> {
        timed!(self, "remove_nodes", self.store.remove_nodes(id, before))
    }
}

#[async_trait]
impl TokenStore for MeteredStore {
    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        timed!(self, "create_token", self.store.create_token(token))
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        timed!(self, "list_tokens", self.store.list_tokens())
    }
    async fn find_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        timed!(self, "find_token", self.store.find_token(id))
    }
    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        timed!(self, "revoke_token", self.store.revoke_token(id))
    }
    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        timed!(self, "touch_token", self.store.touch_token(id, at))
    }
}

#[async_trait]
impl AuditLog for MeteredStore {
    async fn append(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        timed!(self, "append_audit", self.store.append(records))
    }
    async fn audit(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditRecord>, StoreError> {
        timed!(self, "audit", self.store.audit(filter))
    }
    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        timed!(self, "prune_audit", self.store.prune_audit(before))
    }
}

#[async_trait]
impl Store for MeteredStore {
    fn shared(&self) -> bool {
        self.store.shared()
    }
    fn keeps_views(&self) -> bool {
        self.store.keeps_views()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        timed!(self, "ping", self.store.ping())
    }
    async fn close(&self) {
        self.store.close().await;
    }
}
