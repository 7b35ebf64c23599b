//! One due-jobs pass: APScheduler 3.x's `_process_jobs` (apscheduler.md §5.2), with a run
//! record written for every fire time handled, in the same store transaction that advances
//! the job.

use chrono::{DateTime, Utc};

use super::{RunState, Scheduler, SchedulerError, SchedulerEvent, runner};
use crate::job::{RunCause, RunRecord, RunStatus};

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
    let started = scheduler.started_at();
    for mut job in inner.store.get_due_jobs(now).await? {
        let mut run_times = job.run_times_until(now);
        let Some(&last) = run_times.last() else {
            continue;
        };
        if job.coalesce {
            run_times = vec![last];
        }
        let reserved = runner::reserve_instance(scheduler, &job);
        let runs: Vec<RunRecord> = run_times
            .iter()
            .map(|scheduled| {
                // A fire time that passed while the daemon was down is handled at start-up.
                let cause = if started.is_some_and(|s| scheduled.to_utc() < s) {
                    RunCause::Startup
                } else {
                    RunCause::Schedule
                };
                let status = if reserved {
                    RunStatus::Running
                } else {
                    RunStatus::Skipped
                };
                let mut run = RunRecord::new(
                    now,
                    &job.id,
                    Some(*scheduled),
                    status,
                    cause,
                    &inner.settings.node,
                );
                if !reserved {
                    run.finished_at = Some(now);
                    run.reason = Some(format!(
                        "maximum number of running instances reached ({})",
                        job.max_instances
                    ));
                }
                run
            })
            .collect();
        // The schedule advances at submission, whatever becomes of the run.
        let next = job.trigger.next_fire_time(Some(last), now);
        job.next_run_time = next;
        let advanced = inner
            .store
            .advance_job(&job.id, next.map(|_| &job), &runs)
            .await;
        match advanced {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                if reserved {
                    runner::release_instance(scheduler, &job.id);
                }
                if let Err(error) = advanced {
                    return Err(error.into());
                }
                tracing::info!(job_id = %job.id, "Fire time {last} of job {} was handled already", job.id);
                continue;
            }
        }
        if next.is_none() {
            scheduler.removed(&job.id);
        }
        if reserved {
            for run in &runs {
                scheduler.emit(SchedulerEvent::JobSubmitted {
                    job_id: job.id.clone(),
                    scheduled: run.scheduled_run_time.unwrap_or(last),
                    run_id: run.id.clone(),
                });
            }
            tokio::spawn(runner::run_scheduled(scheduler.clone(), job, runs));
        } else {
            tracing::warn!(
                job_id = %job.id,
                "Execution of job \"{}\" skipped: maximum number of running instances reached ({})",
                job.describe(),
                job.max_instances
            );
            for run in runs {
                scheduler.emit(SchedulerEvent::JobMaxInstances {
                    job_id: job.id.clone(),
                    scheduled: run.scheduled_run_time.unwrap_or(last),
                    run_id: run.id,
                });
            }
        }
    }
    Ok(inner.store.get_next_run_time().await?)
}
