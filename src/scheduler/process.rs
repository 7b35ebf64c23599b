//! One due-jobs pass: APScheduler 3.x's `_process_jobs` (apscheduler.md §5.2), done through
//! the store's claim so that daemons sharing a store take each fire time once, with a run
//! record written for every fire time in the same transaction that advances the job.
//!
//! # Bounded work, and what waits for what
//! A pass reads a batch of due jobs (no lock), decides each one — its due fire times, their
//! records, its next fire time: all of the trigger computation — with no lock held, then
//! commits the decisions in chunks, each in one store transaction under the jobs lock.
//!
//! - The work per job is bounded whatever its trigger and however far behind it is: at most
//!   [`MAX_DUE_RUN_TIMES`] fire times are visited, and a job with more due is caught up
//!   arithmetically (an interval) or by bisection (a cron): its latest due fire time is
//!   handled, and every earlier one goes into one summary `missed` record with the count and
//!   the span ([`Job::due_run_times`]). APScheduler steps through every missed fire time
//!   inside its jobstore lock; a `seconds: 0.000001` job a day behind then never lets go.
//!   A job found due again by the end of the pass that handled it ([`mark_hot`]) is caught
//!   up the same way from its second due fire time on, and the driver pauses between
//!   passes while such a job exists: a job firing faster than passes costs two records a
//!   pass, ten passes a second at most.
//! - The jobs lock (APScheduler's `_jobstores_lock`) keeps this daemon's read-modify-writes of
//!   a stored job apart: an API change (PATCH, pause, resume, replace, delete) never
//!   interleaves with a commit, so it is not refused as stale by its own daemon. Nobody
//!   computes a fire time while holding it: the API computes before taking it, the pass
//!   takes it for one chunk of at most [`MAX_COMMIT_RECORDS`] records' database work. An API
//!   write therefore waits for one chunk at most, never for a trigger.
//! - Correctness does not rest on the lock: a decision is committed only if the job's
//!   `version` is still the one it was made on (compare-and-set, the row locked on shared
//!   stores). A job changed through the API, or claimed by another daemon, after the pass
//!   read it is left out and decided afresh from what is stored. With
//!   `UNIQUE(job_id, scheduled_run_time)` on run records, this keeps every (job, fire time)
//!   taken once across daemons.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};

use super::runlog::{self, Misfire};
use super::{RunState, SHADOW_REASON, Scheduler, SchedulerError, SchedulerEvent, queue, runner};
use crate::job::{
    FireCount, Job, JobId, MAX_DUE_RUN_TIMES, Overlap, RunCause, RunRecord, RunStatus,
    SkippedRunTimes,
};
use crate::store::Claim;
use crate::telemetry::logged;

/// Fire times coalesced away that still get a `missed` record, per job and pass.
const MAX_COALESCED_RECORDS: usize = 100;

/// Due jobs read and decided at a time: bounds a transaction when thousands are due at once,
/// without a round trip per job.
const BATCH: usize = 256;

/// Run records committed in one transaction at most (a chunk may pass it by one job's
/// records, themselves at most [`MAX_DUE_RUN_TIMES`]): bounds how long a commit holds the
/// jobs lock and the store's write lock, which API writes wait for.
const MAX_COMMIT_RECORDS: usize = 1024;

/// Deciding yields to other tasks after this long, so a batch of far-behind jobs never holds
/// a runtime thread for long.
const DECIDE_SLICE: Duration = Duration::from_millis(2);

/// How far ahead of a fire time the driver claims it ([`process_due_jobs`]'s `horizon`):
/// the pass (the store's read, the claim's commit and its sync to disk: 2–3 ms on SQLite,
/// more on a database across a network) is then over when the fire time comes, and the run
/// starts on it rather than that much later. It is the window in which a change to a job
/// (a pause, a removal, a new schedule) comes after its next fire time was claimed and
/// leaves that run as claimed.
pub(super) const LOOK_AHEAD: Duration = Duration::from_millis(10);

/// What a pass found.
#[derive(Debug, Default, Clone)]
pub(super) struct Pass {
    /// The earliest `next_run_time` in the store after it: when the next pass is due.
    pub next: Option<DateTime<Utc>>,
    /// The jobs it handled, with their next fire time (`None`: removed).
    pub handled: Vec<(JobId, Option<DateTime<Utc>>)>,
}

/// After a pass, as of `now`, its end: the jobs it handled whose next fire time has come
/// already are *hot* — their fire times come faster than passes — and the next pass catches
/// them up as far behind, visiting only their first due fire time; the others are not (any
/// more). Answers whether any job is hot: then the driver pauses before the next pass
/// instead of running passes back to back.
///
/// Without this, a job a little below the far-behind bound at each pass (a 0.1 ms interval
/// and a pass every 100 ms has 1,000 fire times due) would be recorded fire time by fire
/// time, a thousand records a pass; hot, it gets two.
pub(super) fn mark_hot(scheduler: &Scheduler, pass: &Pass, now: DateTime<Utc>) -> bool {
    let mut hot = scheduler
        .inner
        .hot
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut any = false;
    for (id, next) in &pass.handled {
        if next.is_some_and(|next| next <= now) {
            any = true;
            hot.insert(id.clone());
        } else {
            hot.remove(id);
        }
    }
    any
}

fn is_hot(scheduler: &Scheduler, id: &str) -> bool {
    scheduler
        .inner
        .hot
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(id)
}

/// What the pass decided for one due job, before it is committed.
struct Decision {
    job: Job,
    claim: Claim,
    /// The fire times it misses, for its log line.
    misfire: Option<Misfire>,
    /// Whether an instance place was taken for its run.
    reserved: bool,
}

/// Submits the runs due by `horizon` (`now`, or a moment after it: the driver claims a fire
/// time just before it comes, [`LOOK_AHEAD`]), advances every due job, and answers when the
/// next pass is due (the earliest `next_run_time` in the store). A run claimed ahead starts
/// at its fire time, not before (`runner`); a job whose run would find no instance place free
/// is left for the pass at its fire time, when the run in progress may have ended.
pub(super) async fn process_due_jobs(
    scheduler: &Scheduler,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Result<Pass, SchedulerError> {
    let inner = &scheduler.inner;
    if scheduler.state() != RunState::Running {
        return Ok(Pass::default());
    }
    // One pass at a time (the driver's, or a test's `tick`): two passes deciding the same job
    // at once would each hold an instance place while deciding, and the one that lost its
    // place to the other could be the one whose claim commits.
    let _pass = inner.pass_lock.lock().await;
    let started = scheduler.started_at();
    let mut handled = Vec::new();
    loop {
        let jobs = inner.store.due_jobs(horizon, BATCH).await?;
        let read = jobs.len();
        let mut decisions = decide_all(scheduler, jobs, now, horizon, started)
            .await
            .into_iter();
        let mut committed = 0;
        loop {
            let mut chunk = Vec::new();
            let mut records = 0;
            for decision in decisions.by_ref() {
                records += decision.claim.runs.len();
                chunk.push(decision);
                if records >= MAX_COMMIT_RECORDS {
                    break;
                }
            }
            if chunk.is_empty() {
                break;
            }
            match commit(scheduler, chunk, now).await {
                Ok(Some(chunk_handled)) => {
                    committed += chunk_handled.len();
                    handled.extend(chunk_handled);
                }
                outcome => {
                    for rest in decisions.filter(|d| d.reserved) {
                        runner::release_instance(scheduler, &rest.job.id);
                    }
                    outcome?;
                    return Ok(Pass::default());
                }
            }
        }
        // A short batch was the last; a full one that committed nothing was taken by another
        // daemon (or changed under it): that daemon goes on, this one stops.
        if read < BATCH || committed == 0 {
            break;
        }
    }
    let next_job = inner.store.get_next_run_time().await?;
    let next_queued = queue::start_due(scheduler, now).await?;
    Ok(Pass {
        next: match (next_job, next_queued) {
            (Some(job), Some(queued)) => Some(job.min(queued)),
            (job, queued) => job.or(queued),
        },
        handled,
    })
}

/// Decides every job read, yielding now and then.
async fn decide_all(
    scheduler: &Scheduler,
    jobs: Vec<Job>,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
) -> Vec<Decision> {
    let mut decisions = Vec::with_capacity(jobs.len());
    let mut slice = Instant::now();
    for job in jobs {
        // Only a job that queues and has no place free here reads its queue (a store read).
        let waiting = match queue::waiting_count(scheduler, &job).await {
            Ok(waiting) => waiting,
            Err(error) => {
                tracing::warn!(job_id = %logged(&job.id), "Could not count the job's queued runs: {error:#}");
                u32::MAX
            }
        };
        decisions.extend(decide(scheduler, job, now, horizon, started, waiting));
        if slice.elapsed() >= DECIDE_SLICE {
            tokio::task::yield_now().await;
            slice = Instant::now();
        }
    }
    decisions
}

/// Commits one chunk of decisions under the jobs lock and submits what was committed:
/// answers each job handled with its next fire time (`None`: removed), or `None` when
/// the scheduler stopped meanwhile (nothing is committed then). Instance places of the
/// chunk's jobs whose claim starts no run are given back.
async fn commit(
    scheduler: &Scheduler,
    chunk: Vec<Decision>,
    now: DateTime<Utc>,
) -> Result<Option<Vec<(JobId, Option<DateTime<Utc>>)>>, SchedulerError> {
    let inner = &scheduler.inner;
    let mut reserved = Vec::new();
    let mut misfires = HashMap::new();
    let mut claims = Vec::with_capacity(chunk.len());
    for decision in chunk {
        if decision.reserved {
            reserved.push(decision.job.id.clone());
        }
        if let Some(misfire) = decision.misfire {
            misfires.insert(decision.job.id.clone(), misfire);
        }
        claims.push((decision.job, decision.claim));
    }
    let committed = {
        let _jobs = inner.jobs_lock.lock().await;
        if scheduler.state() == RunState::Running {
            inner.store.commit_claims(claims).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let committed = match committed {
        Ok(Some(committed)) => committed,
        stopped_or_failed => {
            for id in &reserved {
                runner::release_instance(scheduler, id);
            }
            stopped_or_failed?;
            return Ok(None);
        }
    };
    // A place is kept only by a job whose claim still starts a run: the store drops the runs
    // of a fire time that was handled already, and a claim on a job changed meanwhile.
    for id in reserved.iter().filter(|id| {
        !committed.iter().any(|(job, claim)| {
            &job.id == *id
                && claim
                    .runs
                    .iter()
                    .any(|run| run.status == RunStatus::Running)
        })
    }) {
        runner::release_instance(scheduler, id);
    }
    let mut handled = Vec::with_capacity(committed.len());
    for (job, claim) in committed {
        handled.push((
            job.id.clone(),
            claim
                .next
                .as_ref()
                .and_then(|next| next.next_run_time)
                .map(|time| time.to_utc()),
        ));
        let misfire = misfires.remove(&job.id);
        submit(scheduler, job, claim, misfire, now);
    }
    Ok(Some(handled))
}

/// The decision for one job due by `now`, or whose next fire time comes by `horizon`: its run
/// times (coalesced to the last when it says so; only the latest when it is far behind), one
/// record each — `running` when an instance place was free, else `skipped` — plus one summary
/// `missed` record for the fire times of a far-behind job that were not visited, and its next
/// fire time after the last of them. `None` leaves a job whose fire time is still to come for
/// the pass at that time: its run would find no instance place free now, or its fire times
/// come faster than the look-ahead.
fn decide(
    scheduler: &Scheduler,
    job: Job,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    waiting: u32,
) -> Option<Decision> {
    let hot = is_hot(scheduler, &job.id);
    // A job whose fire time has come is decided as of now; one whose fire time is still to
    // come (within the horizon) is claimed ahead, one fire time only: a job firing faster
    // than the look-ahead is decided as each fire time comes, as before.
    let ahead = job.next_run_time.is_some_and(|next| next.to_utc() > now);
    let until = if ahead { horizon } else { now };
    let due = job.due_run_times_visiting(until, if hot { 1 } else { MAX_DUE_RUN_TIMES });
    if ahead && (due.times.len() != 1 || due.skipped.is_some()) {
        return None;
    }
    let skipped = due.skipped;
    let mut run_times = due.times;
    let Some(&last) = run_times.last() else {
        return Some(Decision {
            claim: Claim {
                view: scheduler.view_for_store(&job),
                next: Some(job.clone()),
                runs: Vec::new(),
            },
            job,
            misfire: None,
            reserved: false,
        });
    };
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
    let missed = (coalesced.len() + late.len()) as u64;
    let misfire = (missed > 0 || skipped.is_some()).then(|| {
        // The earliest fire time missed is the earliest due (`next_run_time`): skipped ones
        // are the earliest, then late ones, then coalesced ones (all but the last). The
        // latest missed is the last late one, else the last coalesced one, else the last
        // skipped one.
        let last_missed = late
            .last()
            .or(coalesced.last())
            .copied()
            .or(skipped.map(|s| s.last))
            .unwrap_or(last);
        Misfire {
            first: job.next_run_time.unwrap_or(last_missed),
            last: last_missed,
            count: skipped
                .map_or(FireCount::Exact(0), |s| s.count)
                .plus(missed),
        }
    });
    let settings = &scheduler.inner.settings;
    let reserved =
        !settings.shadow && !on_time.is_empty() && runner::reserve_instance(scheduler, &job);
    if ahead && !reserved && !settings.shadow {
        // Not decided ahead: at its fire time the run in progress may have ended, as
        // APScheduler, which decides then, would find.
        return None;
    }
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
    let missed_record = |scheduled: &DateTime<FixedOffset>, reason: String| {
        let mut run = record(*scheduled, RunStatus::Missed, cause_of(scheduled));
        run.finished_at = Some(now);
        run.reason = Some(reason);
        run
    };
    // The fire times of a far-behind job that were not visited: one record for them all,
    // under the earliest (which no other record has: a second daemon making the same
    // decision is refused by the store, as for any fire time).
    let mut runs: Vec<RunRecord> = skipped
        .iter()
        .map(|skipped| missed_record(&skipped.first, far_behind_reason(skipped, last, hot)))
        .collect();
    // Fire times folded into the last one still get a record: a run that did not happen is
    // written down, never only logged (the newest ones, so a long downtime stays bounded).
    let skip = coalesced.len().saturating_sub(MAX_COALESCED_RECORDS);
    runs.extend(
        coalesced[skip..].iter().map(|scheduled| {
            missed_record(scheduled, format!("coalesced into the run for {last}"))
        }),
    );
    runs.extend(late.iter().map(|scheduled| {
        missed_record(
            scheduled,
            runner::missed_reason(now - scheduled.to_utc(), grace),
        )
    }));
    let fired = on_time.iter().map(|scheduled| {
        let status = if reserved {
            RunStatus::Running
        } else {
            RunStatus::Skipped
        };
        let mut run = record(*scheduled, status, cause_of(scheduled));
        if !reserved {
            run.finished_at = Some(now);
            run.reason = Some(if settings.shadow {
                SHADOW_REASON.to_owned()
            } else {
                format!(
                    "maximum number of running instances reached ({})",
                    job.max_instances
                )
            });
        }
        run
    });
    if reserved || settings.shadow {
        runs.extend(fired);
    } else {
        runs.extend(overlapping(&job, fired.collect(), waiting, now));
    }
    // The schedule advances at submission, whatever becomes of the run.
    let mut next = job.clone();
    next.next_run_time = job.trigger.next_fire_time(Some(last), until);
    let next = next.next_run_time.is_some().then_some(next);
    Some(Decision {
        claim: Claim {
            view: next
                .as_ref()
                .map(|next| scheduler.view_for_store(next))
                .unwrap_or_default(),
            next,
            runs,
        },
        job,
        misfire,
        reserved,
    })
}

/// The records of fire times that came while the job had `max_instances` runs in progress
/// here (`skipped` as they come), as its `overlap` policy decides them, `waiting` runs of the
/// job queued already: `queue` queues them up to `queue_limit` waiting, `replace` queues the
/// newest to replace the oldest run in progress (once: while a replacement waits, later fire
/// times are skipped), `skip` and `allow` skip them (APScheduler's rule).
fn overlapping(
    job: &Job,
    skipped: Vec<RunRecord>,
    waiting: u32,
    now: DateTime<Utc>,
) -> Vec<RunRecord> {
    let max = job.max_instances;
    match job.policies.overlap() {
        Overlap::Skip | Overlap::Allow => skipped,
        Overlap::Queue => {
            let limit = job.policies.queue_limit();
            let mut room = limit.saturating_sub(waiting);
            skipped
                .into_iter()
                .map(|run| {
                    if room == 0 {
                        let mut run = run;
                        run.reason = Some(format!(
                            "the job had max_instances ({max}) runs in progress and its queue was full (queue_limit {limit}; overlap: queue)"
                        ));
                        return run;
                    }
                    room -= 1;
                    queue::queued(
                        run,
                        job,
                        now,
                        format!(
                            "queued: the job had max_instances ({max}) runs in progress; it starts when one ends (overlap: queue)"
                        ),
                    )
                })
                .collect()
        }
        Overlap::Replace => {
            let newest = skipped.len().saturating_sub(1);
            skipped
                .into_iter()
                .enumerate()
                .map(|(i, mut run)| {
                    if waiting > 0 {
                        run.reason = Some(
                            "a run that replaces the one in progress waits to start already (overlap: replace)"
                                .to_owned(),
                        );
                        run
                    } else if i < newest {
                        run.reason =
                            Some("replaced by a newer fire time (overlap: replace)".to_owned());
                        run
                    } else {
                        queue::queued(
                            run,
                            job,
                            now,
                            format!(
                                "queued: replaces the oldest of the job's runs in progress (max_instances {max}), which is cancelled (overlap: replace)"
                            ),
                        )
                    }
                })
                .collect()
        }
    }
}

/// The reason on a far-behind job's summary record.
fn far_behind_reason(
    skipped: &SkippedRunTimes,
    handled: DateTime<FixedOffset>,
    hot: bool,
) -> String {
    let why = if hot {
        "the job was due again as soon as a pass had handled it (its fire times come faster \
         than the scheduler's passes)"
            .to_owned()
    } else {
        format!("the job was more than {MAX_DUE_RUN_TIMES} fire times behind")
    };
    let which = match skipped.count {
        FireCount::Exact(1) => format!("1 fire time ({}) was", skipped.first),
        count => format!(
            "{count} fire times from {} to {} were",
            skipped.first, skipped.last
        ),
    };
    format!("{which} not run: {why}, and only its latest due fire time ({handled}) was handled")
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
    if let Some(misfire) = misfire.as_ref().filter(|_| !claim.runs.is_empty()) {
        tracing::warn!(job_id = %logged(&job.id), "{}", runlog::missed_line(&label, now, misfire));
    }
    let (runs, folded): (Vec<RunRecord>, Vec<RunRecord>) = claim
        .runs
        .into_iter()
        .partition(|run| run.status != RunStatus::Missed);
    if let (Some(latest), Some(misfire)) = (folded.last(), &misfire) {
        // One notification for the pass's missed fire times, however many records.
        super::notifications::missed(scheduler, &job, latest, misfire.count.value().max(1));
    }
    for run in folded {
        scheduler.emit(SchedulerEvent::JobMissed {
            job_id: job.id.clone(),
            scheduled: run.scheduled_or_created(),
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
                scheduled: run.scheduled_or_created(),
            });
        }
        tokio::spawn(runner::run_scheduled(scheduler.clone(), job, label, runs));
    } else if scheduler.inner.settings.shadow {
        runner::report_shadowed(scheduler, &job, &label, runs);
    } else {
        let (waiting, skipped): (Vec<RunRecord>, Vec<RunRecord>) = runs
            .into_iter()
            .partition(|run| run.status == RunStatus::Queued);
        if !skipped.is_empty() {
            tracing::warn!(
                job_id = %logged(&job.id),
                "Execution of job \"{label}\" skipped: maximum number of running instances reached ({})",
                job.max_instances
            );
        }
        for run in skipped {
            scheduler.emit(SchedulerEvent::JobMaxInstances {
                job_id: job.id.clone(),
                scheduled: run.scheduled_or_created(),
                run_id: run.id,
            });
        }
        if !waiting.is_empty() {
            queue::queued_written(scheduler);
        }
        for run in waiting {
            let overlap = job.policies.overlap();
            tracing::info!(
                job_id = %logged(&job.id),
                run_id = %run.id,
                "Run of job \"{label}\" (scheduled at {}) queued: maximum number of running instances reached ({}; overlap: {})",
                run.scheduled_or_created(),
                job.max_instances,
                overlap.as_str()
            );
            if overlap == Overlap::Replace {
                tokio::spawn(queue::replace_oldest(
                    scheduler.clone(),
                    job.id.to_string(),
                    run.id.to_string(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;
    use crate::job::{JobDefaults, JobSpec};
    use crate::scheduler::testing::scheduler;
    use crate::store::RunFilter;

    /// A date job due `after` from now, running `ok.py`; the scheduler running without its
    /// driver, so that only the test's passes decide.
    async fn due_soon(after: TimeDelta) -> (Scheduler, tempfile::TempDir, Job) {
        let (scheduler, dir) = scheduler().await;
        std::fs::write(dir.path().join("ok.py"), "print('ok')\n").unwrap();
        scheduler.set_state(RunState::Running);
        let now = Utc::now();
        let body = json!({"id": "soon", "func": "task:run_script", "args": ["ok.py"],
                          "trigger": "date",
                          "run_date": (now + after).to_rfc3339_opts(chrono::SecondsFormat::Micros, false)});
        let spec = JobSpec::parse(&body, &JobDefaults::default(), chrono_tz::UTC, now).unwrap();
        let job = scheduler.add_job(spec).await.unwrap();
        (scheduler, dir, job)
    }

    async fn runs(scheduler: &Scheduler) -> Vec<RunRecord> {
        let filter = RunFilter {
            job: Some("soon".to_owned()),
            limit: 10,
            ..RunFilter::default()
        };
        scheduler.list_runs(&filter).await.unwrap()
    }

    #[tokio::test]
    async fn a_fire_time_claimed_ahead_runs_at_it_not_before() {
        let (scheduler, _dir, job) = due_soon(TimeDelta::milliseconds(200)).await;
        let due = job.next_run_time.unwrap();
        let pass = process_due_jobs(&scheduler, Utc::now(), due.to_utc())
            .await
            .unwrap();
        // Claimed before it came: the date job is done with, its run recorded.
        assert_eq!(pass.handled, vec![(job.id.clone(), None)]);
        let mut ended = Vec::new();
        for _ in 0..500 {
            ended = runs(&scheduler).await;
            if ended.iter().all(|run| run.status != RunStatus::Running) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let [run] = ended.as_slice() else {
            panic!("one run expected: {ended:?}")
        };
        assert_eq!(run.scheduled_run_time, Some(due));
        assert!(run.created_at < due.to_utc(), "{run:?}");
        // Unit tests have no supervisor to start scripts with (tests/daemon's runs do): the
        // start fails, and the attempt is not made before the fire time.
        assert_eq!(run.status, RunStatus::Failed, "{run:?}");
        assert!(run.finished_at.unwrap() >= due.to_utc(), "{run:?}");
    }

    #[tokio::test]
    async fn a_job_with_no_place_free_is_decided_at_its_fire_time_not_ahead() {
        let (scheduler, _dir, job) = due_soon(TimeDelta::milliseconds(200)).await;
        let due = job.next_run_time.unwrap().to_utc();
        // A run of it in progress holds its one place.
        assert!(runner::reserve_instance(&scheduler, &job));
        let pass = process_due_jobs(&scheduler, Utc::now(), due).await.unwrap();
        assert!(pass.handled.is_empty(), "{:?}", pass.handled);
        // It is the next pass's: the driver wakes for it at its fire time.
        assert_eq!(pass.next, Some(due));
        assert!(runs(&scheduler).await.is_empty());
        let kept = scheduler.get_job(&job.id).await.unwrap();
        assert_eq!(kept.next_run_time, job.next_run_time);

        // At its fire time, still without a place: skipped, as APScheduler decides it then.
        let pass = process_due_jobs(&scheduler, due, due + LOOK_AHEAD)
            .await
            .unwrap();
        assert_eq!(pass.handled, vec![(job.id.clone(), None)]);
        let [run] = runs(&scheduler).await.try_into().unwrap();
        assert_eq!(run.status, RunStatus::Skipped);
        assert_eq!(
            run.reason.as_deref(),
            Some("maximum number of running instances reached (1)")
        );
        runner::release_instance(&scheduler, &job.id);
    }
}
