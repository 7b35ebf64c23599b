//! The scheduler's failure vocabulary; `api` maps each variant to one HTTP status.

use crate::executor::ExecutorError;
use crate::job::JobError;
use crate::store::StoreError;

/// Why a scheduler operation failed. `Display` is the reference's text.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// 404 `Job <id> not found`.
    #[error("Job {0} not found")]
    JobNotFound(String),
    /// 404 `Run <id> not found`.
    #[error("Run {0} not found")]
    RunNotFound(String),
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
    /// 400: run-now's script cannot run as the job names it (deleted since the job was added,
    /// say). The run is recorded `failed` with the reason all the same; `run_id` names that
    /// record.
    #[error("{message}")]
    Unrunnable { message: String, run_id: String },
    /// 500: run-now's script could not be started for a reason of the server's (its
    /// interpreter is gone, no process could be created). The run is recorded `failed` with
    /// the reason, `run_id` names it; the cause is logged, never shown.
    #[error("The script could not be started; the server log says why")]
    CannotStart {
        run_id: String,
        #[source]
        source: ExecutorError,
    },
    /// 409: run-now refused, the job is running its `max_instances` already (APScheduler's
    /// `MaxInstancesReachedError`).
    #[error(
        "Job {job_id} is already running its maximum number of instances ({max_instances}); try \
         again when a run ends"
    )]
    MaxInstancesReached { job_id: String, max_instances: u32 },
    /// 409: another writer changed the job between this request's read and its write.
    #[error("Job {0} is being changed by another request; try again")]
    ChangedConcurrently(String),
    /// 409: cancel of a run that has no script in this daemon now; the text says why (it has
    /// ended, it is starting or ending, it runs in another daemon).
    #[error("{0}")]
    NotCancellable(String),
    /// 503: a bounded resource is taken (a run's followers); the text says which and what to
    /// do.
    #[error("{0}")]
    Busy(String),
    /// 503: the job store cannot be reached; the text says so without internals.
    #[error("the job store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500: anything else; logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for SchedulerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(id) => SchedulerError::JobNotFound(id),
            StoreError::Conflict(id) => SchedulerError::ConflictingId(id),
            StoreError::Stale(id) => SchedulerError::ChangedConcurrently(id),
            StoreError::Unavailable(source) => SchedulerError::Unavailable(source),
            StoreError::Backend(source) => SchedulerError::Internal(source),
        }
    }
}

impl From<JobError> for SchedulerError {
    fn from(error: JobError) -> Self {
        SchedulerError::Invalid(error.to_string())
    }
}

/// Errors of the executor that reach the scheduler outside a run (the checks of
/// `add_job` and `modify_job`): a job that cannot run is the client's to fix; anything else is
/// the server's.
impl From<ExecutorError> for SchedulerError {
    fn from(error: ExecutorError) -> Self {
        match error {
            ExecutorError::Invalid(message) => SchedulerError::Invalid(message),
            other => SchedulerError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl SchedulerError {
    /// The run an error left recorded `failed`: run-now's script did not start.
    pub fn failed_run(&self) -> Option<&str> {
        match self {
            SchedulerError::Unrunnable { run_id, .. }
            | SchedulerError::CannotStart { run_id, .. } => Some(run_id),
            _ => None,
        }
    }
}
