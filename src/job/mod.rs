//! Jobs: what runs (a built-in task and its arguments), when (a trigger) and with which
//! options (`misfire_grace_time`, `coalesce`, `max_instances`). A port of APScheduler's `Job`.

mod run;
mod spec;
mod state;
mod view;

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::telemetry::logged;
use crate::trigger::{Trigger, TriggerError};

/// A scheduled job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Unique id (non-empty, at most 191 bytes so it fits a database index).
    pub id: String,
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
pub use run::{RunCause, RunRecord, RunStatus};
pub use spec::{JobChanges, JobDefaults, JobSpec, MAX_ID_BYTES, MAX_OPTION_SECONDS, NextRunTime};
pub use view::sort_keys;

/// Most run times gathered for one due job: a daemon that was down for a year with a
/// `second='*'` job must not build a 31-million-entry list before coalescing it.
const MAX_RUN_TIMES: usize = 10_000;

impl Job {
    /// The run times due by `now`, oldest first, starting at `next_run_time`
    /// (APScheduler's `Job._get_run_times`). Instants are compared in UTC. At most
    /// `MAX_RUN_TIMES` are kept: the newest ones, since coalescing keeps the last.
    pub fn run_times_until(&self, now: DateTime<Utc>) -> Vec<DateTime<FixedOffset>> {
        let mut run_times = std::collections::VecDeque::new();
        let mut next = self.next_run_time;
        while let Some(time) = next {
            if time > now {
                break;
            }
            if run_times.len() == MAX_RUN_TIMES {
                run_times.pop_front();
            }
            run_times.push_back(time);
            next = self.trigger.next_fire_time(Some(time), now);
        }
        run_times.into()
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
    /// A timeout outside what the API accepts (more than 0, at most [`MAX_OPTION_SECONDS`]),
    /// which only a store written by hand or by an older tickd can hold: the run cannot be
    /// supervised as the job says, so it is not started.
    pub fn run_timeout(&self) -> Result<Option<Duration>, String> {
        match self.timeout {
            None => Ok(None),
            Some(secs) if secs > 0.0 && secs <= MAX_OPTION_SECONDS as f64 => {
                Ok(Duration::try_from_secs_f64(secs).ok())
            }
            Some(secs) => Err(format!(
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
