//! Running a job's scripts: the part of APScheduler's executor `run_job` that belongs to the
//! scheduler (the misfire check when a run gets a pool slot, the instance count, the log
//! lines, the run record), around the executor's subprocess handling.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

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
pub(super) async fn run_scheduled(scheduler: Scheduler, job: Job, runs: Vec<RunRecord>) {
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
                tracing::warn!(job_id = %job.id, run_id = %run.id, "Run time of job \"{}\" was missed by {late}", job.describe());
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
        if let Ok(script) = start(&scheduler, &job, &mut run, slot).await {
            finish(&scheduler, &job, run, script).await;
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
    let script = match start(scheduler, job, &mut run, slot).await {
        Ok(script) => script,
        Err(error) => return Ok(RunNow::NotStarted(run, error)),
    };
    let started = run.clone();
    let (scheduler, job) = (scheduler.clone(), job.clone());
    let ended = tokio::spawn(async move {
        let _guard = guard;
        finish(&scheduler, &job, run, script).await
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
            match run.scheduled_run_time {
                Some(scheduled) => {
                    tracing::info!(job_id = %job.id, run_id = %run.id, "Running job \"{}\" (scheduled at {scheduled})", job.describe());
                }
                None => {
                    tracing::info!(job_id = %job.id, run_id = %run.id, "Running job \"{}\" now (run-now)", job.describe());
                }
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
            tracing::error!(job_id = %job.id, run_id = %run.id, "Job \"{}\" could not start: {error}", job.describe());
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

/// Waits for a started script, records its end and logs it in APScheduler's words, plus
/// tickd's one line per run with the run id, status, exit code and duration.
async fn finish(
    scheduler: &Scheduler,
    job: &Job,
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
    log_outcome(job, &run, run.started_at, outcome.finished_at);
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

fn log_outcome(
    job: &Job,
    run: &RunRecord,
    started: Option<DateTime<Utc>>,
    finished: DateTime<Utc>,
) {
    let status = run.status.as_str();
    let exit = run
        .exit_code
        .map_or_else(|| "none".to_owned(), |code| code.to_string());
    let took = started.map_or(TimeDelta::zero(), |s| finished - s);
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        if !text.is_empty() {
            tracing::info!(job_id = %job.id, run_id = %run.id, "{stream}: {}", text.trim_end());
        }
    }
    if run.status == RunStatus::Succeeded {
        tracing::info!(job_id = %job.id, "Job \"{}\" executed successfully", job.describe());
    } else {
        tracing::error!(job_id = %job.id, "Job \"{}\" raised an exception: run {status}, exit code {exit}", job.describe());
    }
    tracing::info!(
        job_id = %job.id,
        run_id = %run.id,
        status,
        exit_code = %exit,
        duration_ms = took.num_milliseconds(),
        "Run {} of job {} ended: {status}, exit code {exit}, {:.3} s",
        run.id,
        job.id,
        took.num_milliseconds() as f64 / 1000.0
    );
}

/// Why a run was missed, in words.
pub(super) fn missed_reason(late_by: TimeDelta, grace: Option<TimeDelta>) -> String {
    format!(
        "the run could start only {} after its fire time, beyond misfire_grace_time ({} s)",
        python_timedelta(late_by),
        grace.map_or(0, |g| g.num_seconds())
    )
}

/// A duration as Python prints a `timedelta`: `0:00:02.500000`, `3 days, 4:05:06`.
pub(crate) fn python_timedelta(delta: TimeDelta) -> String {
    let micros = delta.num_microseconds().unwrap_or(i64::MAX);
    let (sign, micros) = if micros < 0 {
        ("-", -micros)
    } else {
        ("", micros)
    };
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    let clock = if frac > 0 {
        format!("{clock}.{frac:06}")
    } else {
        clock
    };
    match days {
        0 => format!("{sign}{clock}"),
        1 => format!("{sign}1 day, {clock}"),
        n => format!("{sign}{n} days, {clock}"),
    }
}

#[cfg(test)]
mod tests {
    use super::python_timedelta;
    use chrono::TimeDelta;

    #[test]
    fn timedelta_reads_like_python() {
        assert_eq!(
            python_timedelta(TimeDelta::milliseconds(2500)),
            "0:00:02.500000"
        );
        assert_eq!(
            python_timedelta(TimeDelta::seconds(3 * 86_400 + 3723)),
            "3 days, 1:02:03"
        );
        assert_eq!(
            python_timedelta(TimeDelta::seconds(86_400)),
            "1 day, 0:00:00"
        );
    }
}
