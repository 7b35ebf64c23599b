//! The schedule preview (issue 16): a job's next fire times, computed the way the scheduler
//! will compute them, and nothing written.
//!
//! The same code path, step for step: the first time is what the scheduler holds or would
//! compute (a stored job's `next_run_time`; for a body, what an add computes,
//! `next_fire_time(None, now)` on the scheduler's clock), and each next one is
//! `trigger.next_fire_time(Some(previous), previous)`, as a pass advances a job after
//! submitting it (`process.rs`; the pass's `now` is at or after `previous`, which for these
//! triggers gives the same answer). Jitter is left out: it is random by definition, and the
//! answer names it so a client can show "± N s".
//!
//! A job whose `next_run_time` is already past (the scheduler paused, or a pass about to
//! take it) is previewed from the fire time the pass will give it once it has handled what
//! is due: the latest due one is found in bounded work (`Trigger::catch_up`, as a far-behind
//! job is caught up), and the preview starts after it, naming the past `next_run_time`.

use chrono::{DateTime, FixedOffset, Utc};

use super::{Scheduler, SchedulerError};
use crate::job::{Job, JobId, JobSpec, NextRunTime};
use crate::trigger::Trigger;

/// The most fire times one preview answers.
pub const MAX_PREVIEW_TIMES: usize = 100;

/// A job's next fire times, and what a reader needs to show them.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The job's trigger (its kind, zone, jitter and plain words).
    pub trigger: Trigger,
    /// The next fire times, oldest first: fewer than asked when the trigger ends.
    pub fire_times: Vec<DateTime<FixedOffset>>,
    /// The job is paused (`next_run_time` null): these are the times it would have if resumed
    /// now.
    pub paused: bool,
    /// The job was added while the scheduler was stopped: its first fire time is computed at
    /// `start`; these are the times it would have if the scheduler started now.
    pub pending: bool,
    /// A stored `next_run_time` already past: the pass that handles it runs or records it
    /// (misfire, coalesce), and the times listed follow the latest one due.
    pub overdue_since: Option<DateTime<FixedOffset>>,
}

impl Scheduler {
    /// `GET P/jobs/<id>/preview`: a stored job's next `count` fire times (at most
    /// [`MAX_PREVIEW_TIMES`]) from the scheduler's clock's now. Reads only.
    ///
    /// # Errors
    /// `JobNotFound` (while stopped, as for every read, only pending jobs are visible); store
    /// failures.
    pub async fn preview(&self, id: &JobId, count: usize) -> Result<Preview, SchedulerError> {
        let job = self.visible_job(id).await?;
        Ok(preview_job(&job, self.now(), count))
    }

    /// `POST P/preview`: the fire times the job a `POST P/jobs` body describes would have,
    /// were it added now (the spec was read with [`Scheduler::job_parser`], at the clock's
    /// now). Nothing is stored; the script is checked as an add checks it, so the preview
    /// refuses what an add refuses, but for a function job's module, which only the add
    /// reads (a Python process each time: the console previews as the user types). An id
    /// that is taken is no fault here: nothing is added.
    ///
    /// # Errors
    /// `Invalid` when the script cannot be run, with the add's text.
    pub fn preview_spec(&self, spec: &JobSpec, count: usize) -> Result<Preview, SchedulerError> {
        self.inner.executor.check(&spec.job.func, &spec.job.args)?;
        let trigger = &spec.job.trigger;
        let now = spec.read_at;
        let (first, paused) = match spec.next_run_time {
            NextRunTime::Compute => (first_fire_time(trigger, now), false),
            NextRunTime::Paused => (first_fire_time(trigger, now), true),
            NextRunTime::At(time) => (Some(time), false),
        };
        Ok(Preview {
            trigger: trigger.clone(),
            fire_times: fire_times(trigger, first, count),
            paused,
            pending: false,
            overdue_since: None,
        })
    }
}

/// A stored job's preview at `now`.
fn preview_job(job: &Job, now: DateTime<Utc>, count: usize) -> Preview {
    let trigger = &job.trigger;
    let mut preview = Preview {
        trigger: trigger.clone(),
        fire_times: Vec::new(),
        paused: false,
        pending: job.pending,
        overdue_since: None,
    };
    let first = match job.next_run_time {
        // Pending: `start` keeps a given time, else computes the first from then.
        _ if job.pending => job.next_run_time.or_else(|| first_fire_time(trigger, now)),
        // Paused: `resume_job` computes the first from now.
        None => {
            preview.paused = true;
            first_fire_time(trigger, now)
        }
        Some(next) if next.to_utc() > now => Some(next),
        Some(overdue) => {
            preview.overdue_since = Some(overdue);
            let latest = trigger.catch_up(overdue, now).latest;
            trigger
                .without_jitter()
                .next_fire_time(Some(latest), latest.to_utc())
        }
    };
    preview.fire_times = fire_times(trigger, first, count);
    preview
}

/// What an add (or a resume) computes: `next_fire_time(None, now)`, without jitter.
fn first_fire_time(trigger: &Trigger, now: DateTime<Utc>) -> Option<DateTime<FixedOffset>> {
    trigger.without_jitter().next_fire_time(None, now)
}

/// `first` and the fire times after it, `count` in all (at most [`MAX_PREVIEW_TIMES`]), each
/// from the one before as a pass advances a job.
fn fire_times(
    trigger: &Trigger,
    first: Option<DateTime<FixedOffset>>,
    count: usize,
) -> Vec<DateTime<FixedOffset>> {
    let trigger = trigger.without_jitter();
    let count = count.min(MAX_PREVIEW_TIMES);
    let mut times = Vec::with_capacity(count);
    let mut next = first;
    while let Some(time) = next.filter(|_| times.len() < count) {
        times.push(time);
        next = trigger.next_fire_time(Some(time), time.to_utc());
    }
    times
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, FixedOffset, Utc};
    use chrono_tz::Tz;
    use serde_json::{Map, Value, json};

    use super::*;

    fn trigger(kind: &str, args: Value) -> Trigger {
        let args: Map<String, Value> = args.as_object().unwrap().clone();
        Trigger::from_args(kind, &args, Tz::UTC, now()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn job(trigger: Trigger, next_run_time: Option<DateTime<FixedOffset>>) -> Job {
        Job {
            id: "j".into(),
            name: "j".into(),
            func: "task:success".into(),
            args: Vec::new(),
            kwargs: Map::new(),
            trigger,
            misfire_grace_time: None,
            coalesce: true,
            max_instances: 1,
            next_run_time,
            timeout: None,
            policies: crate::job::Policies::default(),
            version: 0,
            pending: false,
        }
    }

    #[test]
    fn walks_from_the_stored_time_and_stops_where_the_trigger_ends() {
        let hourly = trigger(
            "interval",
            json!({"hours": 1, "start_date": "2030-01-01", "end_date": "2030-01-01 03:00:00"}),
        );
        let stored = job(hourly, Some(at("2030-01-01T01:00:00+00:00")));
        let preview = preview_job(&stored, now(), 10);
        assert_eq!(
            preview.fire_times,
            [
                at("2030-01-01T01:00:00Z"),
                at("2030-01-01T02:00:00Z"),
                at("2030-01-01T03:00:00Z")
            ]
        );
        assert!(!preview.paused && preview.overdue_since.is_none());
    }

    #[test]
    fn a_paused_job_previews_from_now_and_an_overdue_one_after_the_latest_due() {
        let every_minute = trigger("cron", json!({"minute": "*"}));
        let paused = preview_job(&job(every_minute.clone(), None), now(), 2);
        assert!(paused.paused);
        assert_eq!(
            paused.fire_times,
            [at("2030-01-01T00:00:00Z"), at("2030-01-01T00:01:00Z")]
        );
        let behind = job(every_minute, Some(at("2029-12-31T00:00:00+00:00")));
        let later: DateTime<Utc> = "2030-01-01T00:00:30Z".parse().unwrap();
        let preview = preview_job(&behind, later, 2);
        assert_eq!(preview.overdue_since, Some(at("2029-12-31T00:00:00Z")));
        assert_eq!(
            preview.fire_times,
            [at("2030-01-01T00:01:00Z"), at("2030-01-01T00:02:00Z")]
        );
    }

    #[test]
    fn jitter_is_left_out_and_the_count_is_bounded() {
        let jittery = trigger(
            "interval",
            json!({"seconds": 10, "start_date": "2030-01-01", "jitter": 5}),
        );
        let preview = preview_job(&job(jittery, Some(at("2030-01-01T00:00:10Z"))), now(), 1000);
        assert_eq!(preview.fire_times.len(), MAX_PREVIEW_TIMES);
        assert_eq!(preview.trigger.jitter(), Some(5.0));
        for (i, time) in preview.fire_times.iter().enumerate() {
            assert_eq!(time.timestamp(), 1_893_456_000 + 10 * (i as i64 + 1));
        }
    }
}
