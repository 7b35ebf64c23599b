//! One due-jobs pass: APScheduler 3.x's `_process_jobs` (apscheduler.md §5.2), done through
//! the store's claim so that daemons sharing a store take each fire time once, with a run
//! record written for every fire time in the same transaction that advances the job.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, Utc};

use super::runlog::{self, Misfire};
use super::{RunState, Scheduler, SchedulerError, SchedulerEvent, runner};
use crate::job::{Job, RunCause, RunRecord, RunStatus};
use crate::store::Claim;
use crate::telemetry::logged;

/// Fire times coalesced away that still get a `missed` record, per job and pass.
const MAX_COALESCED_RECORDS: usize = 100;

/// Due jobs claimed per store transaction: bounds a transaction when thousands are due at
/// once, without a round trip per job.
const BATCH: usize = 256;

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
    loop {
        // Instance places taken while deciding; given back for jobs the claim did not keep.
        let reserved = Mutex::new(Vec::new());
        // The fire times each job missed, for its misfire line.
        let misfires = Mutex::new(HashMap::new());
        let decide = |job: &Job| decide(scheduler, job, now, started, &reserved, &misfires);
        let claimed = inner.store.claim_due_jobs(now, BATCH, &decide).await;
        let reserved = reserved.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut misfires = misfires.into_inner().unwrap_or_else(|e| e.into_inner());
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                for id in &reserved {
                    runner::release_instance(scheduler, id);
                }
                return Err(error.into());
            }
        };
        // A place is kept only by a job whose claim still starts a run: the store drops the
        // runs of a fire time that was handled already, and nothing would give it back.
        for id in reserved.iter().filter(|id| {
            !claimed.iter().any(|(job, claim)| {
                &job.id == *id
                    && claim
                        .runs
                        .iter()
                        .any(|run| run.status == RunStatus::Running)
            })
        }) {
            runner::release_instance(scheduler, id);
        }
        let full = claimed.len() == BATCH;
        for (job, claim) in claimed {
            let misfire = misfires.remove(&job.id);
            submit(scheduler, job, claim, misfire, now);
        }
        if !full {
            break;
        }
    }
    Ok(inner.store.get_next_run_time().await?)
}

/// The decision for one due job: its run times (coalesced to the last when it says so), one
/// record each — `running` when an instance place was free, else `skipped` — and its next
/// fire time after the last of them. The fire times it misses go in `misfires`.
fn decide(
    scheduler: &Scheduler,
    job: &Job,
    now: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    reserved: &Mutex<Vec<String>>,
    misfires: &Mutex<HashMap<String, Misfire>>,
) -> Claim {
    let mut run_times = job.run_times_until(now);
    let Some(&last) = run_times.last() else {
        return Claim {
            next: Some(job.clone()),
            runs: Vec::new(),
        };
    };
    // Gathering stops at a bound and keeps the newest: then the earliest was not gathered.
    let gathered_all = run_times.first() == job.next_run_time.as_ref();
    let mut coalesced = Vec::new();
    if job.coalesce {
        run_times.pop();
        coalesced = run_times;
        run_times = vec![last];
    }
    // A run already later than its grace will be later still when it gets a pool slot:
    // APScheduler would find it missed then; tickd records it missed now, without queueing
    // it (a restart after downtime with thousands of due jobs queues nothing).
    let grace = job.misfire_grace();
    let (late, on_time): (Vec<_>, Vec<_>) = run_times
        .into_iter()
        .partition(|scheduled| grace.is_some_and(|grace| now - scheduled.to_utc() > grace));
    let missed = coalesced.len() + late.len();
    if missed > 0 {
        // When any fire time is missed, the earliest one due (`next_run_time`) is: late ones
        // are the earliest, coalesced ones all but the last. The latest missed is the last
        // late one, else the last coalesced one.
        let last_missed = late.last().or(coalesced.last()).copied().unwrap_or(last);
        let first = job.next_run_time.unwrap_or(last_missed);
        misfires.lock().unwrap_or_else(|e| e.into_inner()).insert(
            job.id.clone(),
            Misfire {
                first,
                last: last_missed,
                count: missed,
                at_least: !gathered_all,
            },
        );
    }
    let free = !on_time.is_empty() && runner::reserve_instance(scheduler, job);
    if free {
        reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(job.id.clone());
    }
    let settings = &scheduler.inner.settings;
    let record = |scheduled, status, cause| {
        RunRecord::new(
            now,
            &job.id,
            Some(scheduled),
            status,
            cause,
            &settings.node,
            &scheduler.inner.node_id,
        )
    };
    // A fire time that passed while the scheduler was not running is handled at start-up.
    let cause_of = |scheduled: &DateTime<FixedOffset>| {
        if started.is_some_and(|s| scheduled.to_utc() < s) {
            RunCause::Startup
        } else {
            RunCause::Schedule
        }
    };
    // Fire times folded into the last one still get a record: a run that did not happen is
    // written down, never only logged (the newest ones, so a long downtime stays bounded).
    let skip = coalesced.len().saturating_sub(MAX_COALESCED_RECORDS);
    let mut runs: Vec<RunRecord> = coalesced[skip..]
        .iter()
        .map(|scheduled| {
            let mut run = record(*scheduled, RunStatus::Missed, cause_of(scheduled));
            run.finished_at = Some(now);
            run.reason = Some(format!("coalesced into the run for {last}"));
            run
        })
        .collect();
    runs.extend(late.iter().map(|scheduled| {
        let mut run = record(*scheduled, RunStatus::Missed, cause_of(scheduled));
        run.finished_at = Some(now);
        run.reason = Some(runner::missed_reason(now - scheduled.to_utc(), grace));
        run
    }));
    let due = on_time
        .iter()
        .map(|scheduled| {
            let status = if free {
                RunStatus::Running
            } else {
                RunStatus::Skipped
            };
            let mut run = record(*scheduled, status, cause_of(scheduled));
            if !free {
                run.finished_at = Some(now);
                run.reason = Some(format!(
                    "maximum number of running instances reached ({})",
                    job.max_instances
                ));
            }
            run
        })
        .collect::<Vec<_>>();
    runs.extend(due);
    // The schedule advances at submission, whatever becomes of the run.
    let mut next = job.clone();
    next.next_run_time = job.trigger.next_fire_time(Some(last), now);
    Claim {
        next: next.next_run_time.is_some().then_some(next),
        runs,
    }
}

/// Acts on a committed claim: logs the fire times missed (one line, also when they were
/// coalesced into a run that starts), starts the runs, or logs the skip, and the job's
/// removal. The job is named in the log as the claim leaves it, with the fire time after
/// these (none when its trigger has run out: the job is removed).
fn submit(
    scheduler: &Scheduler,
    job: Job,
    claim: Claim,
    misfire: Option<Misfire>,
    now: DateTime<Utc>,
) {
    match &claim.next {
        Some(_) => scheduler.changed(&job.id),
        None => scheduler.removed(&job.id),
    }
    let label = match &claim.next {
        Some(next) => next.describe(),
        None => job.describe_finished(),
    };
    // A claim that kept no runs was handled already (by another daemon): nothing to say.
    if let Some(misfire) = misfire.filter(|_| !claim.runs.is_empty()) {
        tracing::warn!(job_id = %logged(&job.id), "{}", runlog::missed_line(&label, now, &misfire));
    }
    let (runs, folded): (Vec<RunRecord>, Vec<RunRecord>) = claim
        .runs
        .into_iter()
        .partition(|run| run.status != RunStatus::Missed);
    for run in folded {
        scheduler.emit(SchedulerEvent::JobMissed {
            job_id: job.id.clone(),
            scheduled: run
                .scheduled_run_time
                .unwrap_or_else(|| run.created_at.fixed_offset()),
            run_id: run.id,
        });
    }
    let Some(first) = runs.first() else {
        return;
    };
    if first.status == RunStatus::Running {
        for run in &runs {
            scheduler.emit(SchedulerEvent::JobSubmitted {
                job_id: job.id.clone(),
                run_id: run.id.clone(),
                scheduled: run
                    .scheduled_run_time
                    .unwrap_or_else(|| run.created_at.fixed_offset()),
            });
        }
        tokio::spawn(runner::run_scheduled(scheduler.clone(), job, label, runs));
    } else {
        tracing::warn!(
            job_id = %logged(&job.id),
            "Execution of job \"{label}\" skipped: maximum number of running instances reached ({})",
            job.max_instances
        );
        for run in runs {
            scheduler.emit(SchedulerEvent::JobMaxInstances {
                job_id: job.id.clone(),
                scheduled: run
                    .scheduled_run_time
                    .unwrap_or_else(|| run.created_at.fixed_offset()),
                run_id: run.id,
            });
        }
    }
}
