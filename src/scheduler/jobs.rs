//! Job operations behind the API (APScheduler's `add_job`, `modify_job`, `pause_job`, ...):
//! each validates first and writes once, so a refused request changes nothing. Bodies are
//! read before they come here, by the API or the config, with the scheduler's
//! [`JobParser`]: the scheduler takes typed jobs and changes only.

use chrono::{DateTime, FixedOffset};

use super::runner::{self, RunNow};
use super::{RunState, Scheduler, SchedulerError, SchedulerEvent};
use crate::job::{Job, JobChanges, JobId, JobParser, JobSpec, NextRunTime, RunRecord};
use crate::store::StoreError;
use crate::telemetry::logged;

/// How often a write is retried when another daemon changed the job in between.
const MAX_WRITE_ATTEMPTS: u32 = 5;

impl Scheduler {
    /// What a job body is read with: the scheduler's zone, its job defaults and its clock's
    /// time now. The API reads a request with it, the app a `[[jobs]]` table, before either
    /// calls the scheduler.
    pub fn job_parser(&self) -> JobParser {
        JobParser {
            timezone: self.timezone(),
            defaults: self.inner.settings.job_defaults.clone(),
            now: self.inner.clock.now(),
        }
    }

    /// Adds the job a `POST P/jobs` body described. A failed add leaves nothing behind.
    /// While the scheduler is stopped the job is stored as pending (APScheduler's pending
    /// jobs, but persisted): its first fire time is computed at `start`.
    ///
    /// # Errors
    /// `Invalid` when the script cannot be run; `ConflictingId` unless `replace_existing`.
    pub async fn add_job(&self, spec: JobSpec) -> Result<Job, SchedulerError> {
        self.add(spec).await.map(|(job, _)| job)
    }

    /// [`Scheduler::add_job`] answering the job's view ([`super::Render`]), rendered once
    /// for both the store and the answer: `POST P/jobs` is the write that comes in floods.
    ///
    /// # Errors
    /// As [`Scheduler::add_job`].
    pub async fn add_job_json(&self, spec: JobSpec) -> Result<String, SchedulerError> {
        self.add(spec).await.map(|(_, view)| view)
    }

    /// The add itself, with the job's view, which an insert shares with the store.
    async fn add(&self, spec: JobSpec) -> Result<(Job, String), SchedulerError> {
        let now = spec.read_at;
        self.check_notify(&spec.job)?;
        self.inner.executor.check(&spec.job.func, &spec.job.args)?;
        self.inner.executor.check_function(&spec.job.func).await?;
        let replace_existing = spec.replace_existing;
        // The first fire time is computed before the lock is taken: nobody computes one
        // while holding it (see `process.rs`).
        let first = match spec.next_run_time {
            NextRunTime::Compute => spec.job.trigger.next_fire_time(None, now),
            NextRunTime::Paused => None,
            NextRunTime::At(time) => Some(time),
        };
        // A replacement overwrites a job the due-jobs pass may hold: alone. An insert: shared.
        let (_alone, _shared);
        if replace_existing {
            _alone = self.inner.jobs_lock.lock().await;
        } else {
            _shared = self.inner.jobs_lock.share().await;
        }
        // The state is read under the lock: `start` flips it holding the lock alone, so a job
        // stored as pending is one its pending-jobs listing sees.
        let job = self.place(spec, first);
        let view = self.render(&job);
        if replace_existing {
            self.inner.store.replace_job(&job, &view).await?;
        } else {
            self.inner.store.add_job(&job, &view).await?;
        }
        self.added(&job);
        Ok((job, view))
    }

    /// Adds a `[[jobs]]` entry from the config at start-up: replaced when it says
    /// `replace_existing`, otherwise added only if no job has its id (a restart keeps the
    /// stored job and its schedule).
    ///
    /// # Errors
    /// As [`Scheduler::add_job`].
    pub async fn add_config_job(&self, spec: JobSpec) -> Result<(), SchedulerError> {
        match self.add_job(spec).await {
            Err(SchedulerError::ConflictingId(id)) => {
                tracing::info!(
                    "Job {} from the config is already stored; keeping it",
                    logged(&id)
                );
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// The job a spec describes, with its first `next_run_time` (`first`, computed from the
    /// spec), or none yet while stopped: then it is pending, its first fire time computed at
    /// `start` (only a `next_run_time` given in the body is kept).
    fn place(&self, spec: JobSpec, first: Option<DateTime<FixedOffset>>) -> Job {
        let mut job = spec.job;
        if self.state() == RunState::Stopped {
            job.pending = true;
            job.next_run_time = match spec.next_run_time {
                NextRunTime::At(time) => Some(time),
                _ => None,
            };
        } else {
            job.next_run_time = first;
        }
        job
    }

    fn added(&self, job: &Job) {
        self.changed(&job.id);
        tracing::info!(
            "Added job \"{}\" to job store \"default\"",
            logged(&job.name)
        );
        self.emit(SchedulerEvent::JobAdded {
            job_id: job.id.clone(),
        });
        self.wake_for(job.next_run_time.map(|time| time.timestamp_micros()));
    }

    /// Looks a job up as the API may see it: while stopped only pending jobs are visible, as
    /// in APScheduler (whose stores are not open then).
    pub(super) async fn visible_job(&self, id: &str) -> Result<Job, SchedulerError> {
        match self.inner.store.lookup_job(id).await? {
            Some(job) if job.pending || self.state() != RunState::Stopped => Ok(job),
            _ => Err(SchedulerError::JobNotFound(id.to_string())),
        }
    }

    /// One job.
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn get_job(&self, id: &JobId) -> Result<Job, SchedulerError> {
        self.visible_job(id).await
    }

    /// Every job, in the contract's order (by next fire instant, ties by id, paused last).
    ///
    /// # Errors
    /// Store failures.
    pub async fn get_jobs(&self) -> Result<Vec<Job>, SchedulerError> {
        let mut jobs = self.inner.store.get_all_jobs().await?;
        if self.state() == RunState::Stopped {
            jobs.retain(|job| job.pending);
        }
        Ok(jobs)
    }

    /// Applies the changes a `PATCH P/jobs/<id>` body described: all or nothing.
    ///
    /// # Errors
    /// `Invalid` when the changed script cannot be run, `JobNotFound`; store failures.
    pub async fn modify_job(&self, id: &JobId, changes: JobChanges) -> Result<Job, SchedulerError> {
        let checks_script = changes.func.is_some() || changes.args.is_some();
        if let Some(func) = &changes.func {
            self.inner.executor.check_function(func).await?;
        }
        let job = self
            .write_back(id, |job| {
                let job = changes.clone().apply(job);
                job.policies
                    .check(job.max_instances)
                    .map_err(SchedulerError::Invalid)?;
                self.check_notify(&job)?;
                if checks_script {
                    self.inner.executor.check(&job.func, &job.args)?;
                }
                Ok(job)
            })
            .await?;
        self.inner.wakeup.notify_one();
        Ok(job)
    }

    /// Reads a visible job, changes it with `change` and writes it back; when it was written
    /// in between (`Stale`: by another daemon, or by a due-jobs pass that committed while the
    /// change was computed), reads it again and re-applies the change.
    ///
    /// `change` (which may compute fire times) runs before the jobs lock is taken; the lock
    /// covers the store write alone, so the write never waits behind a trigger computation,
    /// and the compare-and-set on the job's version makes the outcome the same as if it had
    /// been held throughout.
    pub(super) async fn write_back(
        &self,
        id: &str,
        change: impl Fn(&Job) -> Result<Job, SchedulerError>,
    ) -> Result<Job, SchedulerError> {
        let mut attempts = 0;
        loop {
            let mut job = change(&self.visible_job(id).await?)?;
            let view = self.view_for_store(&job);
            let written = {
                let _jobs = self.inner.jobs_lock.lock().await;
                self.inner.store.update_job(&job, &view).await
            };
            match written {
                Err(StoreError::Stale(_)) if attempts < MAX_WRITE_ATTEMPTS => attempts += 1,
                Err(error) => return Err(error.into()),
                Ok(()) => {
                    job.version += 1;
                    self.changed(&job.id);
                    return Ok(job);
                }
            }
        }
    }

    /// Deletes a job. Its running scripts go on.
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn remove_job(&self, id: &JobId) -> Result<(), SchedulerError> {
        self.visible_job(id).await?;
        self.delete(id).await?;
        // Its waiting runs go with it (a job whose trigger ran out keeps them: see queue.rs).
        super::queue::end_waiting(self, id, "the job was removed while the run waited").await
    }

    /// Deletes a stored job, under the jobs lock (its store write alone).
    async fn delete(&self, id: &str) -> Result<(), SchedulerError> {
        {
            let _jobs = self.inner.jobs_lock.lock().await;
            self.inner.store.remove_job(id).await?;
        }
        self.removed(id);
        Ok(())
    }

    pub(super) fn removed(&self, id: &str) {
        self.changed(id);
        self.inner
            .hot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        tracing::info!("Removed job {}", logged(id));
        self.emit(SchedulerEvent::JobRemoved { job_id: id.into() });
    }

    /// Pauses one job: `next_run_time` becomes null.
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn pause_job(&self, id: &JobId) -> Result<Job, SchedulerError> {
        self.write_back(id, |job| {
            let mut job = job.clone();
            job.next_run_time = None;
            Ok(job)
        })
        .await
    }

    /// Resumes one job from now (an interval job keeps its `start_date` grid). A job whose
    /// trigger has no future fire time is deleted and `None` is answered.
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn resume_job(&self, id: &JobId) -> Result<Option<Job>, SchedulerError> {
        let now = self.inner.clock.now();
        let job = self.visible_job(id).await?;
        if job.trigger.next_fire_time(None, now).is_none() {
            self.delete(id).await?;
            return Ok(None);
        }
        let job = self
            .write_back(id, |job| {
                let mut job = job.clone();
                job.next_run_time = job.trigger.next_fire_time(None, now);
                Ok(job)
            })
            .await?;
        self.inner.wakeup.notify_one();
        Ok(Some(job))
    }

    /// Run-now: starts the script at once, outside the schedule (`next_run_time` unchanged,
    /// misfire ignored), and answers once the process has started, with the job and the run
    /// record as it stands then. Works on paused jobs and while the scheduler is stopped or
    /// paused. With `wait`, answers when the run has ended, with the final record.
    ///
    /// A script that cannot run as the job names it (deleted since the job was added, say)
    /// leaves a `failed` record with the reason: with `wait` that record is the answer, as for
    /// a script that started and failed; without, the error names it. A script the server
    /// could not start leaves the same record and is an error either way.
    ///
    /// # Errors
    /// `JobNotFound`; `MaxInstancesReached` at `max_instances`; `Unrunnable` when the job's
    /// script cannot run; `CannotStart` when the server could not start it.
    pub async fn run_job(
        &self,
        id: &JobId,
        wait: bool,
    ) -> Result<(Job, RunRecord), SchedulerError> {
        let job = self.visible_job(id).await?;
        match runner::run_now(self, &job).await? {
            RunNow::Started(started, _) if !wait => Ok((job, started)),
            RunNow::Started(_, ended) => {
                let run = ended.await.map_err(|e| {
                    SchedulerError::Internal(anyhow::anyhow!("run task failed: {e}"))
                })?;
                Ok((job, run))
            }
            RunNow::NotStarted(run, _) if wait => Ok((job, run)),
            RunNow::Shadowed(run) => Ok((job, run)),
            RunNow::NotStarted(run, error) => Err(SchedulerError::Unrunnable {
                message: error.to_string(),
                run_id: run.id.into(),
            }),
        }
    }
}
