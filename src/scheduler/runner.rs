//! Running a job's scripts: the part of APScheduler's executor `run_job` that belongs to the
//! scheduler (the misfire check when a run gets a pool slot, the instance count, the log
//! lines), around the executor's subprocess handling.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta};

use super::{Scheduler, SchedulerError, SchedulerEvent};
use crate::executor::{RunOutcome, RunRequest, RunStatus, RunningScript, Slot};
use crate::job::Job;

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

/// Gives back a place taken by [`reserve_instance`] when dropped, so a panicking or
/// cancelled run task cannot leak it.
struct InstanceGuard {
    scheduler: Scheduler,
    job_id: String,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        {
            let mut instances = self
                .scheduler
                .inner
                .instances
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(count) = instances.get_mut(&self.job_id) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    instances.remove(&self.job_id);
                }
            }
        }
        self.scheduler.inner.run_ended.notify_waiters();
    }
}

/// Runs a submission: each run time in turn, each waiting for a pool slot and then checked
/// against `misfire_grace_time` at the moment it could start (as APScheduler does).
pub(super) async fn run_scheduled(
    scheduler: Scheduler,
    job: Job,
    run_times: Vec<DateTime<FixedOffset>>,
) {
    let _guard = InstanceGuard {
        scheduler: scheduler.clone(),
        job_id: job.id.clone(),
    };
    for scheduled in run_times {
        let slot = scheduler.inner.executor.acquire_slot().await;
        let late_by = scheduler.inner.clock.now() - scheduled.to_utc();
        if let Some(grace) = job.misfire_grace_time {
            let grace = TimeDelta::seconds(i64::try_from(grace).unwrap_or(i64::MAX));
            if late_by > grace {
                tracing::warn!(
                    job_id = %job.id,
                    "Run time of job \"{}\" was missed by {}",
                    job.describe(),
                    python_timedelta(late_by)
                );
                scheduler.emit(SchedulerEvent::JobMissed {
                    job_id: job.id.clone(),
                    scheduled,
                });
                continue;
            }
        }
        tracing::info!(
            job_id = %job.id,
            "Running job \"{}\" (scheduled at {})",
            job.describe(),
            scheduled
        );
        if let Ok(script) = start(&scheduler, &job, Some(scheduled), slot) {
            finish(&scheduler, &job, script.0, script.1).await;
        }
    }
}

/// Run-now: starts at once (a free slot is awaited), outside the schedule.
pub(super) async fn run_now(scheduler: &Scheduler, job: &Job) -> Result<String, SchedulerError> {
    if !reserve_instance(scheduler, job) {
        return Err(SchedulerError::Busy(format!(
            "Job {} is already running its maximum number of instances ({})",
            job.id, job.max_instances
        )));
    }
    let guard = InstanceGuard {
        scheduler: scheduler.clone(),
        job_id: job.id.clone(),
    };
    let slot = scheduler.inner.executor.acquire_slot().await;
    tracing::info!(job_id = %job.id, "Running job \"{}\" now (run-now)", job.describe());
    let (run_id, script) = start(scheduler, job, None, slot)?;
    let (scheduler, job, id) = (scheduler.clone(), job.clone(), run_id.clone());
    tokio::spawn(async move {
        let _guard = guard;
        finish(&scheduler, &job, id, script).await;
    });
    Ok(run_id)
}

/// Starts the job's script; a failure to start is logged as the run's end.
fn start(
    scheduler: &Scheduler,
    job: &Job,
    scheduled: Option<DateTime<FixedOffset>>,
    slot: Slot,
) -> Result<(String, RunningScript), SchedulerError> {
    let run_id = uuid::Uuid::now_v7().to_string();
    let request = RunRequest {
        job_id: job.id.clone(),
        run_id: run_id.clone(),
        func: job.func.clone(),
        args: job.args.clone(),
        kwargs: job.kwargs.clone(),
        scheduled_at: scheduled,
        timeout: job
            .timeout
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok()),
    };
    match scheduler.inner.executor.start(request, slot) {
        Ok(script) => {
            scheduler
                .inner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(run_id.clone(), script.stop_handle());
            scheduler.emit(SchedulerEvent::RunStarted {
                job_id: job.id.clone(),
                run_id: run_id.clone(),
                scheduled,
            });
            Ok((run_id, script))
        }
        Err(error) => {
            tracing::error!(job_id = %job.id, run_id, "Job \"{}\" could not start: {error}", job.describe());
            Err(error.into())
        }
    }
}

/// Waits for a started script and logs its end in APScheduler's words, plus tickd's one line
/// per run with the run id, status, exit code and duration.
async fn finish(scheduler: &Scheduler, job: &Job, run_id: String, script: RunningScript) {
    let started = scheduler.inner.clock.now();
    let outcome = script.wait().await;
    scheduler
        .inner
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&run_id);
    log_outcome(job, &run_id, &outcome, outcome.finished_at - started);
    scheduler.emit(SchedulerEvent::RunFinished {
        job_id: job.id.clone(),
        run_id,
        outcome,
    });
}

fn log_outcome(job: &Job, run_id: &str, outcome: &RunOutcome, took: TimeDelta) {
    let status = format!("{:?}", outcome.status).to_lowercase();
    let exit = outcome
        .exit_code
        .map_or_else(|| "none".to_owned(), |code| code.to_string());
    for (stream, text) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
        if !text.is_empty() {
            tracing::info!(job_id = %job.id, run_id, "{stream}: {}", text.trim_end());
        }
    }
    if outcome.status == RunStatus::Succeeded {
        tracing::info!(job_id = %job.id, "Job \"{}\" executed successfully", job.describe());
    } else {
        tracing::error!(job_id = %job.id, "Job \"{}\" raised an exception: run {status}, exit code {exit}", job.describe());
    }
    tracing::info!(
        job_id = %job.id,
        run_id,
        status,
        exit_code = %exit,
        duration_ms = took.num_milliseconds(),
        "Run {run_id} of job {} ended: {status}, exit code {exit}, {:.3} s",
        job.id,
        took.num_milliseconds() as f64 / 1000.0
    );
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
        assert_eq!(python_timedelta(TimeDelta::milliseconds(2500)), "0:00:02.500000");
        assert_eq!(python_timedelta(TimeDelta::seconds(3 * 86_400 + 3723)), "3 days, 1:02:03");
        assert_eq!(python_timedelta(TimeDelta::seconds(86_400)), "1 day, 0:00:00");
    }
}
