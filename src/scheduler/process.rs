//! One due-jobs pass: APScheduler 3.x's `_process_jobs` (apscheduler.md §5.2).

use chrono::{DateTime, Utc};

use super::{RunState, Scheduler, SchedulerError, SchedulerEvent, runner};

/// Submits the runs due by `now`, advances every due job, and returns the next time a pass
/// is needed (the earliest `next_run_time` in the store).
pub(super) async fn process_due_jobs(
    scheduler: &Scheduler,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, SchedulerError> {
    let inner = &scheduler.inner;
    let _jobs = inner.jobs_lock.lock().await;
    if scheduler.state() != RunState::Running {
        return Ok(None);
    }
    for mut job in inner.store.get_due_jobs(now).await? {
        let mut run_times = job.run_times_until(now);
        let Some(&last) = run_times.last() else {
            continue;
        };
        if job.coalesce {
            run_times = vec![last];
        }
        if runner::reserve_instance(scheduler, &job) {
            for scheduled in &run_times {
                scheduler.emit(SchedulerEvent::JobSubmitted {
                    job_id: job.id.clone(),
                    scheduled: *scheduled,
                });
            }
            tokio::spawn(runner::run_scheduled(
                scheduler.clone(),
                job.clone(),
                run_times,
            ));
        } else {
            tracing::warn!(
                job_id = %job.id,
                "Execution of job \"{}\" skipped: maximum number of running instances reached ({})",
                job.describe(),
                job.max_instances
            );
            for scheduled in &run_times {
                scheduler.emit(SchedulerEvent::JobMaxInstances {
                    job_id: job.id.clone(),
                    scheduled: *scheduled,
                });
            }
        }
        // The schedule advances at submission, whatever becomes of the run.
        match job.trigger.next_fire_time(Some(last), now) {
            Some(next) => {
                job.next_run_time = Some(next);
                inner.store.update_job(&job).await?;
            }
            None => {
                inner.store.remove_job(&job.id).await?;
                scheduler.removed(&job.id);
            }
        }
    }
    Ok(inner.store.get_next_run_time().await?)
}
