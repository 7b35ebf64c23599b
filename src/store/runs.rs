//! The run log: one record per run of a job, including the runs that did not happen (missed,
//! skipped), kept beside the jobs so that history survives restarts and is shared by the
//! daemons sharing a store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{StoreError, from_micros, to_micros};
use crate::job::{RunCause, RunRecord, RunStatus};

/// The `running` runs [`RunLog::interrupt_orphaned_runs`] marks `interrupted`: those whose
/// owner is not `me` and has no heartbeat since `alive_since`.
#[derive(Debug, Clone, Copy)]
pub struct Orphans<'a> {
    /// This daemon's id: its own runs are alive.
    pub me: &'a str,
    /// A daemon whose last heartbeat is older is dead.
    pub alive_since: DateTime<Utc>,
    /// The reason the records are given.
    pub reason: &'a str,
    /// Their finish time.
    pub at: DateTime<Utc>,
}

/// Which runs [`RunLog::list_runs`] answers: runs of every job, newest (highest id) first,
/// narrowed by each condition given. Times are when the run began: its record's creation
/// (`created_at`), which is when a script that ran started and when a missed or skipped run
/// was recorded — the one time every run has, and the one its id is ordered by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only this job's runs.
    pub job: Option<String>,
    /// Only runs in one of these statuses; empty for any.
    pub statuses: Vec<RunStatus>,
    /// Only runs that began at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only runs that began before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only runs older (lower id) than this run id: the previous page's last.
    pub before: Option<String>,
    /// At most this many runs.
    pub limit: u32,
}

impl RunFilter {
    /// Whether a run with this job, status and creation time (µs) passes the filter's
    /// conditions other than `before` and `limit`: for stores that filter as they read.
    pub(crate) fn admits(&self, job_id: &str, status: &str, created_micros: i64) -> bool {
        self.job.as_deref().is_none_or(|job| job == job_id)
            && (self.statuses.is_empty() || self.statuses.iter().any(|s| s.as_str() == status))
            && self.since.is_none_or(|t| created_micros >= to_micros(t))
            && self.until.is_none_or(|t| created_micros < to_micros(t))
    }
}

/// Where run records are kept.
#[async_trait]
pub trait RunLog: Send + Sync {
    /// Inserts a run record.
    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    /// Overwrites a run record (its status, times, output).
    async fn update_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    /// One run record, or `None`.
    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// A job's run records, newest first, at most `limit`, only those older than the run
    /// `before` when given.
    async fn get_runs(
        &self,
        job_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<RunRecord>, StoreError>;
    /// Runs of every job as [`RunFilter`] narrows them, newest first, without their output
    /// (`stdout` and `stderr` empty): a page of up to hundreds of runs would otherwise carry
    /// each one's kept output (64 KiB by default, per stream); [`RunLog::get_run`] has it.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;
    /// `queued` runs due by `now` (their `due_at`), earliest due first, ties by id, at most
    /// `limit`: the runs a pass may start ([`RunLog::take_queued_run`]).
    async fn due_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RunRecord>, StoreError>;
    /// The earliest `due_at` of a `queued` run that is later than `after`: when the driver
    /// must look again.
    async fn next_due_run(&self, after: DateTime<Utc>)
    -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Writes `run` as [`RunLog::update_run`] does, but only if the stored record is still
    /// `queued`: a compare-and-set on the status, so that of the daemons sharing a store
    /// exactly one takes a queued run (and a run cancelled while queued stays cancelled).
    /// Answers whether this write took it.
    async fn take_queued_run(&self, run: &RunRecord) -> Result<bool, StoreError>;
    /// Marks `interrupted` the runs whose daemon died ([`Orphans`]); answers how many.
    async fn interrupt_orphaned_runs(&self, orphans: &Orphans<'_>) -> Result<u64, StoreError>;
    /// Deletes finished runs created before `older_than`, and all but the newest
    /// `keep_per_job` finished runs of each job; answers how many went. A run that is
    /// `running` or `queued` has not finished: it is neither counted nor deleted.
    async fn prune_runs(
        &self,
        older_than: DateTime<Utc>,
        keep_per_job: u32,
    ) -> Result<u64, StoreError>;
}

/// A run record as plain column values: the SQL stores' columns and the Redis hash's fields,
/// decoded back into a record in one place.
#[derive(Debug)]
pub(crate) struct RunRow {
    pub id: String,
    pub job_id: String,
    pub scheduled_run_time: Option<String>,
    pub created_micros: i64,
    pub started_micros: Option<i64>,
    pub finished_micros: Option<i64>,
    pub status: String,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub result: Option<String>,
    pub cause: String,
    pub node: String,
    pub owner: String,
    pub attempt: Option<i32>,
    pub retry_of: Option<String>,
    pub due_micros: Option<i64>,
    pub job_state: Option<String>,
}

impl RunRow {
    /// The record, or a message saying which column is unreadable.
    pub fn into_record(self) -> Result<RunRecord, StoreError> {
        let id = self.id.clone();
        let bad = |what: &str| StoreError::Backend(anyhow::anyhow!("run {id}: unreadable {what}"));
        let scheduled_run_time = match &self.scheduled_run_time {
            Some(text) => {
                Some(DateTime::parse_from_rfc3339(text).map_err(|_| bad("scheduled_run_time"))?)
            }
            None => None,
        };
        let status = RunStatus::parse(&self.status).ok_or_else(|| bad("status"))?;
        let cause = RunCause::parse(&self.cause).ok_or_else(|| bad("cause"))?;
        Ok(RunRecord {
            scheduled_run_time,
            created_at: from_micros(self.created_micros).ok_or_else(|| bad("created time"))?,
            started_at: self.started_micros.and_then(from_micros),
            finished_at: self.finished_micros.and_then(from_micros),
            status,
            cause,
            id: self.id.into(),
            job_id: self.job_id.into(),
            reason: self.reason,
            exit_code: self.exit_code,
            stdout: self.stdout,
            stderr: self.stderr,
            stdout_truncated: self.stdout_truncated,
            stderr_truncated: self.stderr_truncated,
            result: self.result,
            attempt: match self.attempt {
                None => 1,
                Some(n) => u32::try_from(n).map_err(|_| bad("attempt"))?,
            },
            retry_of: self.retry_of.map(Into::into),
            due_at: self.due_micros.and_then(from_micros),
            job_state: self.job_state,
            node: self.node,
            owner: self.owner,
        })
    }
}

/// The index value of a run's fire time (µs, UTC), for the one-run-per-fire-time constraint.
pub(crate) fn scheduled_micros(run: &RunRecord) -> Option<i64> {
    run.scheduled_run_time.map(|t| to_micros(t.to_utc()))
}

/// A run's fire time as RFC 3339 text with its offset.
pub(crate) fn scheduled_text(run: &RunRecord) -> Option<String> {
    run.scheduled_run_time.map(|t| t.to_rfc3339())
}
