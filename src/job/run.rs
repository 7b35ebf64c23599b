//! Run records: every execution of a job — and every run that did not happen — as a record a
//! user can read (CONTRACT §6). Missed and skipped runs are records too, never only log lines.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::{JobId, RunId};

/// Where a run stands, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The script is running.
    Running,
    /// Exit code 0.
    Succeeded,
    /// Non-zero exit code, killed by a signal, or could not start.
    Failed,
    /// Killed at the job's `timeout`.
    TimedOut,
    /// Started later than `misfire_grace_time` allows; the script did not run.
    Missed,
    /// `max_instances` runs were in flight; the script did not run.
    Skipped,
    /// Stopped by a daemon shutdown, or found `running` after a crash.
    Interrupted,
    /// Stopped through `POST P/runs/<id>/cancel`, or replaced by a newer run
    /// (`overlap: replace`).
    Cancelled,
    /// Waiting to start: a retry waiting for its delay (`retry`), or a fire time that came
    /// while the job was running (`overlap: queue`, `replace`), waiting for a run to end.
    Queued,
}

impl RunStatus {
    /// The status as stored and shown (`timed_out`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Missed => "missed",
            RunStatus::Skipped => "skipped",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Queued => "queued",
        }
    }

    /// Every status.
    pub const ALL: [RunStatus; 9] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Missed,
        RunStatus::Skipped,
        RunStatus::Interrupted,
        RunStatus::Cancelled,
        RunStatus::Queued,
    ];

    /// Reads [`RunStatus::as_str`]'s form back.
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// Why a run exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunCause {
    /// Its trigger fired.
    Schedule,
    /// `POST P/jobs/<id>/run`.
    RunNow,
    /// A fire time that passed while the daemon was down, handled at start-up.
    Startup,
    /// The job's `retry` policy: an earlier attempt failed or timed out (`retry_of`).
    Retry,
}

impl RunCause {
    /// The cause as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunCause::Schedule => "schedule",
            RunCause::RunNow => "run_now",
            RunCause::Startup => "startup",
            RunCause::Retry => "retry",
        }
    }

    /// Reads [`RunCause::as_str`]'s form back.
    pub fn parse(text: &str) -> Option<RunCause> {
        [
            RunCause::Schedule,
            RunCause::RunNow,
            RunCause::Startup,
            RunCause::Retry,
        ]
        .into_iter()
        .find(|cause| cause.as_str() == text)
    }
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// A UUIDv7: ids sort by creation time, which pages the history.
    pub id: RunId,
    /// The job (which may since have been deleted).
    pub job_id: JobId,
    /// When the record was made (retention counts from here).
    pub created_at: DateTime<Utc>,
    /// The fire time this run was for; `None` for run-now.
    pub scheduled_run_time: Option<DateTime<FixedOffset>>,
    /// When the script started; `None` when it never did.
    pub started_at: Option<DateTime<Utc>>,
    /// When the run ended; `None` while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Where the run stands.
    pub status: RunStatus,
    /// Why it was missed, skipped, interrupted or failed to start, in words.
    pub reason: Option<String>,
    /// The script's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The last `output_limit` bytes of stdout.
    pub stdout: String,
    /// The last `output_limit` bytes of stderr.
    pub stderr: String,
    /// stdout was longer than what is kept.
    pub stdout_truncated: bool,
    /// stderr was longer than what is kept.
    pub stderr_truncated: bool,
    /// A function job's return value, as JSON text (`None` for a script, or a call that did
    /// not return).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Why the run exists.
    pub cause: RunCause,
    /// Which try of its job's run this is: 1, or more for a retry (`retry`).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The run this one retries (the attempt before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<RunId>,
    /// When a `queued` run may start: a retry after its delay, a queued fire time at once
    /// (when a run of its job ends). Kept once it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// A queued run's job as it was when queued (`Job::to_state`): what it runs if the job
    /// is gone by then because its trigger ran out (a date job's retry). Not shown.
    #[serde(skip)]
    pub job_state: Option<String>,
    /// The host name of the daemon that ran it.
    pub node: String,
    /// The id of the daemon process that owns it (not shown; see `tickd_nodes`).
    pub owner: String,
}

fn first_attempt() -> u32 {
    1
}

impl RunRecord {
    /// A new record made at `now`, with a fresh time-ordered id and no output yet.
    pub fn new(
        now: DateTime<Utc>,
        job_id: &str,
        scheduled_run_time: Option<DateTime<FixedOffset>>,
        status: RunStatus,
        cause: RunCause,
        node: &str,
        owner: &str,
    ) -> RunRecord {
        RunRecord {
            id: RunId::generate(),
            job_id: job_id.into(),
            created_at: now,
            scheduled_run_time,
            started_at: None,
            finished_at: None,
            status,
            reason: None,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            result: None,
            cause,
            attempt: 1,
            retry_of: None,
            due_at: None,
            job_state: None,
            node: node.to_owned(),
            owner: owner.to_owned(),
        }
    }

    /// Whether it waits to start ([`RunStatus::Queued`]) or ended: neither `running` nor
    /// waiting. Only ended runs are pruned from the history.
    pub fn is_waiting_or_running(&self) -> bool {
        matches!(self.status, RunStatus::Running | RunStatus::Queued)
    }

    /// The fire time events report for this run: its `scheduled_run_time`, or when the record
    /// was made for a run that has none (run-now), as APScheduler's events always carry one.
    pub fn scheduled_or_created(&self) -> DateTime<FixedOffset> {
        self.scheduled_run_time
            .unwrap_or_else(|| self.created_at.fixed_offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_causes_round_trip_their_text() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
        }
        for cause in [
            RunCause::Schedule,
            RunCause::RunNow,
            RunCause::Startup,
            RunCause::Retry,
        ] {
            assert_eq!(RunCause::parse(cause.as_str()), Some(cause));
        }
        assert_eq!(RunStatus::parse("bogus"), None);
    }

    #[test]
    fn run_ids_sort_by_creation() {
        let made_now = || {
            RunRecord::new(
                Utc::now(),
                "j",
                None,
                RunStatus::Running,
                RunCause::RunNow,
                "n",
                "o",
            )
        };
        let (a, b) = (made_now(), made_now());
        assert!(a.id < b.id);
    }
}
