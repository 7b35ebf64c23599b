//! Job stores: where jobs live between runs and across restarts.
//!
//! The trait follows APScheduler's `BaseJobStore` method for method (`lookup_job`,
//! `get_due_jobs`, `get_next_run_time`, ...). Every backend keeps the same row shape: the id,
//! the next fire instant as an indexed number, and the job's state as portable JSON.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::job::Job;

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
