//! Runs that wait to start: retries waiting for their delay (the job's `retry`), and fire
//! times that came while the job was at `max_instances` (`overlap: queue` and `replace`).
//!
//! A waiting run is a run record like any other, `queued`, with the time it may start
//! (`due_at`). It is written when the decision is made, so a daemon that stops leaves it in
//! the store and the next pass, on this daemon after a restart or on another sharing the
//! store, starts it. Starting one is a compare-and-set on its status
//! ([`crate::store::RunLog::take_queued_run`]): of the daemons that find it due, exactly one
//! takes it. A queued run also waits for an instance place on the daemon that takes it, and
//! when a run ends while runs wait, the driver is woken to start the next.

use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Scheduler, SchedulerError, runner};
use crate::job::{Job, Overlap, RunCause, RunRecord, RunStatus};
use crate::store::RunFilter;
use crate::telemetry::logged;

/// Queued runs read and started at a time, per pass.
const BATCH: u32 = 256;

/// The retry a run that ended calls for under its job's `retry` policy, or `None`: only a
/// `failed` or `timed_out` run is retried (a cancelled or interrupted one is not), up to the
/// policy's `limit` attempts after the first, and only for the exit codes it names. The
/// retry is due `delay × backoff^(attempt − 1)` (at most `max_delay`) after the run ended.
pub(super) fn retry_for(scheduler: &Scheduler, job: &Job, run: &RunRecord) -> Option<RunRecord> {
    let policy = job.policies.retry.as_ref()?;
    let retried = matches!(run.status, RunStatus::Failed | RunStatus::TimedOut)
        && run.attempt <= policy.limit
        && policy.retries_exit(run.exit_code);
    if !retried {
        return None;
    }
    // Counted on the scheduler's clock, which decides when it is due (the record's
    // `finished_at` is the wall clock's, the same in production).
    let ended = scheduler.now();
    let delay = policy.delay_after(run.attempt);
    let due = ended + TimeDelta::microseconds((delay * 1e6).round() as i64);
    let mut retry = RunRecord::new(
        scheduler.now().max(run.created_at),
        &job.id,
        None,
        RunStatus::Queued,
        RunCause::Retry,
        &scheduler.inner.settings.node,
        &scheduler.inner.node_id,
    );
    retry.attempt = run.attempt + 1;
    retry.retry_of = Some(run.id.clone());
    retry.due_at = Some(due);
    retry.job_state = Some(job.to_state());
    retry.reason = Some(format!(
        "retry {} of {} after run {} {}; waits {} s",
        run.attempt,
        policy.limit,
        run.id,
        run.status.as_str(),
        seconds_text(delay)
    ));
    Some(retry)
}

/// Seconds as a person reads them: `10`, `2.5`.
fn seconds_text(secs: f64) -> String {
    format!("{}", (secs * 1000.0).round() / 1000.0)
}

/// Records the retry `run`'s end calls for, if any, and wakes the driver for its due time;
/// answers whether a retry was recorded. A failure to record it is logged: the run's own
/// record stands.
pub(super) async fn after_end(scheduler: &Scheduler, job: &Job, run: &RunRecord) -> bool {
    let Some(retry) = retry_for(scheduler, job, run) else {
        return false;
    };
    match scheduler.inner.store.insert_run(&retry).await {
        Ok(()) => {
            queued_written(scheduler);
            let due = retry.due_at.unwrap_or(retry.created_at);
            tracing::info!(
                job_id = %logged(&job.id),
                run_id = %retry.id,
                "Job \"{}\" will be tried again at {due} (attempt {}, after run {} {})",
                job.describe(),
                retry.attempt,
                run.id,
                run.status.as_str()
            );
            scheduler.wake_for(Some(due.timestamp_micros()));
            true
        }
        Err(error) => {
            tracing::error!(
                job_id = %logged(&job.id),
                run_id = %run.id,
                "Could not record the retry of run {}: {error:#}",
                run.id
            );
            false
        }
    }
}

/// The record of a fire time of `job` that waits (`overlap: queue` or `replace`): `queued`,
/// due at once, with the reason and the job as it is now.
pub(super) fn queued(
    mut run: RunRecord,
    job: &Job,
    now: DateTime<Utc>,
    reason: String,
) -> RunRecord {
    run.status = RunStatus::Queued;
    run.due_at = Some(now);
    run.finished_at = None;
    run.reason = Some(reason);
    run.job_state = Some(job.to_state());
    run
}

/// Ends the queued runs of `job_id` (`skipped`, with `why`): a removed job's retries and
/// queued fire times do not run. Only while queued runs may exist here (or on a shared
/// store): a removal otherwise costs no read.
pub(super) async fn end_waiting(
    scheduler: &Scheduler,
    job_id: &str,
    why: &str,
) -> Result<(), SchedulerError> {
    let inner = &scheduler.inner;
    if !inner.queued_maybe.load(Ordering::SeqCst) && !inner.store.shared() {
        return Ok(());
    }
    let filter = RunFilter {
        job: Some(job_id.to_owned()),
        statuses: vec![RunStatus::Queued],
        limit: 1000,
        ..RunFilter::default()
    };
    // The listing leaves out the output and the job state: a queued run has no output, and
    // the state goes as it ends.
    for mut ended in inner.store.list_runs(&filter).await? {
        ended.status = RunStatus::Skipped;
        ended.finished_at = Some(scheduler.now());
        ended.reason = Some(why.to_owned());
        ended.job_state = None;
        inner.store.take_queued_run(&ended).await?;
    }
    Ok(())
}

/// How many runs of `job` wait now, when its policy queues and it is at `max_instances` on
/// this daemon (the only case the count decides anything); `0` otherwise.
pub(super) async fn waiting_count(scheduler: &Scheduler, job: &Job) -> Result<u32, SchedulerError> {
    let overlap = job.policies.overlap();
    if !matches!(overlap, Overlap::Queue | Overlap::Replace)
        || runner::free_instances(scheduler, job) > 0
    {
        return Ok(0);
    }
    let filter = RunFilter {
        job: Some(job.id.to_string()),
        statuses: vec![RunStatus::Queued],
        limit: job.policies.queue_limit().saturating_add(1),
        ..RunFilter::default()
    };
    let waiting = scheduler.inner.store.list_runs(&filter).await?;
    Ok(u32::try_from(waiting.len()).unwrap_or(u32::MAX))
}

/// Starts the queued runs due by `now` that have an instance place here; answers when the
/// next one waiting falls due (for the driver's sleep). A run whose job is paused waits for
/// its resumption; one whose job was removed ends `skipped`, with the reason.
pub(super) async fn start_due(
    scheduler: &Scheduler,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, SchedulerError> {
    let inner = &scheduler.inner;
    inner.queue_blocked.store(false, Ordering::SeqCst);
    // Cleared before the store is read: a run queued meanwhile sets it again.
    let maybe = inner.queued_maybe.swap(false, Ordering::SeqCst);
    if !maybe && !inner.store.shared() {
        return Ok(None);
    }
    let due = inner.store.due_runs(now, BATCH).await?;
    if !due.is_empty() {
        inner.queued_maybe.store(true, Ordering::SeqCst);
    }
    for run in due {
        let job = match inner.store.lookup_job(&run.job_id).await? {
            Some(job) if job.next_run_time.is_none() && !job.pending => {
                continue; // paused: it waits for resume
            }
            Some(job) => job,
            // Gone because its trigger ran out (a removal through the API ends its queued
            // runs): the job as it was when the run was queued.
            None => match run.job_state.as_deref().map(Job::from_state) {
                Some(Ok(job)) => job,
                _ => {
                    let mut ended = run.clone();
                    ended.status = RunStatus::Skipped;
                    ended.finished_at = Some(now);
                    ended.reason = Some("the job was removed while the run waited".to_owned());
                    ended.job_state = None;
                    inner.store.take_queued_run(&ended).await?;
                    continue;
                }
            },
        };
        if !runner::reserve_instance(scheduler, &job) {
            inner.queue_blocked.store(true, Ordering::SeqCst);
            continue;
        }
        let mut taken = run.clone();
        taken.status = RunStatus::Running;
        taken.reason = None;
        taken.job_state = None;
        taken.node.clone_from(&inner.settings.node);
        taken.owner.clone_from(&inner.node_id);
        match inner.store.take_queued_run(&taken).await {
            Ok(true) => {
                tokio::spawn(runner::run_queued(scheduler.clone(), job, taken));
            }
            Ok(false) => runner::release_instance(scheduler, &job.id),
            Err(error) => {
                runner::release_instance(scheduler, &job.id);
                return Err(error.into());
            }
        }
    }
    let next = inner.store.next_due_run(now).await?;
    if next.is_some() {
        inner.queued_maybe.store(true, Ordering::SeqCst);
    }
    Ok(next)
}

/// Says that a queued run was written, so the next pass reads the queued runs again.
pub(super) fn queued_written(scheduler: &Scheduler) {
    scheduler.inner.queued_maybe.store(true, Ordering::SeqCst);
}

/// Cancels the oldest run of `job_id` in progress on this daemon, for the fire time
/// `replacing` (its run id) that replaces it (`overlap: replace`); the cancelled record says
/// so. The queued replacement starts when the run has ended and given its place back.
pub(super) async fn replace_oldest(scheduler: Scheduler, job_id: String, replacing: String) {
    let filter = RunFilter {
        job: Some(job_id.clone()),
        statuses: vec![RunStatus::Running],
        limit: 1000,
        ..RunFilter::default()
    };
    // A run is `running` from its claim on, and can be stopped once its script has started:
    // the oldest of this daemon's is waited for while it starts (bounded).
    for _ in 0..REPLACE_PATIENCE {
        let running = match scheduler.inner.store.list_runs(&filter).await {
            Ok(running) => running,
            Err(error) => {
                tracing::error!(job_id = %logged(&job_id), "Could not find the run to replace: {error:#}");
                return;
            }
        };
        // Newest first: the oldest of this daemon's is the last.
        let Some(oldest) = running
            .iter()
            .rev()
            .find(|run| run.owner == scheduler.inner.node_id)
        else {
            // It ended meanwhile: the queued run starts as soon as its place is free.
            scheduler.inner.wakeup.notify_one();
            return;
        };
        let handle = scheduler
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&oldest.id)
            .cloned();
        if let Some(handle) = handle {
            scheduler
                .inner
                .replaced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    oldest.id.clone(),
                    format!("replaced by run {replacing} (overlap: replace)"),
                );
            handle.stop(RunStatus::Cancelled);
            tracing::info!(
                job_id = %logged(&job_id),
                run_id = %oldest.id,
                "Run {} is cancelled: run {replacing} replaces it (overlap: replace)",
                oldest.id
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    scheduler.inner.wakeup.notify_one();
}

/// How many times (50 ms apart) [`replace_oldest`] looks for the run to stop while it starts.
const REPLACE_PATIENCE: u32 = 200;

/// The reason a run was stopped with, when it was replaced rather than cancelled through the
/// API (taken once).
pub(super) fn replaced_reason(scheduler: &Scheduler, run_id: &str) -> Option<String> {
    scheduler
        .inner
        .replaced
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(run_id)
}
