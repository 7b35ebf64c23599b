//! Stores: where jobs, their runs and the daemons sharing them live between runs and across
//! restarts. One trait per concern — [`JobStore`] (APScheduler's `BaseJobStore` plus the
//! claim), [`RunLog`], [`Membership`], [`TokenStore`], [`AuditLog`], [`Outbox`] — and
//! [`Store`], what a backend offers as a whole.
//!
//! Backends: [`sql`] is one implementation for SQLite, MySQL/MariaDB and PostgreSQL (only the
//! SQL forms that differ are per database); [`redis`] lays jobs out as APScheduler's
//! `RedisJobStore` does. Every backend keeps the same record shapes: the job's id, its next
//! fire instant as an indexed number (µs since the epoch), whether it is pending, its state
//! as portable JSON, and the view the API answers for it where the backend keeps one.
//! [`metered`] wraps any backend to time its calls for the metrics.

mod audit;
mod error;
mod jobs;
mod metered;
mod nodes;
mod notifications;
mod redis;
mod runs;
mod sql;
mod tokens;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::telemetry::{MAX_MESSAGE_BYTES, logged, logged_within};

pub(crate) use audit::AuditRow;
pub use audit::{
    AUDIT_KEY_CHARS, AUDIT_ROUTE_CHARS, AuditEntry, AuditFilter, AuditLog, AuditRecord, Outcome,
    audit_id_floor,
};
pub use error::StoreError;
pub use jobs::{Claim, JobCounts, JobStore, StoredView, ViewBody, ViewFilter, ViewStream};
pub use metered::metered;
pub use nodes::{Membership, NodeRecord};
pub use notifications::{Delivery, NotificationRecord, Outbox};
pub use redis::RedisStore;
pub use runs::{Orphans, RunFilter, RunLog};
pub(crate) use runs::{RunRow, scheduled_micros, scheduled_text};
pub use tokens::{TokenRecord, TokenStore};

/// A backend: its jobs, its run log, its members, the API's tokens, its audit log and its
/// notification outbox, in one database.
#[async_trait]
pub trait Store:
    JobStore + RunLog + Membership + TokenStore + AuditLog + Outbox + std::fmt::Debug
{
    /// Whether several daemons may share this store (MySQL, PostgreSQL). A store only one
    /// daemon may use (SQLite, Redis) locks itself to one daemon at open.
    fn shared(&self) -> bool;
    /// Whether it keeps the views it is handed. One that does not is handed none where the
    /// caller would render one only for it, and its listing renders every job it reads.
    fn keeps_views(&self) -> bool;
    /// Asks the database for the cheapest answer it gives (SQL: `SELECT 1`; Redis: `PING`),
    /// through the same pool or connection the store's work uses: readiness (`/readyz`) asks
    /// whether the store answers now. The caller bounds the wait.
    ///
    /// # Errors
    /// The database did not answer (`StoreError::Unavailable` when it is away).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes connections (at shutdown).
    async fn close(&self);
}

/// Opens the store a URL names (`sqlite://path`, `mysql://` or `mariadb://user@host/db`,
/// `postgres://` or `postgresql://user@host/db`, `redis://host`), creating and migrating it
/// if needed.
///
/// # Errors
/// An unsupported scheme, or a database that cannot be opened or migrated.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(sql::open_sqlite(url).await?));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(Arc::new(RedisStore::open(url).await?));
    }
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        return Ok(Arc::new(sql::open_mysql(url).await?));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Ok(Arc::new(sql::open_postgres(url).await?));
    }
    Err(StoreError::Backend(anyhow::anyhow!(
        "unsupported store URL {url:?}: expected sqlite://PATH, mysql://USER@HOST/DB, \
         postgres://USER@HOST/DB or redis://HOST:PORT"
    )))
}

/// Opens the store a URL names, as [`open`] does, for its tokens only: for `tickd token`, which
/// may run beside a daemon on the same store. It takes no single-daemon lock (SQLite's lock
/// file, Redis's lock key) and starts no background task; SQLite's WAL mode lets it write
/// beside the daemon.
///
/// # Errors
/// As [`open`].
pub async fn open_tokens(url: &str) -> Result<Arc<dyn TokenStore>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(sql::open_sqlite_unlocked(url).await?));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(Arc::new(RedisStore::open_unlocked(url).await?));
    }
    let store: Arc<dyn TokenStore> = open(url).await?;
    Ok(store)
}

/// Logs a stored job that cannot be read (`what` is kept: a row, an entry). The id and the
/// error (which may quote the stored text) are shown as [`logged`] shows values.
pub(crate) fn log_unreadable(id: &str, error: &dyn std::fmt::Display, what: &str) {
    let id = logged(id);
    let error = error.to_string();
    tracing::error!(
        job_id = %id,
        "Unable to restore job {id}: {}; the {what} is kept",
        logged_within(&error, MAX_MESSAGE_BYTES)
    );
}

/// Microseconds since the epoch: the index column's unit in every backend.
pub(crate) fn to_micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Back from [`to_micros`].
pub(crate) fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}
