//! Running a job's scripts: the part of APScheduler's executor `run_job` that belongs to the
//! scheduler (the misfire check when a run gets a pool slot, the instance count, the log
//! lines, the run record), around the executor's subprocess handling.
//!
//! The job's `label` in the log lines is [`Job::describe`] with the job's next fire time:
//! for a scheduled run, the one after this run's (the claim has advanced the job), or none
//! left; for run-now, the job's own, which run-now leaves unchanged.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::TimeDelta;

use super::runlog::{self, python_timedelta};
use super::{Scheduler, SchedulerError, SchedulerEvent};
use crate::executor::{ExecutorError, RunOutcome, RunRequest, RunningScript, Slot};
use crate::job::{Job, JobId, RunCause, RunRecord, RunStatus};
use crate::store::StoreError;
use crate::telemetry::logged;

/// Takes one of the job's `max_instances` places; false when all are taken.
pub(super) fn reserve_instance(scheduler: &Scheduler, job: &Job) -> bool {
    let mut instances = scheduler
        .inner
        .instances
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let count = instances.entry(job.id.clone()).or_insert(0);
    if *count >= job.max_instances {
        return false;
    }
    *count += 1;
    true
}

/// How many of the job's `max_instances` places are free here now.
pub(super) fn free_instances(scheduler: &Scheduler, job: &Job) -> u32 {
    let instances = scheduler
        .inner
        .instances
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    job.max_instances
        .saturating_sub(instances.get(&job.id).copied().unwrap_or(0))
}

/// Gives back a place taken by [`reserve_instance`].
pub(super) fn release_instance(scheduler: &Scheduler, job_id: &str) {
    {
        let mut instances = scheduler
            .inner
            .instances
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = instances.get_mut(job_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                instances.remove(job_id);
            }
        }
    }
    scheduler.inner.run_ended.notify_waiters();
    if scheduler.inner.queue_blocked.load(Ordering::SeqCst) {
        // A queued run waits for this place.
        scheduler.inner.wakeup.notify_one();
    }
}

/// Releases the instance place when dropped, so a panicking or cancelled run task cannot
/// leak it.
struct InstanceGuard {
    scheduler: Scheduler,
    job_id: JobId,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        release_instance(&self.scheduler, &self.job_id);
    }
}

/// Runs a submission: each run in turn, each waiting for a pool slot and then checked
/// against `misfire_grace_time` at the moment it could start (as APScheduler does). Each run
/// is carried in a task of its own ([`supervised`]), so whatever befalls one, its record
/// ends and the next run goes ahead.
pub(super) async fn run_scheduled(
    scheduler: Scheduler,
    job: Job,
    label: String,
    runs: Vec<RunRecord>,
) {
    let _guard = InstanceGuard {
        scheduler: scheduler.clone(),
        job_id: job.id.clone(),
    };
    for run in runs {
        let work = run_scheduled_one(scheduler.clone(), job.clone(), label.clone(), run.clone());
        supervised(&scheduler, &job, &label, run, work).await;
    }
}

/// A queued run this daemon took ([`super::queue::start_due`]), its instance place reserved:
/// a pool slot and the script, with no misfire check (the decision to run it was made on
/// time; it waited for its delay or its turn).
pub(super) async fn run_queued(scheduler: Scheduler, job: Job, run: RunRecord) {
    let _guard = InstanceGuard {
        scheduler: scheduler.clone(),
        job_id: job.id.clone(),
    };
    let label = job.describe();
    let work = {
        let (scheduler, job, label, mut run) =
            (scheduler.clone(), job.clone(), label.clone(), run.clone());
        async move {
            let slot = scheduler.inner.executor.acquire_slot().await;
            match start(&scheduler, &job, &label, &mut run, slot).await {
                Ok(script) => finish(&scheduler, &job, &label, run, script).await,
                Err(_) => run,
            }
        }
    };
    supervised(&scheduler, &job, &label, run, work).await;
}

/// One scheduled run: a pool slot, the misfire check, the script.
async fn run_scheduled_one(
    scheduler: Scheduler,
    job: Job,
    label: String,
    mut run: RunRecord,
) -> RunRecord {
    let slot = scheduler.inner.executor.acquire_slot().await;
    let now = scheduler.inner.clock.now();
    let scheduled = run.scheduled_run_time.unwrap_or_else(|| now.fixed_offset());
    let late_by = now - scheduled.to_utc();
    if let Some(grace) = job.misfire_grace()
        && late_by > grace
    {
        let late = python_timedelta(late_by);
        tracing::warn!(job_id = %logged(&job.id), run_id = %run.id, "Run time of job \"{label}\" was missed by {late}");
        run.status = RunStatus::Missed;
        run.finished_at = Some(now);
        run.reason = Some(missed_reason(late_by, Some(grace)));
        save(&scheduler, &run).await;
        super::notifications::missed(&scheduler, &job, &run, 1);
        scheduler.emit(SchedulerEvent::JobMissed {
            job_id: job.id.clone(),
            run_id: run.id.clone(),
            scheduled,
        });
        return run;
    }
    match start(&scheduler, &job, &label, &mut run, slot).await {
        Ok(script) => finish(&scheduler, &job, &label, run, script).await,
        Err(_) => run,
    }
}

/// Carries a run whose record is in the store (`running`) through `work`, in a task of its
/// own: if the task fails (a panic anywhere in it), the record still ends, `failed` with the
/// reason, its script is no longer cancellable, and whoever waits for its end hears of it.
/// Answers the record as it ended.
async fn supervised(
    scheduler: &Scheduler,
    job: &Job,
    label: &str,
    run: RunRecord,
    work: impl Future<Output = RunRecord> + Send + 'static,
) -> RunRecord {
    match tokio::spawn(work).await {
        Ok(ended) => ended,
        Err(failure) => {
            let why = if failure.is_panic() {
                format!("its run task failed ({})", panic_text(failure.into_panic()))
            } else {
                "its run task was cancelled".to_owned()
            };
            end_failed(scheduler, job, label, run, &why).await
        }
    }
}

/// Ends a run that tickd itself could not carry through: `failed`, with `why` in the reason
/// (unless the record shows it ended after all), logged and announced like any run's end.
async fn end_failed(
    scheduler: &Scheduler,
    job: &Job,
    label: &str,
    mut run: RunRecord,
    why: &str,
) -> RunRecord {
    if let Some(handle) = scheduler
        .inner
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&run.id)
    {
        // The script, if it is still there, goes with the run it no longer belongs to.
        handle.stop(RunStatus::Failed);
    }
    if let Ok(Some(stored)) = scheduler.inner.store.get_run(&run.id).await
        && stored.status != RunStatus::Running
    {
        return stored;
    }
    let now = scheduler.inner.clock.now();
    run.status = RunStatus::Failed;
    run.finished_at = Some(now);
    run.reason = Some(format!("tickd could not run the job: {why}"));
    record_end(scheduler, job, label, run).await
}

/// A panic's message, when it has one.
fn panic_text(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// What run-now did.
pub(super) enum RunNow {
    /// The script started: its record as it stands then, and a handle on its end.
    Started(RunRecord, tokio::task::JoinHandle<RunRecord>),
    /// The script cannot run as the job names it: its record, ended `failed` with the
    /// reason, and why ([`ExecutorError::Invalid`]).
    NotStarted(RunRecord, ExecutorError),
    /// Shadow mode: the run was recorded, `skipped`, and nothing ran.
    Shadowed(RunRecord),
}

/// A new record of a run-now of `job`, made by this daemon at `now`.
fn run_now_record(
    scheduler: &Scheduler,
    job: &Job,
    status: RunStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> RunRecord {
    RunRecord::new(
        now,
        &job.id,
        None,
        status,
        RunCause::RunNow,
        &scheduler.inner.settings.node,
        &scheduler.inner.node_id,
    )
}

/// Run-now in shadow mode: the run is recorded, `skipped` with the reason
/// [`SHADOW_REASON`](super::SHADOW_REASON), as a scheduled fire would be; nothing runs.
async fn shadowed(scheduler: &Scheduler, job: &Job) -> Result<RunNow, SchedulerError> {
    let now = scheduler.inner.clock.now();
    let mut run = run_now_record(scheduler, job, RunStatus::Skipped, now);
    run.finished_at = Some(now);
    run.reason = Some(super::SHADOW_REASON.to_owned());
    scheduler.inner.store.insert_run(&run).await?;
    report_shadowed(scheduler, job, &job.describe(), [run.clone()]);
    Ok(RunNow::Shadowed(run))
}

/// Says that `runs` of `job` (labelled `label`) were recorded and not started, shadow mode
/// being on: a log line, and an event per run (counted as `skipped`).
pub(super) fn report_shadowed(
    scheduler: &Scheduler,
    job: &Job,
    label: &str,
    runs: impl IntoIterator<Item = RunRecord>,
) {
    tracing::info!(
        job_id = %logged(&job.id),
        "Run of job \"{label}\" recorded, not started: shadow mode ([scheduler] shadow)"
    );
    for run in runs {
        scheduler.emit(SchedulerEvent::JobShadowed {
            job_id: job.id.clone(),
            scheduled: run.scheduled_or_created(),
            run_id: run.id,
        });
    }
}

/// Run-now: starts at once (a free slot is awaited), outside the schedule. A run whose
/// script cannot start is recorded all the same (`failed`, with the reason), as a scheduled
/// one is: it is history worth keeping, and the answer names it. The run is carried by a
/// task of its own ([`supervised`]): nothing that befalls it can leave its record `running`.
///
/// # Errors
/// `MaxInstancesReached`; `CannotStart` when the server could not start the script (its
/// record ended `failed` all the same); the store's errors.
pub(super) async fn run_now(scheduler: &Scheduler, job: &Job) -> Result<RunNow, SchedulerError> {
    if scheduler.inner.settings.shadow {
        return shadowed(scheduler, job).await;
    }
    if !reserve_instance(scheduler, job) {
        return Err(SchedulerError::MaxInstancesReached {
            job_id: job.id.to_string(),
            max_instances: job.max_instances,
        });
    }
    let guard = InstanceGuard {
        scheduler: scheduler.clone(),
        job_id: job.id.clone(),
    };
    let slot = scheduler.inner.executor.acquire_slot().await;
    let now = scheduler.inner.clock.now();
    let mut run = run_now_record(scheduler, job, RunStatus::Running, now);
    run.started_at = Some(now);
    scheduler.inner.store.insert_run(&run).await?;
    let label = job.describe();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let work = {
        let (scheduler, job, label, mut run) =
            (scheduler.clone(), job.clone(), label.clone(), run.clone());
        async move {
            match start(&scheduler, &job, &label, &mut run, slot).await {
                Ok(script) => {
                    let _ = started_tx.send(Ok(run.clone()));
                    finish(&scheduler, &job, &label, run, script).await
                }
                Err(error) => {
                    let _ = started_tx.send(Err(error));
                    run
                }
            }
        }
    };
    let ended = {
        let (scheduler, job) = (scheduler.clone(), job.clone());
        tokio::spawn(async move {
            let _guard = guard;
            supervised(&scheduler, &job, &label, run, work).await
        })
    };
    match started_rx.await {
        Ok(Ok(started)) => Ok(RunNow::Started(started, ended)),
        Ok(Err(error)) => {
            let run = ended_record(ended).await?;
            match error {
                ExecutorError::Invalid(_) => Ok(RunNow::NotStarted(run, error)),
                // The server's fault, not the client's, with or without `wait`.
                _ => Err(SchedulerError::CannotStart {
                    run_id: run.id.into(),
                    source: error,
                }),
            }
        }
        // The run's task failed before the script started: a fault of tickd's (500), and
        // the record it leaves says so.
        Err(_) => {
            let run = ended_record(ended).await?;
            Err(SchedulerError::Internal(anyhow::anyhow!(
                "run {} of job {}: {}",
                run.id,
                logged(&run.job_id),
                run.reason.as_deref().unwrap_or("its run task failed")
            )))
        }
    }
}

/// The record a supervised run ended with.
async fn ended_record(
    ended: tokio::task::JoinHandle<RunRecord>,
) -> Result<RunRecord, SchedulerError> {
    ended
        .await
        .map_err(|e| SchedulerError::Internal(anyhow::anyhow!("run task failed: {e}")))
}

/// When a run claimed ahead of its fire time (`process::LOOK_AHEAD`) may start: its fire
/// time on the monotonic clock; `None` for a run whose time has come.
fn not_before(scheduler: &Scheduler, run: &RunRecord) -> Option<std::time::Instant> {
    let scheduled = run.scheduled_run_time?.to_utc();
    let ahead = (scheduled - scheduler.inner.clock.now()).to_std().ok()?;
    (!ahead.is_zero()).then(|| std::time::Instant::now() + ahead)
}

/// Starts the job's script; a failure to start ends the run as `failed` with the reason.
///
/// `started_at` is the moment the process was created (before, it was read before the spawn
/// and missed the spawn's own time): the scheduler's clock less the time since the spawn, as
/// the spawn happens on a blocking thread ([`crate::executor::Executor::launch`]) and this
/// task may resume a little later. It is never before the record's creation, whatever an
/// injected clock says.
async fn start(
    scheduler: &Scheduler,
    job: &Job,
    label: &str,
    run: &mut RunRecord,
    slot: Slot,
) -> Result<RunningScript, ExecutorError> {
    let launched = match job.run_timeout() {
        Ok(timeout) => {
            let request = RunRequest {
                job_id: job.id.to_string(),
                run_id: run.id.to_string(),
                func: job.func.clone(),
                args: job.args.clone(),
                kwargs: job.kwargs.clone(),
                scheduled_at: run.scheduled_run_time,
                not_before: not_before(scheduler, run),
                timeout: timeout.or(scheduler.inner.settings.default_timeout),
            };
            scheduler.inner.executor.launch(request, slot).await
        }
        Err(why) => Err(ExecutorError::Invalid(why)),
    };
    match launched {
        Ok(script) => {
            let since = TimeDelta::from_std(script.running_for()).unwrap_or_default();
            run.started_at = Some((scheduler.inner.clock.now() - since).max(run.created_at));
            scheduler
                .inner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(run.id.clone(), script.stop_handle());
            scheduler.inner.live.register(&run.id, script.live());
            let (job_id, run_id, pid) = (logged(&job.id), run.id.as_str(), script.pid());
            match run.scheduled_run_time {
                Some(scheduled) => tracing::info!(
                    %job_id,
                    %run_id,
                    pid,
                    "Running job \"{label}\" (scheduled at {scheduled})"
                ),
                None => tracing::info!(%job_id, %run_id, pid, "Running job \"{label}\" (run now)"),
            }
            save(scheduler, run).await;
            super::notifications::watch_duration(scheduler, job, run);
            scheduler.emit(SchedulerEvent::RunStarted {
                job_id: job.id.clone(),
                run_id: run.id.clone(),
                // A fire time that waited in a queue (`overlap`) is not late by its wait.
                scheduled: run.scheduled_run_time.filter(|_| run.due_at.is_none()),
                started_at: run.started_at.unwrap_or(run.created_at),
            });
            Ok(script)
        }
        Err(error) => {
            // The cause in full, with the OS's words and the server's paths, is for the log;
            // the record and the API say it without them.
            let cause = match &error {
                ExecutorError::CannotStart { fault, detail } => format!("{fault} ({detail})"),
                other => other.to_string(),
            };
            tracing::error!(
                job_id = %logged(&job.id),
                run_id = %run.id,
                status = %RunStatus::Failed.as_str(),
                "Job \"{label}\" could not start: {}",
                runlog::one_line(&cause)
            );
            run.status = RunStatus::Failed;
            run.finished_at = Some(scheduler.inner.clock.now());
            run.reason = Some(format!("the script could not start: {error}"));
            save(scheduler, run).await;
            follow_up(scheduler, job, run).await;
            scheduler.emit(SchedulerEvent::RunFinished {
                job_id: job.id.clone(),
                run: Box::new(run.clone()),
            });
            Err(error)
        }
    }
}

/// Waits for a started script, records its end, and logs its output and its end.
async fn finish(
    scheduler: &Scheduler,
    job: &Job,
    label: &str,
    mut run: RunRecord,
    script: RunningScript,
) -> RunRecord {
    let outcome = script.wait().await;
    scheduler
        .inner
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&run.id);
    let call = crate::executor::runs_a_function(&job.func);
    apply_outcome(&mut run, &outcome, job.timeout, call);
    if run.status == RunStatus::Cancelled
        && let Some(why) = super::queue::replaced_reason(scheduler, &run.id)
    {
        run.reason = Some(why);
    }
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        runlog::log_output(&job.id, &run.id, stream, text);
    }
    record_end(scheduler, job, label, run).await
}

/// What the end of a run, saved, calls for: its retry, when the job's `retry` says so, then
/// the notifications (which know whether a retry follows).
async fn follow_up(scheduler: &Scheduler, job: &Job, run: &RunRecord) {
    let retrying = super::queue::after_end(scheduler, job, run).await;
    super::notifications::run_ended(scheduler, job, run, retrying).await;
}

/// Logs the end of a run whose record holds how it ended, saves it and announces it.
async fn record_end(scheduler: &Scheduler, job: &Job, label: &str, run: RunRecord) -> RunRecord {
    let took = match (run.started_at, run.finished_at) {
        (Some(started), Some(finished)) => finished - started,
        _ => TimeDelta::zero(),
    };
    runlog::log_end(label, &run, took);
    save(scheduler, &run).await;
    follow_up(scheduler, job, &run).await;
    // After the save: a follower that comes when the feed has gone finds the run ended.
    scheduler.end_live(&run);
    scheduler.emit(SchedulerEvent::RunFinished {
        job_id: job.id.clone(),
        run: Box::new(run.clone()),
    });
    run
}

/// A timeout in seconds as a person reads it: `2.5`, `0.25`; below a millisecond in
/// scientific notation (`1e-7`), because `{}` writes a tiny float with every zero (a timeout
/// of `1e-320`, which is more than 0 and so accepted, would take 320 characters).
fn seconds_text(secs: f64) -> String {
    if secs != 0.0 && secs.abs() < 1e-3 {
        format!("{secs:e}")
    } else {
        format!("{secs}")
    }
}

fn apply_outcome(run: &mut RunRecord, outcome: &RunOutcome, timeout: Option<f64>, call: bool) {
    // What ran, as its reason names it.
    let what = if call { "the function" } else { "the script" };
    run.status = outcome.status;
    run.finished_at = Some(outcome.finished_at);
    run.exit_code = outcome.exit_code;
    run.stdout.clone_from(&outcome.stdout);
    run.stderr.clone_from(&outcome.stderr);
    run.stdout_truncated = outcome.stdout_truncated;
    run.stderr_truncated = outcome.stderr_truncated;
    run.result.clone_from(&outcome.result);
    run.reason = match outcome.status {
        RunStatus::TimedOut => Some(match timeout {
            Some(secs) => format!(
                "the run took longer than its timeout ({} s) and was killed",
                seconds_text(secs)
            ),
            None => "the run took longer than its timeout and was killed".to_owned(),
        }),
        RunStatus::Cancelled => Some("cancelled through the API".to_owned()),
        RunStatus::Interrupted => Some("tickd shut down while the run was in progress".to_owned()),
        RunStatus::Failed if outcome.lost.is_some() => outcome.lost.clone(),
        RunStatus::Failed => match (outcome.exit_code, outcome.signal) {
            (_, Some(signal)) => Some(format!("{what} was killed by signal {signal}")),
            (Some(1), None) if call => {
                Some("the function exited with code 1: an exception it did not catch (stderr has the traceback), or sys.exit(1)".to_owned())
            }
            (Some(code), None) => Some(format!("{what} exited with code {code}")),
            (None, None) => Some(format!("{what} failed")),
        },
        _ => None,
    };
}

/// Writes a run record. While the store is unreachable the write is retried, with a
/// growing pause, for about two minutes: a run that ended during a database outage must not
/// stay `running` for ever. Other failures are logged (the run itself is not undone by them).
async fn save(scheduler: &Scheduler, run: &RunRecord) {
    let mut pause = Duration::from_millis(250);
    let mut waited = Duration::ZERO;
    loop {
        match scheduler.inner.store.update_run(run).await {
            Ok(()) => return,
            Err(StoreError::Unavailable(_)) if waited < SAVE_PATIENCE => {
                tokio::time::sleep(pause).await;
                waited += pause;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(error) => {
                let error = format!("{error:#}");
                tracing::error!(
                    run_id = %run.id,
                    "Could not record run {}: {}",
                    run.id,
                    runlog::one_line(&error)
                );
                return;
            }
        }
    }
}

/// How long a run record's write waits for an unreachable store.
const SAVE_PATIENCE: Duration = Duration::from_secs(120);

/// Why a run was missed, in words.
pub(super) fn missed_reason(late_by: TimeDelta, grace: Option<TimeDelta>) -> String {
    format!(
        "the run could start only {} after its fire time, beyond misfire_grace_time ({} s)",
        python_timedelta(late_by),
        grace.map_or(0, |g| g.num_seconds())
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::job::{JobDefaults, JobSpec};
    use crate::scheduler::testing::scheduler;

    /// The one way tickd's own code can fail a run's task is a bug; this stands in for one.
    #[tokio::test]
    async fn a_run_whose_task_panics_still_ends_and_cancel_answers() {
        let (scheduler, _dir) = scheduler().await;
        let body = json!({"id": "j", "func": "task:success", "args": ["test.py"]});
        let job = JobSpec::parse(&body, &JobDefaults::default(), chrono_tz::UTC, Utc::now())
            .unwrap()
            .job;
        let mut run = RunRecord::new(
            Utc::now(),
            &job.id,
            None,
            RunStatus::Running,
            RunCause::RunNow,
            "test-node",
            &scheduler.inner.node_id,
        );
        run.started_at = Some(run.created_at);
        scheduler.inner.store.insert_run(&run).await.unwrap();
        let mut events = scheduler.subscribe();

        let ended = supervised(&scheduler, &job, "j", run.clone(), async {
            panic!("an instant out of range")
        })
        .await;

        assert_eq!(ended.status, RunStatus::Failed);
        assert_eq!(
            ended.reason.as_deref(),
            Some("tickd could not run the job: its run task failed (an instant out of range)")
        );
        assert!(ended.finished_at.is_some());
        let stored = scheduler.get_run(&run.id).await.unwrap();
        assert_eq!(
            (stored.status, stored.reason),
            (ended.status, ended.reason.clone())
        );
        match events.recv().await.unwrap() {
            SchedulerEvent::RunFinished { run: heard, .. } => assert_eq!(*heard, ended),
            other => panic!("expected the run's end, got {other:?}"),
        }
        match scheduler.cancel_run(&run.id).await {
            Err(SchedulerError::NotCancellable(text)) => {
                assert_eq!(
                    text,
                    format!("Run {} is not running (it is failed)", run.id)
                );
            }
            other => panic!("cancel should answer 409 at once, got {other:?}"),
        }
    }

    #[test]
    fn timeouts_read_as_people_write_them_tiny_ones_in_scientific_notation() {
        assert_eq!(super::seconds_text(2.5), "2.5");
        assert_eq!(super::seconds_text(0.25), "0.25");
        assert_eq!(super::seconds_text(31_536_000.0), "31536000");
        assert_eq!(super::seconds_text(1e-7), "1e-7");
        assert_eq!(super::seconds_text(1e-320), "1e-320");
    }
}
