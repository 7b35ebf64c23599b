//! Running a job's scripts: the part of APScheduler's executor `run_job` that belongs to the
//! scheduler (the misfire check when a run gets a pool slot, the instance count, the log
//! lines, the run record), around the executor's subprocess handling.
//!
//! The job's `label` in the log lines is [`Job::describe`] with the job's next fire time:
//! for a scheduled run, the one after this run's (the claim has advanced the job), or none
//! left; for run-now, the job's own, which run-now leaves unchanged.

use std::time::Duration;

use chrono::TimeDelta;

use super::runlog::{self, python_timedelta};
use super::{Scheduler, SchedulerError, SchedulerEvent};
use crate::executor::{ExecutorError, RunOutcome, RunRequest, RunningScript, Slot};
use crate::job::{Job, RunCause, RunRecord, RunStatus};
use crate::store::StoreError;

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
}

/// Releases the instance place when dropped, so a panicking or cancelled run task cannot
/// leak it.
struct InstanceGuard {
    scheduler: Scheduler,
    job_id: String,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        release_instance(&self.scheduler, &self.job_id);
    }
}

/// Runs a submission: each run in turn, each waiting for a pool slot and then checked
/// against `misfire_grace_time` at the moment it could start (as APScheduler does).
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
    for mut run in runs {
        let slot = scheduler.inner.executor.acquire_slot().await;
        let now = scheduler.inner.clock.now();
        let scheduled = run.scheduled_run_time.unwrap_or_else(|| now.fixed_offset());
        let late_by = now - scheduled.to_utc();
        if let Some(grace) = job.misfire_grace_time {
            let grace = TimeDelta::seconds(i64::try_from(grace).unwrap_or(i64::MAX));
            if late_by > grace {
                let late = python_timedelta(late_by);
                tracing::warn!(job_id = %job.id, run_id = %run.id, "Run time of job \"{label}\" was missed by {late}");
                run.status = RunStatus::Missed;
                run.finished_at = Some(now);
                run.reason = Some(missed_reason(late_by, Some(grace)));
                save(&scheduler, &run).await;
                scheduler.emit(SchedulerEvent::JobMissed {
                    job_id: job.id.clone(),
                    run_id: run.id.clone(),
                    scheduled,
                });
                continue;
            }
        }
        if let Ok(script) = start(&scheduler, &job, &label, &mut run, slot).await {
            finish(&scheduler, &job, &label, run, script).await;
        }
    }
}

/// What run-now did.
pub(super) enum RunNow {
    /// The script started: its record as it stands then, and a handle on its end.
    Started(RunRecord, tokio::task::JoinHandle<RunRecord>),
    /// The script could not start: its record, ended `failed` with the reason, and why.
    NotStarted(RunRecord, ExecutorError),
}

/// Run-now: starts at once (a free slot is awaited), outside the schedule. A run whose
/// script cannot start is recorded all the same (`failed`, with the reason), as a scheduled
/// one is: it is history worth keeping, and the answer names it.
pub(super) async fn run_now(scheduler: &Scheduler, job: &Job) -> Result<RunNow, SchedulerError> {
    if !reserve_instance(scheduler, job) {
        return Err(SchedulerError::Busy(format!(
            "Job {} is already running its maximum number of instances ({}); try again when a run ends",
            job.id, job.max_instances
        )));
    }
    let guard = InstanceGuard {
        scheduler: scheduler.clone(),
        job_id: job.id.clone(),
    };
    let slot = scheduler.inner.executor.acquire_slot().await;
    let now = scheduler.inner.clock.now();
    let mut run = RunRecord::new(
        now,
        &job.id,
        None,
        RunStatus::Running,
        RunCause::RunNow,
        &scheduler.inner.settings.node,
        &scheduler.inner.node_id,
    );
    run.started_at = Some(now);
    scheduler.inner.store.insert_run(&run).await?;
    let label = job.describe();
    let script = match start(scheduler, job, &label, &mut run, slot).await {
        Ok(script) => script,
        Err(error) => return Ok(RunNow::NotStarted(run, error)),
    };
    let started = run.clone();
    let (scheduler, job) = (scheduler.clone(), job.clone());
    let ended = tokio::spawn(async move {
        let _guard = guard;
        finish(&scheduler, &job, &label, run, script).await
    });
    Ok(RunNow::Started(started, ended))
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
    let timeout = job
        .timeout
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .or(scheduler.inner.settings.default_timeout);
    let request = RunRequest {
        job_id: job.id.clone(),
        run_id: run.id.clone(),
        func: job.func.clone(),
        args: job.args.clone(),
        kwargs: job.kwargs.clone(),
        scheduled_at: run.scheduled_run_time,
        timeout,
    };
    match scheduler.inner.executor.launch(request, slot).await {
        Ok(script) => {
            let since = TimeDelta::from_std(script.running_for()).unwrap_or_default();
            run.started_at = Some((scheduler.inner.clock.now() - since).max(run.created_at));
            scheduler
                .inner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(run.id.clone(), script.stop_handle());
            let (job_id, run_id, pid) = (job.id.as_str(), run.id.as_str(), script.pid());
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
            scheduler.emit(SchedulerEvent::RunStarted {
                job_id: job.id.clone(),
                run_id: run.id.clone(),
                scheduled: run.scheduled_run_time,
            });
            Ok(script)
        }
        Err(error) => {
            tracing::error!(
                job_id = %job.id,
                run_id = %run.id,
                status = %RunStatus::Failed.as_str(),
                "Job \"{label}\" could not start: {}",
                runlog::one_line(&error.to_string())
            );
            run.status = RunStatus::Failed;
            run.finished_at = Some(scheduler.inner.clock.now());
            run.reason = Some(format!("the script could not start: {error}"));
            save(scheduler, run).await;
            scheduler.emit(SchedulerEvent::RunFinished {
                job_id: job.id.clone(),
                run: run.clone(),
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
    apply_outcome(&mut run, &outcome, job.timeout);
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        runlog::log_output(&job.id, &run.id, stream, text);
    }
    let took = run
        .started_at
        .map_or(TimeDelta::zero(), |started| outcome.finished_at - started);
    runlog::log_end(label, &run, took);
    save(scheduler, &run).await;
    scheduler.emit(SchedulerEvent::RunFinished {
        job_id: job.id.clone(),
        run: run.clone(),
    });
    run
}

fn apply_outcome(run: &mut RunRecord, outcome: &RunOutcome, timeout: Option<f64>) {
    run.status = outcome.status;
    run.finished_at = Some(outcome.finished_at);
    run.exit_code = outcome.exit_code;
    run.stdout.clone_from(&outcome.stdout);
    run.stderr.clone_from(&outcome.stderr);
    run.stdout_truncated = outcome.stdout_truncated;
    run.stderr_truncated = outcome.stderr_truncated;
    run.reason = match outcome.status {
        RunStatus::TimedOut => Some(match timeout {
            Some(secs) => format!("the run took longer than its timeout ({secs} s) and was killed"),
            None => "the run took longer than its timeout and was killed".to_owned(),
        }),
        RunStatus::Cancelled => Some("cancelled through the API".to_owned()),
        RunStatus::Interrupted => Some("tickd shut down while the run was in progress".to_owned()),
        RunStatus::Failed => match (outcome.exit_code, outcome.signal) {
            (_, Some(signal)) => Some(format!("the script was killed by signal {signal}")),
            (Some(code), None) => Some(format!("the script exited with code {code}")),
            (None, None) => Some("the script failed".to_owned()),
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
                tracing::error!(run_id = %run.id, "Could not record run {}: {error:#}", run.id);
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
