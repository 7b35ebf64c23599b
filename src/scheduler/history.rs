//! Run history behind the API: one run, a job's runs, the runs of every job, cancelling a
//! run, and retention.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::{RunFilter, Scheduler, SchedulerError, SchedulerEvent};
use crate::job::{JobId, RunId, RunRecord, RunStatus};

/// How often a cancel waiting for a run's end reads its record back.
const CANCEL_RECHECK: Duration = Duration::from_secs(1);

impl Scheduler {
    /// One run record.
    ///
    /// # Errors
    /// `RunNotFound`; store failures.
    pub async fn get_run(&self, run_id: &RunId) -> Result<RunRecord, SchedulerError> {
        self.inner
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| SchedulerError::RunNotFound(run_id.to_string()))
    }

    /// A job's runs, newest first: at most `limit`, older than run `before` when given. The
    /// runs of a deleted job stay readable until retention removes them.
    ///
    /// # Errors
    /// `JobNotFound` when the job is unknown and has no runs (whatever `before` says); store
    /// failures.
    pub async fn get_runs(
        &self,
        job_id: &JobId,
        limit: u32,
        before: Option<&RunId>,
    ) -> Result<Vec<RunRecord>, SchedulerError> {
        let runs = self
            .inner
            .store
            .get_runs(job_id, limit, before.map(RunId::as_str))
            .await?;
        if runs.is_empty() && self.inner.store.lookup_job(job_id).await?.is_none() {
            // A job whose trigger ran out is removed in the claim that writes its last run
            // record: between the two reads above it may have gone, its run come. Read again,
            // and past `before` too: an empty page after a deleted job's last run is a page.
            let runs = self
                .inner
                .store
                .get_runs(job_id, limit, before.map(RunId::as_str))
                .await?;
            if runs.is_empty() && self.inner.store.get_runs(job_id, 1, None).await?.is_empty() {
                return Err(SchedulerError::JobNotFound(job_id.to_string()));
            }
            return Ok(runs);
        }
        Ok(runs)
    }

    /// Runs of every job, newest first, as `filter` narrows them, without their output (read
    /// one run for it). A job in the filter that is unknown simply has no runs: the page is
    /// empty, not an error, as a deleted job's runs stay listed until retention removes them.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, SchedulerError> {
        Ok(self.inner.store.list_runs(filter).await?)
    }

    /// Cancels a running script (SIGTERM to its process group, SIGKILL after the kill grace)
    /// and answers its record once it has ended (`cancelled`, or however it ended first).
    ///
    /// The end is heard from the run's own announcement, and the record is also read back
    /// every [`CANCEL_RECHECK`]: an announcement this call missed (a lagging listener)
    /// cannot keep it waiting once the record has ended.
    ///
    /// # Errors
    /// `RunNotFound`; `NotCancellable` when the run is not running in this daemon.
    pub async fn cancel_run(&self, run_id: &RunId) -> Result<RunRecord, SchedulerError> {
        let mut events = self.subscribe();
        let handle = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(run_id)
            .cloned();
        let Some(handle) = handle else {
            let run = self.get_run(run_id).await?;
            if run.status == RunStatus::Queued {
                // It has not started: it ends here, unless a daemon takes it first.
                let mut cancelled = run.clone();
                cancelled.status = RunStatus::Cancelled;
                cancelled.finished_at = Some(self.now());
                cancelled.reason = Some("cancelled through the API while queued".to_owned());
                if self.inner.store.take_queued_run(&cancelled).await? {
                    self.emit(SchedulerEvent::RunFinished {
                        job_id: cancelled.job_id.clone(),
                        run: Box::new(cancelled.clone()),
                    });
                    return Ok(cancelled);
                }
                return Err(SchedulerError::NotCancellable(format!(
                    "Run {run_id} has just started; try again in a moment"
                )));
            }
            return Err(SchedulerError::NotCancellable(match run.status {
                RunStatus::Running if run.owner == self.inner.node_id => format!(
                    "Run {run_id} is starting or ending (its script is not running); try again \
                     in a moment"
                ),
                RunStatus::Running => format!(
                    "Run {run_id} runs in another daemon (on {}); cancel it there",
                    run.node
                ),
                status => format!("Run {run_id} is not running (it is {})", status.as_str()),
            }));
        };
        handle.stop(RunStatus::Cancelled);
        loop {
            let event = tokio::time::timeout(CANCEL_RECHECK, events.recv()).await;
            match event {
                Ok(Ok(SchedulerEvent::RunFinished { run, .. })) if run.id == *run_id => {
                    return Ok(*run);
                }
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => return self.get_run(run_id).await,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {
                    if let Ok(run) = self.get_run(run_id).await
                        && run.status != RunStatus::Running
                    {
                        return Ok(run);
                    }
                }
            }
        }
    }

    /// Deletes run records past the retention limits (`[history]`), as of `now`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn prune_runs(&self, now: DateTime<Utc>) -> Result<u64, SchedulerError> {
        let history = self.inner.settings.history;
        let max_age = chrono::Duration::from_std(history.max_age).unwrap_or(chrono::Duration::MAX);
        let cutoff = now
            .checked_sub_signed(max_age)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let count = self
            .inner
            .store
            .prune_runs(cutoff, history.max_runs_per_job)
            .await?;
        if count > 0 {
            tracing::info!("Retention removed {count} run record(s)");
        }
        // Deliveries that ended go with the runs of their age, on the wall clock they are
        // stamped by (`crate::notify::deliver`).
        let wall_cutoff = Utc::now()
            .checked_sub_signed(max_age)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let delivered = self.inner.store.prune_notifications(wall_cutoff).await?;
        if delivered > 0 {
            tracing::info!("Retention removed {delivered} notification delivery record(s)");
        }
        Ok(count)
    }

    /// Starts the retention sweep: every `every`, until the scheduler is closed (the app
    /// also sweeps once at boot).
    pub fn spawn_retention(&self, every: Duration) {
        self.spawn_periodic(every, |scheduler| async move {
            let now = scheduler.inner.clock.now();
            if let Err(error) = scheduler.prune_runs(now).await {
                tracing::error!("Run retention sweep failed: {error:#}");
            }
        });
    }
}
