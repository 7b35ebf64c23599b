//! What the scheduler tells the metrics (`crate::metrics`): every event it emits is counted
//! as it is emitted (runs ended by status, missed and skipped included; a script's duration;
//! a scheduled run's lateness), and a scrape reads the state that is not an event: jobs by
//! state, scripts running, daemons sharing the store.
//!
//! Jobs by state are counted by the store (the store is the index: no count is kept in
//! memory; SQL answers one aggregate, Redis reads its listing). That count is bounded: at
//! most one per [`REFRESH`] whatever the scrape rate (`/metrics` may be open to anyone), one
//! at a time, and on a store this daemon has to itself none while no job has changed since
//! the last count (the read cache's generation says so).

use std::time::{Duration, Instant};

use super::{Scheduler, SchedulerError, SchedulerEvent};
use crate::metrics::{Metrics, Snapshot};

/// The least time between two counts of the stored jobs.
const REFRESH: Duration = Duration::from_secs(1);

/// The last count of jobs and members, and when it was made.
#[derive(Debug, Default)]
pub(super) struct LastCount {
    counted: Option<(Instant, Option<u64>, Snapshot)>,
}

impl Scheduler {
    /// Counts this scheduler's events in `metrics` from now on. Set once, at start-up; a
    /// second call is ignored.
    pub fn set_metrics(&self, metrics: Metrics) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// Counts an event being emitted.
    pub(super) fn count(&self, event: &SchedulerEvent) {
        let Some(metrics) = self.inner.metrics.get() else {
            return;
        };
        match event {
            SchedulerEvent::JobMissed { job_id, .. } => metrics.run_ended(job_id, "missed", None),
            SchedulerEvent::JobMaxInstances { job_id, .. }
            | SchedulerEvent::JobShadowed { job_id, .. } => {
                metrics.run_ended(job_id, "skipped", None);
            }
            SchedulerEvent::RunStarted {
                scheduled: Some(scheduled),
                started_at,
                ..
            } => {
                let late = (*started_at - scheduled.to_utc())
                    .to_std()
                    .unwrap_or_default();
                metrics.run_started_late(late);
            }
            SchedulerEvent::RunFinished { job_id, run } => {
                let took = match (run.started_at, run.finished_at) {
                    (Some(started), Some(finished)) => (finished - started).to_std().ok(),
                    _ => None,
                };
                metrics.run_ended(job_id, run.status.as_str(), took);
            }
            SchedulerEvent::JobAdded { .. }
            | SchedulerEvent::JobRemoved { .. }
            | SchedulerEvent::JobSubmitted { .. }
            | SchedulerEvent::RunStarted { .. } => {}
        }
    }

    /// The state a scrape shows: jobs by state and daemons (counted at most every
    /// [`REFRESH`]), scripts running (now). When the store cannot be read, the last count
    /// stands (zero before the first), the failure is logged, and the next scrape tries again:
    /// a scrape during an outage still shows the store's errors.
    pub async fn metrics_snapshot(&self) -> Snapshot {
        let running = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len() as u64;
        let generation = self.inner.cache.as_ref().map(|cache| cache.generation());
        let mut last = self.inner.last_count.lock().await;
        let fresh = last.counted.is_some_and(|(at, seen, _)| {
            at.elapsed() < REFRESH || (generation.is_some() && seen == generation)
        });
        if !fresh {
            match self.count_state().await {
                Ok(counted) => last.counted = Some((Instant::now(), generation, counted)),
                Err(error) => {
                    tracing::warn!("Metrics: cannot count the stored jobs: {error:#}");
                }
            }
        }
        let mut snapshot = last
            .counted
            .map(|(_, _, snapshot)| snapshot)
            .unwrap_or_default();
        snapshot.running = running;
        snapshot
    }

    /// Jobs by state and daemons, from the store.
    async fn count_state(&self) -> Result<Snapshot, SchedulerError> {
        let jobs = self.inner.store.count_jobs().await?;
        Ok(Snapshot {
            scheduled: jobs.scheduled,
            paused: jobs.paused,
            pending: jobs.pending,
            members: self.nodes().await?.len() as u64,
            running: 0,
        })
    }
}
