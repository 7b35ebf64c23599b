//! Jobs: what runs (a built-in task and its arguments), when (a trigger) and with which
//! options (`misfire_grace_time`, `coalesce`, `max_instances`). A port of APScheduler's `Job`.

mod id;
pub mod notify;
pub mod options;
pub mod policy;
mod run;
mod spec;
mod state;

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::telemetry::logged;
use crate::trigger::{Trigger, TriggerError};

pub use crate::trigger::FireCount;

/// A scheduled job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Unique id (non-empty, at most 191 bytes so it fits a database index).
    pub id: JobId,
    /// Display name; defaults to the id.
    pub name: String,
    /// The built-in task (`task:success`, `task:run_script`).
    pub func: String,
    /// Positional arguments; `args[0]` is the script.
    pub args: Vec<Value>,
    /// Keyword arguments, given to the script as JSON in `TICKD_KWARGS`.
    pub kwargs: Map<String, Value>,
    /// When the job fires.
    pub trigger: Trigger,
    /// Seconds a run may start late; `None` = no limit.
    pub misfire_grace_time: Option<u64>,
    /// Collapse several due runs into one.
    pub coalesce: bool,
    /// Runs of this job allowed at once.
    pub max_instances: u32,
    /// The next time the job fires; `None` = paused.
    pub next_run_time: Option<DateTime<FixedOffset>>,
    /// Extension: seconds a run may take before it is killed (echoed only when set).
    pub timeout: Option<f64>,
    /// Extension: `retry`, `overlap`, `queue_limit` (each echoed only when set).
    pub policies: Policies,
    /// The store's write counter for this job (compare-and-set between writers); not part
    /// of the job's state or its JSON.
    pub version: i64,
    /// Added while the scheduler was stopped: it gets its options' defaults and its first
    /// next_run_time when the scheduler starts (APScheduler's "pending" jobs).
    pub pending: bool,
}

/// Why a job specification was refused. `Display` is the reference's text (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A bad trigger.
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    /// A bad job option or body.
    #[error("{0}")]
    Invalid(String),
}

pub use id::{JobId, RunId};
pub use notify::{NotifyEvent, NotifyRule};
pub use options::MAX_OPTION_SECONDS;
pub use policy::{Overlap, Policies, RetryPolicy};
pub use run::{RunCause, RunRecord, RunStatus};
pub use spec::{JobChanges, JobDefaults, JobParser, JobSpec, MAX_ID_BYTES, NextRunTime};

/// Fire times examined one by one for a due job in one scheduler pass. A job with more due
/// is *far behind* (a daemon down for days with a `second='*'` job, or an interval shorter
/// than a pass): the rest of its fire times are summarised, never visited one by one.
pub const MAX_DUE_RUN_TIMES: usize = 1000;

/// The fire times a due job has by some moment ([`Job::due_run_times`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DueRunTimes {
    /// The fire times to handle one by one, oldest first: every one due, or, for a job far
    /// behind, only the latest.
    pub times: Vec<DateTime<FixedOffset>>,
    /// For a job far behind: the earlier fire times, which get one `missed` record between
    /// them.
    pub skipped: Option<SkippedRunTimes>,
}

/// The fire times of a far-behind job that are not handled one by one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkippedRunTimes {
    /// The earliest: the job's `next_run_time`.
    pub first: DateTime<FixedOffset>,
    /// The latest (the one before the fire time that is handled).
    pub last: DateTime<FixedOffset>,
    /// How many (exact for an interval, a lower bound for a cron).
    pub count: FireCount,
}

impl Job {
    /// The run times due by `now`, oldest first, starting at `next_run_time`
    /// (APScheduler's `Job._get_run_times`). Instants are compared in UTC.
    ///
    /// At most [`MAX_DUE_RUN_TIMES`] are visited. A job with more due is far behind: then
    /// only its latest due fire time is answered, found arithmetically
    /// ([`Trigger::catch_up`](crate::trigger::Trigger::catch_up)), and the earlier ones are
    /// summarised in [`DueRunTimes::skipped`]. The work is bounded whatever the trigger and
    /// the distance: APScheduler steps through every missed fire time, which for a
    /// microsecond interval a day behind never ends.
    pub fn due_run_times(&self, now: DateTime<Utc>) -> DueRunTimes {
        self.due_run_times_visiting(now, MAX_DUE_RUN_TIMES)
    }

    /// [`Job::due_run_times`] visiting at most `visit` fire times one by one (at least one):
    /// with more due, the job is handled as far behind.
    pub fn due_run_times_visiting(&self, now: DateTime<Utc>, visit: usize) -> DueRunTimes {
        let visit = visit.max(1);
        let mut times = Vec::new();
        let mut next = self.next_run_time;
        while let Some(time) = next.filter(|time| *time <= now) {
            if times.len() == visit {
                return self.far_behind(times, time, now);
            }
            times.push(time);
            next = self.trigger.next_fire_time(Some(time), now);
        }
        DueRunTimes {
            times,
            skipped: None,
        }
    }

    /// The due run times of a job found far behind: `visited` are the first ones, `beyond`
    /// the due one after them.
    fn far_behind(
        &self,
        visited: Vec<DateTime<FixedOffset>>,
        beyond: DateTime<FixedOffset>,
        now: DateTime<Utc>,
    ) -> DueRunTimes {
        let visited_count = visited.len() as u64;
        let first = visited.first().copied().unwrap_or(beyond);
        let catch_up = self.trigger.catch_up(beyond, now);
        let last = match catch_up.previous {
            Some(previous) => previous,
            None => visited.last().copied().unwrap_or(first),
        };
        let count = catch_up.before_latest.map_or(
            FireCount::AtLeast(visited_count + u64::from(catch_up.latest != beyond)),
            |from_beyond| from_beyond.plus(visited_count),
        );
        DueRunTimes {
            times: vec![catch_up.latest],
            skipped: Some(SkippedRunTimes { first, last, count }),
        }
    }

    /// [`Job::due_run_times`]' fire times to handle one by one.
    pub fn run_times_until(&self, now: DateTime<Utc>) -> Vec<DateTime<FixedOffset>> {
        self.due_run_times(now).times
    }

    /// `misfire_grace_time` as a duration (`None` = no limit). The API accepts at most
    /// [`MAX_OPTION_SECONDS`]; a larger value read from an older store saturates instead of
    /// overflowing.
    pub fn misfire_grace(&self) -> Option<TimeDelta> {
        self.misfire_grace_time.map(|secs| {
            i64::try_from(secs)
                .ok()
                .and_then(TimeDelta::try_seconds)
                .unwrap_or(TimeDelta::MAX)
        })
    }

    /// The job's own `timeout` as a duration (`None` when it sets none).
    ///
    /// # Errors
    /// A timeout outside what the API accepts ([`options::timeout`]), which only a store
    /// written by hand or by an older tickd can hold: the run cannot be supervised as the job
    /// says, so it is not started.
    pub fn run_timeout(&self) -> Result<Option<Duration>, String> {
        let Some(secs) = self.timeout else {
            return Ok(None);
        };
        match options::timeout(secs) {
            Ok(secs) => Ok(Duration::try_from_secs_f64(secs).ok()),
            Err(_) => Err(format!(
                "its timeout ({secs} s) is out of range: more than 0 and at most \
                 {MAX_OPTION_SECONDS} s (a year); change the job's timeout"
            )),
        }
    }

    /// `name (trigger: kind, next run at: time)`, as APScheduler names a job in its log lines
    /// (which are its only use): the name as [`logged`] shows it, escaped and bounded.
    pub fn describe(&self) -> String {
        match self.next_run_time {
            Some(t) => format!(
                "{} (trigger: {}, next run at: {})",
                logged(&self.name),
                self.trigger.kind(),
                t.format("%Y-%m-%d %H:%M:%S %:z")
            ),
            None => format!(
                "{} (trigger: {}, paused)",
                logged(&self.name),
                self.trigger.kind()
            ),
        }
    }

    /// [`Job::describe`] for a job whose trigger has no fire time left (a date job that
    /// fired): it is removed, not paused.
    pub fn describe_finished(&self) -> String {
        format!(
            "{} (trigger: {}, no next run)",
            logged(&self.name),
            self.trigger.kind()
        )
    }
}
