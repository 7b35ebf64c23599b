//! What the scheduler tells the metrics (`crate::metrics`): every event it emits is counted
//! as it is emitted (runs ended by status, missed and skipped included; a script's duration;
//! a scheduled run's lateness), and a scrape reads the state that is not an event: jobs by
//! state, scripts running, daemons sharing the store.
//!
//! Jobs by state are counted from the store's listing (the store is the index: no count is
//! kept in memory). That read is bounded: at most one per [`REFRESH`] whatever the scrape
//! rate (`/metrics` may be open to anyone), one at a time, and on a store this daemon has to
//! itself not at all while no job has changed since the last count (the read cache's
//! generation says so).

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;

use super::{Scheduler, SchedulerError, SchedulerEvent};
use crate::metrics::{Metrics, Snapshot};
use crate::store::ViewFilter;

/// The least time between two counts of the stored jobs.
const REFRESH: Duration = Duration::from_secs(5);

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
            SchedulerEvent::JobMaxInstances { job_id, .. } => {
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
        let mut counted = self.count_jobs().await?;
        counted.members = self.nodes().await?.len() as u64;
        Ok(counted)
    }

    /// Jobs by state, from the store's listing.
    async fn count_jobs(&self) -> Result<Snapshot, SchedulerError> {
        let mut snapshot = Snapshot::default();
        let mut views = self.inner.store.stream_job_views(ViewFilter::All);
        while let Some(view) = views.try_next().await? {
            if view.pending {
                snapshot.pending += 1;
            } else if view.next_run_time.is_some() {
                snapshot.scheduled += 1;
            } else {
                snapshot.paused += 1;
            }
        }
        Ok(snapshot)
    }
}
