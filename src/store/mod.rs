//! Job stores: where jobs live between runs and across restarts.
//!
//! The trait follows APScheduler's `BaseJobStore` method for method (`lookup_job`,
//! `get_due_jobs`, `get_next_run_time`, ...). Every backend keeps the same row shape: the id,
//! the next fire instant as an indexed number, and the job's state as portable JSON.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::job::{Job, RunRecord};

pub use sqlite::SqliteStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No job with this id.
    #[error("Job {0} not found")]
    NotFound(String),
    /// A job with this id exists already.
    #[error("Job {0} already exists.")]
    Conflict(String),
    /// The database cannot be reached right now; retrying later may work.
    #[error("the job store is unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else the database said.
    #[error("job store error: {0}")]
    Backend(#[source] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.into()),
            other => StoreError::Backend(other.into()),
        }
    }
}

/// A persistent home for jobs. Implementations order jobs as the HTTP contract lists them:
/// by next fire instant, ties by id, paused jobs (no next fire time) last by id.
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// One job, or `None`.
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Every readable job, in the contract's order. A row that cannot be decoded is logged and
    /// kept in the database, never deleted.
    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError>;
    /// Jobs whose next fire time is at or before `now`, earliest first.
    async fn get_due_jobs(&self, now: DateTime<Utc>) -> Result<Vec<Job>, StoreError>;
    /// The earliest next fire time of any job.
    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Inserts a job; `Conflict` if the id is taken.
    async fn add_job(&self, job: &Job) -> Result<(), StoreError>;
    /// Overwrites a job; `NotFound` if it is gone.
    async fn update_job(&self, job: &Job) -> Result<(), StoreError>;
    /// Inserts or overwrites a job.
    async fn replace_job(&self, job: &Job) -> Result<(), StoreError>;
    /// Deletes a job; `NotFound` if it is gone.
    async fn remove_job(&self, id: &str) -> Result<(), StoreError>;
    /// Records one due-jobs step for a job atomically: its new state (`Some`) or its
    /// removal (`None`), and the run records of the fire times handled. Answers false, and
    /// changes nothing, when a record for one of those fire times exists already (the
    /// `UNIQUE(job_id, scheduled_run_time)` guarantee: each fire time runs once).
    async fn advance_job(
        &self,
        job_id: &str,
        next: Option<&Job>,
        runs: &[RunRecord],
    ) -> Result<bool, StoreError>;
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
    /// Marks every run still `running` on `node` as `interrupted` with `reason` (a daemon
    /// that crashed left them so); answers how many.
    async fn interrupt_runs(
        &self,
        node: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Deletes finished runs created before `older_than`, and all but the newest
    /// `keep_per_job` finished runs of each job; answers how many went.
    async fn prune_runs(
        &self,
        older_than: DateTime<Utc>,
        keep_per_job: u32,
    ) -> Result<u64, StoreError>;
    /// Closes connections (at shutdown).
    async fn close(&self);
}

/// Opens the store a URL names (`sqlite://path`), creating and migrating it if needed.
///
/// # Errors
/// An unsupported scheme, or a database that cannot be opened or migrated.
pub async fn open(url: &str) -> Result<Arc<dyn JobStore>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(url).await?));
    }
    Err(StoreError::Backend(anyhow::anyhow!(
        "unsupported store URL {url:?}: expected sqlite://PATH"
    )))
}

/// Microseconds since the epoch: the index column's unit in every backend.
pub(crate) fn to_micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Back from [`to_micros`].
pub(crate) fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// A run record as plain column values, shared by the SQL backends.
#[derive(Debug, sqlx::FromRow)]
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
    pub cause: String,
    pub node: String,
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
        let status = crate::job::RunStatus::parse(&self.status).ok_or_else(|| bad("status"))?;
        let cause = crate::job::RunCause::parse(&self.cause).ok_or_else(|| bad("cause"))?;
        Ok(RunRecord {
            scheduled_run_time,
            created_at: from_micros(self.created_micros).ok_or_else(|| bad("created time"))?,
            started_at: self.started_micros.and_then(from_micros),
            finished_at: self.finished_micros.and_then(from_micros),
            status,
            cause,
            id: self.id,
            job_id: self.job_id,
            reason: self.reason,
            exit_code: self.exit_code,
            stdout: self.stdout,
            stderr: self.stderr,
            stdout_truncated: self.stdout_truncated,
            stderr_truncated: self.stderr_truncated,
            node: self.node,
        })
    }
}

/// The index value of a run's fire time (µs, UTC), for the uniqueness constraint.
pub(crate) fn scheduled_micros(run: &RunRecord) -> Option<i64> {
    run.scheduled_run_time.map(|t| to_micros(t.to_utc()))
}

/// A run's fire time as RFC 3339 text with its offset.
pub(crate) fn scheduled_text(run: &RunRecord) -> Option<String> {
    run.scheduled_run_time.map(|t| t.to_rfc3339())
}
