//! Why a store operation failed: one kind per thing a caller does differently.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No job with this id.
    #[error("Job {0} not found")]
    NotFound(String),
    /// A job with this id exists already.
    #[error("Job {0} already exists.")]
    Conflict(String),
    /// The job changed since it was read (another writer); read it again and retry.
    #[error("Job {0} was changed by another writer")]
    Stale(String),
    /// The database cannot be reached right now; retrying later may work.
    #[error("the job store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else the database said (its message, once: `{:#}` prints the chain).
    #[error(transparent)]
    Backend(anyhow::Error),
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
