//! The scheduler: keeps jobs in the store and fires them on time through the executor.
//! A port of APScheduler 3.x's `BaseScheduler` (apscheduler.md §5).
//!
//! Time flows one way: the driver (`driver.rs`) is the only code that sleeps; it reads the
//! injected clock and calls [`Scheduler::tick`], which does one `_process_jobs` pass for a
//! given `now`. Tests call `tick` themselves with a [`crate::clock::ManualClock`].

mod cache;
mod cluster;
mod driver;
mod error;
mod event;
mod history;
mod jobs;
mod listing;
mod live;
mod liveness;
mod metrics;
mod notifications;
mod preview;
mod process;
mod queue;
mod runlog;
mod runner;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures_util::TryStreamExt;
use tokio::sync::{Notify, broadcast};

use crate::clock::Clock;
use crate::executor::{Executor, StopHandle};
use crate::job::{Job, JobDefaults, JobId, RunId, RunStatus};
use crate::store::{Store, ViewFilter};

pub use crate::store::{NodeRecord, RunFilter};
pub use cluster::HEARTBEAT_EVERY;
pub use error::SchedulerError;
pub use event::SchedulerEvent;
pub use listing::JobsListing;
pub use live::{OutputEvent, RunOutput};
pub use liveness::{DriverHealth, Watchdog};
pub use preview::{MAX_PREVIEW_TIMES, Preview};

/// Scheduler state as `GET P` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RunState {
    /// Not scheduling; jobs added now are pending until `start`.
    Stopped,
    /// Scheduling.
    Running,
    /// Started, but not firing jobs (`POST P/pause`).
    Paused,
}

impl RunState {
    /// The state stored as `value` (`RunState as u8`).
    fn from_u8(value: u8) -> RunState {
        match value {
            1 => RunState::Running,
            2 => RunState::Paused,
            _ => RunState::Stopped,
        }
    }
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
    /// Shadow mode (`[scheduler] shadow`): fires are recorded as `skipped` runs with the
    /// reason [`SHADOW_REASON`], and no script runs, run-now's included.
    pub shadow: bool,
}

/// The reason on the run records of shadow mode.
pub const SHADOW_REASON: &str = "shadow";

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

/// [`Inner::next_wake`] while the driver is not sleeping.
const AWAKE: i64 = i64::MIN;

/// APScheduler's `_jobstores_lock`, in two strengths, held for store writes only. Writing a
/// changed job back, deleting or replacing one, and committing a chunk of the due-jobs pass
/// take it alone; adding a new job only shares it, with other adds: an insert overwrites
/// nothing, and concurrent inserts are what lets the store commit them together.
///
/// Unlike APScheduler's, it is never held while a fire time is computed: the API computes
/// its change first, the pass decides its batch first, and each writes compare-and-set on
/// the job's version, so a write that lost a race is redone from what is stored (see
/// `process.rs`). An API write waits at most for one chunk of a pass's database work.
#[derive(Debug, Default)]
struct JobsLock(tokio::sync::RwLock<()>);

impl JobsLock {
    /// Alone: for writing back changed jobs, and a pass's commits.
    async fn lock(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.0.write().await
    }

    /// Shared with other inserts.
    async fn share(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.0.read().await
    }
}

/// Renders the object the API answers for a job. The scheduler renders every job it writes
/// and hands the text to the store with the job, so a store that keeps it answers listings
/// without decoding; the rendering itself is the API's (`api::view::render`).
pub type Render = fn(&Job) -> String;

/// A cheap-to-clone handle on the scheduler.
#[derive(Clone, Debug)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    /// Renders the object the API answers for a job (the API's [`Render`]).
    render: Render,
    executor: Executor,
    clock: Arc<dyn Clock>,
    settings: SchedulerSettings,
    /// A [`RunState`] as a number: every `GET P` reads it, so it is an atomic rather than a
    /// lock that two requests could contend for. Transitions are made by `start`, `pause`,
    /// `resume` and `shutdown` only, each a single store.
    state: AtomicU8,
    /// When the scheduler last started: fire times before it are handled "at start-up".
    started_at: Mutex<Option<DateTime<Utc>>>,
    /// Serialises this daemon's job writes between the API and the due-jobs pass
    /// (APScheduler's `_jobstores_lock`, held for the writes only: see [`JobsLock`]).
    jobs_lock: JobsLock,
    /// Until when the driver sleeps (µs since the epoch), [`AWAKE`] while it works: a job
    /// added with a later first fire time need not wake it.
    next_wake: AtomicI64,
    /// Wakes the driver when a job changes or the state does.
    wakeup: Notify,
    /// Whether the driver task was spawned: one per scheduler, from the first start (or
    /// [`Scheduler::spawn_driver`]) until [`Scheduler::close`].
    driver_spawned: AtomicBool,
    /// True while [`Scheduler::start`] gives pending jobs their first fire times: the state
    /// says running (adds must see it) but the driver runs no pass until start is done.
    starting: AtomicBool,
    /// The driver's last completed turn and the watchdog it pets (`liveness.rs`).
    liveness: liveness::Liveness,
    /// Runs in flight per job id, for `max_instances`. std Mutex: short sections only.
    instances: Mutex<HashMap<JobId, u32>>,
    /// Jobs due again by the end of the pass that last handled them: their fire times come
    /// faster than passes, and the next pass catches them up as far behind (`process.rs`).
    /// std Mutex: short sections only.
    hot: Mutex<HashSet<JobId>>,
    /// Stop handles of running scripts by run id (cancel, shutdown).
    running: Mutex<HashMap<RunId, StopHandle>>,
    /// Output feeds of running scripts by run id, for their followers (`live.rs`).
    live: live::LiveRegistry,
    /// Signalled whenever a run ends.
    run_ended: Notify,
    /// Held through a due-jobs pass (`process.rs`).
    pass_lock: tokio::sync::Mutex<()>,
    /// Whether a queued run waits for an instance place here: then a run's end wakes the
    /// driver to start it (`queue.rs`).
    queue_blocked: AtomicBool,
    /// Whether queued runs may exist: a pass reads them only then (or on a shared store,
    /// where other daemons queue runs too), so that a daemon whose jobs never queue pays no
    /// query for them. True at start (runs queued before a restart), set whenever a run is
    /// queued here, cleared by a pass that finds none.
    queued_maybe: AtomicBool,
    /// Runs stopped because a newer run replaces them (`overlap: replace`), with the reason
    /// their record gets instead of "cancelled through the API". std Mutex: short sections.
    replaced: Mutex<HashMap<RunId, String>>,
    /// This daemon process's id in the store (heartbeats, run ownership).
    node_id: String,
    /// When this daemon process started.
    node_started: DateTime<Utc>,
    /// Rendered jobs and listing read lately, for the API's reads; `None` on a shared store.
    cache: Option<cache::ReadCache>,
    /// Flips to true at [`Scheduler::close`]; background tasks (heartbeat, retention) end.
    closed: tokio::sync::watch::Sender<bool>,
    events: broadcast::Sender<SchedulerEvent>,
    /// Where failures and the like are told, when webhooks are configured
    /// (`notifications.rs`).
    notifier: std::sync::OnceLock<Arc<crate::notify::Notifier>>,
    /// Where events are counted, when metrics are on (`metrics.rs`).
    metrics: std::sync::OnceLock<crate::metrics::Metrics>,
    /// The last count of jobs by state for the metrics, one count at a time.
    last_count: tokio::sync::Mutex<metrics::LastCount>,
}

impl Scheduler {
    /// A stopped scheduler over `store`, running scripts through `executor`.
    pub fn new(
        store: Arc<dyn Store>,
        executor: Executor,
        clock: Arc<dyn Clock>,
        settings: SchedulerSettings,
        render: Render,
    ) -> Scheduler {
        let (events, _) = broadcast::channel(1024);
        let node_started = clock.now();
        let cache = (!store.shared()).then(cache::ReadCache::default);
        Scheduler {
            inner: Arc::new(Inner {
                store,
                render,
                executor,
                clock,
                settings,
                state: AtomicU8::new(RunState::Stopped as u8),
                started_at: Mutex::new(None),
                jobs_lock: JobsLock::default(),
                next_wake: AtomicI64::new(AWAKE),
                wakeup: Notify::new(),
                driver_spawned: AtomicBool::new(false),
                starting: AtomicBool::new(false),
                liveness: liveness::Liveness::default(),
                instances: Mutex::new(HashMap::new()),
                hot: Mutex::new(HashSet::new()),
                running: Mutex::new(HashMap::new()),
                live: live::LiveRegistry::default(),
                run_ended: Notify::new(),
                pass_lock: tokio::sync::Mutex::new(()),
                queue_blocked: AtomicBool::new(false),
                queued_maybe: AtomicBool::new(true),
                replaced: Mutex::new(HashMap::new()),
                node_id: uuid::Uuid::now_v7().to_string(),
                node_started,
                cache,
                closed: tokio::sync::watch::Sender::new(false),
                events,
                notifier: std::sync::OnceLock::new(),
                metrics: std::sync::OnceLock::new(),
                last_count: tokio::sync::Mutex::default(),
            }),
        }
    }

    /// The scripts a job may name, at most `limit` (the console's New-job form). Reads the
    /// file system: call it off the async threads (`spawn_blocking`).
    pub fn scripts(&self, limit: usize) -> crate::executor::ScriptList {
        self.inner.executor.scripts(limit)
    }

    /// The scheduler's zone: naive times are read in it.
    pub fn timezone(&self) -> Tz {
        self.inner.settings.timezone
    }

    /// A job was written or deleted: its cached rendering and the cached listing go.
    fn changed(&self, id: &str) {
        if let Some(cache) = &self.inner.cache {
            cache.changed(id);
        }
    }

    /// The ids of pending jobs.
    async fn pending_ids(&self) -> Result<Vec<String>, SchedulerError> {
        let mut views = self.inner.store.stream_job_views(ViewFilter::Pending);
        let mut ids = Vec::new();
        while let Some(view) = views.try_next().await? {
            ids.push(view.id);
        }
        Ok(ids)
    }

    /// The object the API answers for `job`.
    pub(super) fn render(&self, job: &Job) -> String {
        (self.inner.render)(job)
    }

    /// `job`'s view for a write to the store: rendered only for a store that keeps it.
    pub(super) fn view_for_store(&self, job: &Job) -> String {
        if self.inner.store.keeps_views() {
            self.render(job)
        } else {
            String::new()
        }
    }

    /// Wakes the driver if a job's (new) next fire time comes before the driver's wake-up.
    fn wake_for(&self, next_run_time: Option<i64>) {
        let Some(next) = next_run_time else {
            return;
        };
        let planned = self.inner.next_wake.load(Ordering::SeqCst);
        if planned == AWAKE || next < planned {
            self.inner.wakeup.notify_one();
        }
    }

    /// The scheduler's clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// `Stopped`, `Running` or `Paused`.
    pub fn state(&self) -> RunState {
        RunState::from_u8(self.inner.state.load(Ordering::Acquire))
    }

    fn started_at(&self) -> Option<DateTime<Utc>> {
        *self
            .inner
            .started_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn set_state(&self, state: RunState) {
        self.inner.state.store(state as u8, Ordering::Release);
        self.inner.wakeup.notify_one();
    }

    /// Events as they happen (for tests and the run history).
    pub fn subscribe(&self) -> broadcast::Receiver<SchedulerEvent> {
        self.inner.events.subscribe()
    }

    fn emit(&self, event: SchedulerEvent) {
        self.count(&event);
        // No receiver is fine: events are informative.
        let _ = self.inner.events.send(event);
    }

    /// Starts scheduling (`POST P/start`): pending jobs get their first fire time, and the
    /// driver task starts. Runs missed while stopped follow the misfire and coalesce rules
    /// (a job far behind is caught up in bounded work, as in any pass: see `process.rs`).
    ///
    /// The state flips under the jobs lock, held alone and briefly: adds in flight (which
    /// share it) finish first and store their jobs pending, to be listed below; adds after it
    /// see the scheduler running and compute their own first fire time. The pending jobs' first
    /// fire times are then computed without the lock and written compare-and-set, so a
    /// daemon starting with many stored jobs answers API writes meanwhile.
    ///
    /// # Errors
    /// `AlreadyRunning`; store failures (the scheduler is then stopped again).
    pub async fn start(&self) -> Result<(), SchedulerError> {
        let now = self.inner.clock.now();
        {
            let _jobs = self.inner.jobs_lock.lock().await;
            if self.state() != RunState::Stopped {
                return Err(SchedulerError::AlreadyRunning);
            }
            *self
                .inner
                .started_at
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(now);
            self.inner.starting.store(true, Ordering::SeqCst);
            self.set_state(RunState::Running);
        }
        let scheduled = self.schedule_pending(now).await;
        self.inner.starting.store(false, Ordering::SeqCst);
        if let Err(error) = scheduled {
            self.set_state(RunState::Stopped);
            return Err(error);
        }
        tracing::info!("Scheduler started");
        self.spawn_driver();
        // A driver that was already turning (a stopped scheduler's) runs its first pass now.
        self.inner.wakeup.notify_one();
        Ok(())
    }

    /// Starts the driver task unless it runs already. [`Scheduler::start`] does; the app
    /// does too when the scheduler stays stopped, so that readiness and the watchdog see a
    /// loop that turns (a stopped scheduler's loop runs no pass). It ends at
    /// [`Scheduler::close`].
    pub fn spawn_driver(&self) {
        if !self.inner.driver_spawned.swap(true, Ordering::SeqCst) {
            tokio::spawn(driver::drive(self.clone()));
        }
    }

    /// Has the driver pet `watchdog` at least every `watchdog.every` (it then sleeps no
    /// longer than that). Call before the driver starts; only the first one set counts.
    pub fn set_watchdog(&self, watchdog: Watchdog) -> bool {
        self.inner.liveness.set_watchdog(watchdog)
    }

    /// The driver loop's health now: the age of its last completed turn and its bound.
    pub fn driver_health(&self) -> DriverHealth {
        self.inner
            .liveness
            .health(driver::max_wait(self), std::time::Instant::now())
    }

    /// Runs in flight on this daemon now.
    pub fn running_count(&self) -> u32 {
        self.runs_in_flight()
    }

    /// How many jobs the store holds (for systemd's `STATUS=`).
    ///
    /// # Errors
    /// Store failures.
    pub async fn job_count(&self) -> Result<u64, SchedulerError> {
        let counts = self.inner.store.count_jobs().await?;
        Ok(counts.scheduled + counts.paused + counts.pending)
    }

    /// Gives every pending job its first fire time (a `next_run_time` given at add is kept).
    async fn schedule_pending(&self, now: DateTime<Utc>) -> Result<(), SchedulerError> {
        // Pending jobs have no next fire time and a rendering without one: only those few are
        // decoded.
        for id in self.pending_ids().await? {
            let scheduled = self
                .write_back(&id, |job| {
                    let mut job = job.clone();
                    if job.pending {
                        job.pending = false;
                        if job.next_run_time.is_none() {
                            job.next_run_time = job.trigger.next_fire_time(None, now);
                        }
                    }
                    Ok(job)
                })
                .await;
            match scheduled {
                // Deleted meanwhile.
                Ok(_) | Err(SchedulerError::JobNotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
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
        // Closed first: the driver, woken by the state's change, sees it and ends.
        self.inner.closed.send_replace(true);
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
        self.leave_cluster().await;
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

    /// Runs `tick` every `every` until the scheduler is closed (heartbeat, retention).
    fn spawn_periodic<F, Fut>(&self, every: Duration, tick: F)
    where
        F: Fn(Scheduler) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let scheduler = self.clone();
        let mut closed = self.inner.closed.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => tick(scheduler.clone()).await,
                    changed = closed.changed() => {
                        if changed.is_err() || *closed.borrow() {
                            break;
                        }
                    }
                }
            }
        });
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

    /// One due-jobs pass for `now` (APScheduler's `_process_jobs`): submits every due run,
    /// advances each job's `next_run_time` (or removes a finished job), and answers when the
    /// next pass is due. Never sleeps and never reads the clock.
    ///
    /// # Errors
    /// Store failures (the driver retries).
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, SchedulerError> {
        Ok(process::process_due_jobs(self, now, now).await?.next)
    }
}
