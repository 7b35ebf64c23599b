//! The scheduler: keeps jobs in the store and fires them on time through the executor.
//! A port of APScheduler 3.x's `BaseScheduler` (apscheduler.md §5).
//!
//! Time flows one way: the driver (`driver.rs`) is the only code that sleeps; it reads the
//! injected clock and calls [`Scheduler::tick`], which does one `_process_jobs` pass for a
//! given `now`. Tests call `tick` themselves with a [`crate::clock::ManualClock`].

mod driver;
mod error;
mod event;
mod process;
mod runner;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use tokio::sync::{Notify, broadcast};

use crate::clock::Clock;
use crate::executor::{Executor, StopHandle};
use crate::job::{Job, JobChanges, JobDefaults, JobSpec, NextRunTime, RunRecord, RunStatus};
use crate::store::JobStore;

pub use error::SchedulerError;
pub use event::SchedulerEvent;

/// Scheduler state as `GET P` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Not scheduling; jobs added now are pending until `start`.
    Stopped,
    /// Scheduling.
    Running,
    /// Started, but not firing jobs (`POST P/pause`).
    Paused,
}

/// What the scheduler is built from; the app fills it from the config.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// The scheduler's zone: naive times are read in it.
    pub timezone: Tz,
    /// Options jobs get when their body does not say.
    pub job_defaults: JobDefaults,
    /// This daemon's name in run records (the host name).
    pub node: String,
    /// Timeout for runs of jobs that set none (`[executor] timeout`).
    pub default_timeout: Option<Duration>,
    /// How long run records are kept.
    pub history: HistorySettings,
}

/// Retention of run records (`[history]`).
#[derive(Debug, Clone, Copy)]
pub struct HistorySettings {
    /// Finished runs older than this are deleted.
    pub max_age: Duration,
    /// Finished runs of one job beyond the newest this many are deleted.
    pub max_runs_per_job: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            max_age: Duration::from_secs(30 * 86_400),
            max_runs_per_job: 100,
        }
    }
}

/// A cheap-to-clone handle on the scheduler.
#[derive(Clone, Debug)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn JobStore>,
    executor: Executor,
    clock: Arc<dyn Clock>,
    settings: SchedulerSettings,
    /// std Mutex: read and written in short sections, never held across `.await`.
    state: Mutex<RunState>,
    /// When the scheduler last started: fire times before it are handled "at start-up".
    started_at: Mutex<Option<DateTime<Utc>>>,
    /// Serialises read-modify-write of jobs between the API and the due-jobs pass
    /// (APScheduler's `_jobstores_lock`). A tokio Mutex because store calls are awaited.
    jobs_lock: tokio::sync::Mutex<()>,
    /// Wakes the driver when a job changes or the state does.
    wakeup: Notify,
    /// Runs in flight per job id, for `max_instances`. std Mutex: short sections only.
    instances: Mutex<HashMap<String, u32>>,
    /// Stop handles of running scripts by run id (cancel, shutdown).
    running: Mutex<HashMap<String, StopHandle>>,
    /// Signalled whenever a run ends.
    run_ended: Notify,
    events: broadcast::Sender<SchedulerEvent>,
}

impl Scheduler {
    /// A stopped scheduler over `store`, running scripts through `executor`.
    pub fn new(
        store: Arc<dyn JobStore>,
        executor: Executor,
        clock: Arc<dyn Clock>,
        settings: SchedulerSettings,
    ) -> Scheduler {
        let (events, _) = broadcast::channel(1024);
        Scheduler {
            inner: Arc::new(Inner {
                store,
                executor,
                clock,
                settings,
                state: Mutex::new(RunState::Stopped),
                started_at: Mutex::new(None),
                jobs_lock: tokio::sync::Mutex::new(()),
                wakeup: Notify::new(),
                instances: Mutex::new(HashMap::new()),
                running: Mutex::new(HashMap::new()),
                run_ended: Notify::new(),
                events,
            }),
        }
    }

    /// The scheduler's zone: naive times are read in it.
    pub fn timezone(&self) -> Tz {
        self.inner.settings.timezone
    }

    /// `Stopped`, `Running` or `Paused`.
    pub fn state(&self) -> RunState {
        *self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn started_at(&self) -> Option<DateTime<Utc>> {
        *self
            .inner
            .started_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn set_state(&self, state: RunState) {
        *self.inner.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        self.inner.wakeup.notify_one();
    }

    /// Events as they happen (for tests and the run history).
    pub fn subscribe(&self) -> broadcast::Receiver<SchedulerEvent> {
        self.inner.events.subscribe()
    }

    fn emit(&self, event: SchedulerEvent) {
        // No receiver is fine: events are informative.
        let _ = self.inner.events.send(event);
    }

    /// Starts scheduling (`POST P/start`): pending jobs get their first fire time, and the
    /// driver task starts. Runs missed while stopped follow the misfire and coalesce rules.
    ///
    /// # Errors
    /// `AlreadyRunning`; store failures.
    pub async fn start(&self) -> Result<(), SchedulerError> {
        if self.state() != RunState::Stopped {
            return Err(SchedulerError::AlreadyRunning);
        }
        {
            let _jobs = self.inner.jobs_lock.lock().await;
            let now = self.inner.clock.now();
            *self
                .inner
                .started_at
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(now);
            for mut job in self.inner.store.get_all_jobs().await? {
                if job.pending {
                    job.pending = false;
                    if job.next_run_time.is_none() {
                        job.next_run_time = job.trigger.next_fire_time(None, now);
                    }
                    self.inner.store.update_job(&job).await?;
                }
            }
            self.set_state(RunState::Running);
        }
        tracing::info!("Scheduler started");
        tokio::spawn(driver::drive(self.clone()));
        Ok(())
    }

    /// Stops scheduling (`POST P/shutdown`). Stored jobs stay; running scripts go on, and
    /// `wait` waits for them.
    ///
    /// # Errors
    /// `NotRunning`.
    pub async fn shutdown(&self, wait: bool) -> Result<(), SchedulerError> {
        if self.state() == RunState::Stopped {
            return Err(SchedulerError::NotRunning);
        }
        self.set_state(RunState::Stopped);
        tracing::info!("Scheduler has been shut down");
        if wait {
            self.wait_for_runs(None).await;
        }
        Ok(())
    }

    /// Ends the daemon's scheduling: stops the driver, gives running scripts `grace` to end,
    /// then stops them (their runs end `interrupted`), and closes the store.
    pub async fn close(&self, grace: Duration) {
        self.set_state(RunState::Stopped);
        if !self.wait_for_runs(Some(grace)).await {
            let handles: Vec<StopHandle> = self
                .inner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            tracing::warn!("Stopping {} running job(s) at shutdown", handles.len());
            for handle in handles {
                handle.stop(RunStatus::Interrupted);
            }
            self.wait_for_runs(Some(grace)).await;
        }
        self.inner.store.close().await;
    }

    /// Waits until no run is in flight, at most `limit`; true when none is.
    async fn wait_for_runs(&self, limit: Option<Duration>) -> bool {
        let idle = async {
            loop {
                let ended = self.inner.run_ended.notified();
                if self.runs_in_flight() == 0 {
                    return;
                }
                ended.await;
            }
        };
        match limit {
            Some(limit) => tokio::time::timeout(limit, idle).await.is_ok(),
            None => {
                idle.await;
                true
            }
        }
    }

    fn runs_in_flight(&self) -> u32 {
        self.inner
            .instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    /// Pauses job processing (`POST P/pause`); idempotent.
    ///
    /// # Errors
    /// `NotRunning` when stopped.
    pub fn pause(&self) -> Result<(), SchedulerError> {
        match self.state() {
            RunState::Stopped => Err(SchedulerError::NotRunning),
            _ => {
                self.set_state(RunState::Paused);
                Ok(())
            }
        }
    }

    /// Resumes job processing (`POST P/resume`); idempotent.
    ///
    /// # Errors
    /// `NotRunning` when stopped.
    pub fn resume(&self) -> Result<(), SchedulerError> {
        match self.state() {
            RunState::Stopped => Err(SchedulerError::NotRunning),
            _ => {
                self.set_state(RunState::Running);
                Ok(())
            }
        }
    }

    /// Validates a `POST P/jobs` body and adds the job. A failed add leaves nothing behind.
    /// While the scheduler is stopped the job is stored as pending (APScheduler's pending
    /// jobs, but persisted): its first fire time is computed at `start`.
    ///
    /// # Errors
    /// `Invalid` with the reference's text; `ConflictingId` unless `replace_existing`.
    pub async fn add_job(&self, body: Value) -> Result<Job, SchedulerError> {
        let now = self.inner.clock.now();
        let spec = JobSpec::parse(
            &body,
            &self.inner.settings.job_defaults,
            self.timezone(),
            now,
        )?;
        self.inner.executor.check(&spec.job.func, &spec.job.args)?;
        let _jobs = self.inner.jobs_lock.lock().await;
        let replace_existing = spec.replace_existing;
        let job = self.place(spec, now);
        if replace_existing {
            self.inner.store.replace_job(&job).await?;
        } else {
            self.inner.store.add_job(&job).await?;
        }
        self.added(&job);
        Ok(job)
    }

    /// Adds a `[[jobs]]` entry from the config at start-up: replaced when it says
    /// `replace_existing`, otherwise added only if no job has its id (a restart keeps the
    /// stored job and its schedule).
    ///
    /// # Errors
    /// As [`Scheduler::add_job`].
    pub async fn add_config_job(&self, body: Value) -> Result<(), SchedulerError> {
        match self.add_job(body).await {
            Err(SchedulerError::ConflictingId(id)) => {
                tracing::info!("Job {id} from the config is already stored; keeping it");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// The job a spec describes, with its first `next_run_time` (none yet while stopped).
    fn place(&self, spec: JobSpec, now: DateTime<Utc>) -> Job {
        let mut job = spec.job;
        if self.state() == RunState::Stopped {
            job.pending = true;
            job.next_run_time = match spec.next_run_time {
                NextRunTime::At(time) => Some(time),
                _ => None,
            };
        } else {
            job.next_run_time = match spec.next_run_time {
                NextRunTime::Compute => job.trigger.next_fire_time(None, now),
                NextRunTime::Paused => None,
                NextRunTime::At(time) => Some(time),
            };
        }
        job
    }

    fn added(&self, job: &Job) {
        tracing::info!("Added job \"{}\" to job store \"default\"", job.name);
        self.emit(SchedulerEvent::JobAdded {
            job_id: job.id.clone(),
        });
        self.inner.wakeup.notify_one();
    }

    /// Looks a job up as the API may see it: while stopped only pending jobs are visible, as
    /// in APScheduler (whose stores are not open then).
    async fn visible_job(&self, id: &str) -> Result<Job, SchedulerError> {
        match self.inner.store.lookup_job(id).await? {
            Some(job) if job.pending || self.state() != RunState::Stopped => Ok(job),
            _ => Err(SchedulerError::JobNotFound(id.to_owned())),
        }
    }

    /// One job.
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn get_job(&self, id: &str) -> Result<Job, SchedulerError> {
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

    /// Validates a `PATCH P/jobs/<id>` body and applies it: all or nothing.
    ///
    /// # Errors
    /// `Invalid`, `JobNotFound`; store failures.
    pub async fn modify_job(&self, id: &str, body: Value) -> Result<Job, SchedulerError> {
        let now = self.inner.clock.now();
        let changes = JobChanges::parse(&body, self.timezone(), now)?;
        let _jobs = self.inner.jobs_lock.lock().await;
        let job = self.visible_job(id).await?;
        let checks_script = changes.func.is_some() || changes.args.is_some();
        let job = changes.apply(&job, now);
        if checks_script {
            self.inner.executor.check(&job.func, &job.args)?;
        }
        self.inner.store.update_job(&job).await?;
        self.inner.wakeup.notify_one();
        Ok(job)
    }

    /// Deletes a job. Its running scripts go on.
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn remove_job(&self, id: &str) -> Result<(), SchedulerError> {
        let _jobs = self.inner.jobs_lock.lock().await;
        self.visible_job(id).await?;
        self.inner.store.remove_job(id).await?;
        self.removed(id);
        Ok(())
    }

    fn removed(&self, id: &str) {
        tracing::info!("Removed job {id}");
        self.emit(SchedulerEvent::JobRemoved {
            job_id: id.to_owned(),
        });
    }

    /// Pauses one job: `next_run_time` becomes null.
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn pause_job(&self, id: &str) -> Result<Job, SchedulerError> {
        let _jobs = self.inner.jobs_lock.lock().await;
        let mut job = self.visible_job(id).await?;
        job.next_run_time = None;
        self.inner.store.update_job(&job).await?;
        Ok(job)
    }

    /// Resumes one job from now (an interval job keeps its `start_date` grid). A job whose
    /// trigger has no future fire time is deleted and `None` is answered.
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn resume_job(&self, id: &str) -> Result<Option<Job>, SchedulerError> {
        let now = self.inner.clock.now();
        let _jobs = self.inner.jobs_lock.lock().await;
        let mut job = self.visible_job(id).await?;
        job.next_run_time = job.trigger.next_fire_time(None, now);
        if job.next_run_time.is_none() {
            self.inner.store.remove_job(id).await?;
            self.removed(id);
            return Ok(None);
        }
        self.inner.store.update_job(&job).await?;
        self.inner.wakeup.notify_one();
        Ok(Some(job))
    }

    /// Run-now: starts the script at once, outside the schedule (`next_run_time` unchanged,
    /// misfire ignored), and answers once the process has started, with the job and the run
    /// record as it stands then. Works on paused jobs and while the scheduler is stopped or
    /// paused. With `wait`, answers when the run has ended, with the final record.
    ///
    /// # Errors
    /// `JobNotFound`; `Busy` at `max_instances`; `Invalid` when the script cannot start.
    pub async fn run_job(&self, id: &str, wait: bool) -> Result<(Job, RunRecord), SchedulerError> {
        let job = self.visible_job(id).await?;
        let (started, ended) = runner::run_now(self, &job).await?;
        if !wait {
            return Ok((job, started));
        }
        let run = ended
            .await
            .map_err(|e| SchedulerError::Internal(anyhow::anyhow!("run task failed: {e}")))?;
        Ok((job, run))
    }

    /// One run record.
    ///
    /// # Errors
    /// `RunNotFound`; store failures.
    pub async fn get_run(&self, run_id: &str) -> Result<RunRecord, SchedulerError> {
        self.inner
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| SchedulerError::RunNotFound(run_id.to_owned()))
    }

    /// A job's runs, newest first: at most `limit`, older than run `before` when given. The
    /// runs of a deleted job stay readable until retention removes them.
    ///
    /// # Errors
    /// `JobNotFound` when the job is unknown and has no runs; store failures.
    pub async fn get_runs(
        &self,
        job_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<RunRecord>, SchedulerError> {
        let runs = self.inner.store.get_runs(job_id, limit, before).await?;
        if runs.is_empty()
            && before.is_none()
            && self.inner.store.lookup_job(job_id).await?.is_none()
        {
            return Err(SchedulerError::JobNotFound(job_id.to_owned()));
        }
        Ok(runs)
    }

    /// Cancels a running script (SIGTERM to its process group, SIGKILL after the kill grace)
    /// and answers its record once it has ended (`cancelled`).
    ///
    /// # Errors
    /// `RunNotFound`; `Busy` when the run is not running.
    pub async fn cancel_run(&self, run_id: &str) -> Result<RunRecord, SchedulerError> {
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
            return Err(SchedulerError::Busy(format!(
                "Run {run_id} is not running (it is {})",
                run.status.as_str()
            )));
        };
        handle.stop(RunStatus::Cancelled);
        loop {
            match events.recv().await {
                Ok(SchedulerEvent::RunFinished { run, .. }) if run.id == run_id => return Ok(run),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return self.get_run(run_id).await,
            }
        }
    }

    /// Marks runs this node left `running` (it crashed or was killed) as `interrupted`.
    /// Called once at boot, before the scheduler starts.
    ///
    /// # Errors
    /// Store failures.
    pub async fn recover(&self) -> Result<u64, SchedulerError> {
        let count = self
            .inner
            .store
            .interrupt_runs(
                &self.inner.settings.node,
                "tickd stopped while the run was in progress (found at start-up)",
                self.inner.clock.now(),
            )
            .await?;
        if count > 0 {
            tracing::warn!("{count} run(s) left running by a previous tickd marked interrupted");
        }
        Ok(count)
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
        Ok(count)
    }

    /// Starts the retention sweep: now, then every `every`, for the process's life.
    pub fn spawn_retention(&self, every: Duration) {
        let scheduler = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = scheduler.prune_runs(scheduler.inner.clock.now()).await {
                    tracing::error!("Run retention sweep failed: {error:#}");
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// One due-jobs pass for `now` (APScheduler's `_process_jobs`): submits every due run,
    /// advances each job's `next_run_time` (or removes a finished job), and answers when the
    /// next pass is due. Never sleeps and never reads the clock.
    ///
    /// # Errors
    /// Store failures (the driver retries).
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, SchedulerError> {
        process::process_due_jobs(self, now).await
    }
}
