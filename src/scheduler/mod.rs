//! The scheduler: keeps jobs in the store, fires them on time through the executor.
//!
//! SKELETON: the public API below is what `api` codes against.

use chrono_tz::Tz;

use serde_json::Value;

use crate::job::Job;

/// Why a scheduler operation failed. `Display` is the reference's text.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// 404 `Job <id> not found`.
    #[error("Job {0} not found")]
    JobNotFound(String),
    /// 409 `Job <id> already exists.`
    #[error("Job {0} already exists.")]
    ConflictingId(String),
    /// 400: bad input; the text is the reference's.
    #[error("{0}")]
    Invalid(String),
    /// 400 `Scheduler is already running`.
    #[error("Scheduler is already running")]
    AlreadyRunning,
    /// 400 `Scheduler is not running`.
    #[error("Scheduler is not running")]
    NotRunning,
    /// 409: run-now refused at the instance limit.
    #[error("{0}")]
    Busy(String),
    /// 503: the job store cannot be reached; the text says so without internals.
    #[error("the job store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500: anything else; logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Scheduler state as `GET P` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Not scheduling; jobs added now are pending.
    Stopped,
    /// Scheduling.
    Running,
    /// Started but not firing jobs (`POST P/pause`).
    Paused,
}

/// A cheap-to-clone handle on the scheduler.
#[derive(Clone)]
pub struct Scheduler {
    _private: (),
}

impl Scheduler {
    /// The scheduler's zone: naive times are read in it.
    pub fn timezone(&self) -> Tz {
        todo!()
    }
    /// `Stopped`, `Running` or `Paused`.
    pub fn state(&self) -> RunState {
        todo!()
    }
    /// Starts scheduling (`POST P/start`).
    pub async fn start(&self) -> Result<(), SchedulerError> {
        todo!()
    }
    /// Stops scheduling (`POST P/shutdown`); `wait` waits for running scripts.
    pub async fn shutdown(&self, wait: bool) -> Result<(), SchedulerError> {
        let _ = wait;
        todo!()
    }
    /// Pauses job processing (`POST P/pause`); `NotRunning` when stopped.
    pub fn pause(&self) -> Result<(), SchedulerError> {
        todo!()
    }
    /// Resumes job processing (`POST P/resume`); `NotRunning` when stopped.
    pub fn resume(&self) -> Result<(), SchedulerError> {
        todo!()
    }
    /// Validates a `POST P/jobs` body (any JSON value; non-objects are refused with a clear
    /// message) and adds the job. A failed add leaves nothing behind.
    pub async fn add_job(&self, body: Value) -> Result<Job, SchedulerError> {
        let _ = body;
        todo!()
    }
    /// One job.
    pub async fn get_job(&self, id: &str) -> Result<Job, SchedulerError> {
        let _ = id;
        todo!()
    }
    /// Every job, in the contract's order.
    pub async fn get_jobs(&self) -> Result<Vec<Job>, SchedulerError> {
        todo!()
    }
    /// Validates a `PATCH P/jobs/<id>` body and applies it: all or nothing.
    pub async fn modify_job(&self, id: &str, body: Value) -> Result<Job, SchedulerError> {
        let _ = (id, body);
        todo!()
    }
    /// DELETE.
    pub async fn remove_job(&self, id: &str) -> Result<(), SchedulerError> {
        let _ = id;
        todo!()
    }
    /// Pauses one job.
    pub async fn pause_job(&self, id: &str) -> Result<Job, SchedulerError> {
        let _ = id;
        todo!()
    }
    /// Resumes one job; `None` when it had no future fire time and was deleted.
    pub async fn resume_job(&self, id: &str) -> Result<Option<Job>, SchedulerError> {
        let _ = id;
        todo!()
    }
    /// Run-now: starts the script and answers once the process has started, with the job and
    /// the new run's id.
    pub async fn run_job(&self, id: &str) -> Result<(Job, String), SchedulerError> {
        let _ = id;
        todo!()
    }
}
