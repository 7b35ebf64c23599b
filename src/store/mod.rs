//! Job stores: where jobs live between runs and across restarts.
//!
//! The trait follows APScheduler's `BaseJobStore` method for method (`lookup_job`,
//! `get_due_jobs`, `get_next_run_time`, ...). Every backend keeps the same row shape: the id,
//! the next fire instant as an indexed number, and the job's state as portable JSON.

mod mysql;
mod postgres;
mod redis;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::job::{Job, RunRecord};
use crate::telemetry::{MAX_MESSAGE_BYTES, logged, logged_within};

pub use mysql::MySqlStore;
pub use postgres::PostgresStore;
pub use redis::RedisStore;
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

/// What the scheduler decided for one due job while the store holds its claim.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The job with its `next_run_time` advanced, or `None` to remove it (its trigger ran
    /// out).
    pub next: Option<Job>,
    /// One record per fire time handled: `running` (to be started) or `skipped`.
    pub runs: Vec<RunRecord>,
}

/// Decides a [`Claim`] for a due job, between [`JobStore::due_jobs`] and
/// [`JobStore::commit_claims`]: outside every lock.
pub type Decide<'a> = &'a (dyn Fn(&Job) -> Claim + Send + Sync);

/// Jobs' rendered views, one at a time, in the contract's listing order.
pub type ViewStream<'a> = BoxStream<'a, Result<StoredView, StoreError>>;

/// Which jobs [`JobStore::stream_job_views`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewFilter {
    /// Every readable job.
    All,
    /// Jobs that may be pending (added while the scheduler was stopped): at least those; the
    /// reader checks each view.
    Pending,
}

/// A job as the API shows it, as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredView {
    /// The job's id.
    pub id: String,
    /// Its next fire instant in µs since the epoch (`None` = paused or pending).
    pub next_run_time: Option<i64>,
    /// The job object as JSON text.
    pub json: String,
}

impl StoredView {
    /// Renders `job`.
    pub fn of(job: &Job) -> StoredView {
        StoredView {
            id: job.id.clone(),
            next_run_time: job.next_run_time.map(|t| to_micros(t.to_utc())),
            json: job.to_view_json(),
        }
    }
}

/// A daemon sharing the store, as its heartbeat row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Unique per daemon process (a UUIDv7), so several daemons on one host differ.
    pub id: String,
    /// The host name, lower-case.
    pub host: String,
    /// The daemon's process id.
    pub pid: u32,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
}

/// A persistent home for jobs, their runs and the daemons sharing them. Implementations order
/// jobs as the HTTP contract lists them: by next fire instant, ties by id, paused jobs (no
/// next fire time) last by id.
///
/// Several daemons may share one store (MySQL, PostgreSQL): [`JobStore::commit_claims`] is
/// the only place fire times are taken, and it takes each (job, fire time) once — a decision
/// is recorded only on the job's version it was made on, with the row locked
/// (`FOR UPDATE SKIP LOCKED`), and every run record is inserted under
/// `UNIQUE(job_id, scheduled_run_time)` in the same transaction as the job's advance.
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// One job, or `None`.
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Every readable job, in the contract's order. A row that cannot be decoded is logged and
    /// kept in the database, never deleted.
    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError>;
    /// Every readable job's rendered JSON object ([`Job::to_view_json`]) with its id and next
    /// fire instant, in the contract's order, as a stream: the API's listing is written as it
    /// is read, so listing 100,000 jobs holds a page of them, not all. Stores that keep the
    /// rendering beside the state read it from one statement (one snapshot) without decoding.
    fn stream_job_views(&self, filter: ViewFilter) -> ViewStream<'_> {
        stream::once(self.get_all_jobs())
            .map_ok(move |jobs| {
                stream::iter(
                    jobs.into_iter()
                        .filter(move |job| filter == ViewFilter::All || job.pending)
                        .map(|job| Ok(StoredView::of(&job))),
                )
            })
            .try_flatten()
            .boxed()
    }
    /// One job's rendered JSON object, or `None`.
    async fn get_job_view(&self, id: &str) -> Result<Option<StoredView>, StoreError> {
        Ok(self.lookup_job(id).await?.as_ref().map(StoredView::of))
    }
    /// The earliest next fire time of any job.
    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Inserts a job (at version 0); `Conflict` if the id is taken.
    async fn add_job(&self, job: &Job) -> Result<(), StoreError>;
    /// [`JobStore::add_job`] with the job's view already rendered (`view` is
    /// `job.to_view_json()`): `POST P/jobs` answers that text, so a store that keeps it
    /// takes this one rather than render it a second time.
    async fn add_job_rendered(&self, job: &Job, _view: &str) -> Result<(), StoreError> {
        self.add_job(job).await
    }
    /// Overwrites a job if its stored `version` still equals `job.version` (and bumps it);
    /// `NotFound` if it is gone, `Stale` if another writer got there first.
    async fn update_job(&self, job: &Job) -> Result<(), StoreError>;
    /// Inserts or overwrites a job, whatever its version.
    async fn replace_job(&self, job: &Job) -> Result<(), StoreError>;
    /// Deletes a job; `NotFound` if it is gone.
    async fn remove_job(&self, id: &str) -> Result<(), StoreError>;
    /// Up to `limit` jobs due by `now` (earliest first, ties by id), as stored, with their
    /// versions: the first half of a claim. It only reads, and takes no lock, so the
    /// scheduler decides what to do with each job (trigger computation, bounded but not free)
    /// while API writes and other daemons go on. A due row that cannot be decoded is parked
    /// (its next fire time cleared, its state kept) so it cannot spin the scheduler.
    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError>;
    /// The second half of a claim: records each decision made on a job read by
    /// [`JobStore::due_jobs`] — the job's advance or removal and its run records, atomically —
    /// if the job is still as it was read (its `version`) and no other claim holds it right
    /// now; a job changed or held meanwhile is left out, to be read and decided again. When a
    /// run record for one of a job's fire times exists already (that fire time was handled),
    /// none of its runs are recorded but the job still advances (it must not stay due): it is
    /// answered with no runs. Answers every job it advanced or removed, in the order given,
    /// with the decision as committed. Nothing but database work happens inside: the time it
    /// holds locks grows with the records written, never with trigger computation.
    async fn commit_claims(
        &self,
        claims: Vec<(Job, Claim)>,
    ) -> Result<Vec<(Job, Claim)>, StoreError>;
    /// Both halves: claims up to `limit` jobs due by `now`, asking `decide` what to do with
    /// each between the read and the commit.
    async fn claim_due_jobs(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        decide: Decide<'_>,
    ) -> Result<Vec<(Job, Claim)>, StoreError> {
        let jobs = self.due_jobs(now, limit).await?;
        let claims = jobs
            .into_iter()
            .map(|job| {
                let claim = decide(&job);
                (job, claim)
            })
            .collect();
        self.commit_claims(claims).await
    }
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
    /// Marks `interrupted` (with `reason`, finished at `at`) every `running` run whose owner
    /// is not `me` and has no heartbeat since `alive_since`: its daemon died. Answers how
    /// many.
    async fn interrupt_orphaned_runs(
        &self,
        me: &str,
        alive_since: DateTime<Utc>,
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
    /// Writes this daemon's heartbeat row (insert or update).
    async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError>;
    /// Every daemon that has a heartbeat row, most recent heartbeat first.
    async fn get_nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;
    /// Deletes a daemon's heartbeat row (clean shutdown), and rows silent since `before`.
    async fn remove_nodes(&self, id: &str, before: DateTime<Utc>) -> Result<(), StoreError>;
    /// Whether several daemons may share this store (MySQL, PostgreSQL). A store only one
    /// daemon may use (SQLite, Redis) locks itself to one daemon at open.
    fn shared(&self) -> bool;
    /// Closes connections (at shutdown).
    async fn close(&self);
}

/// Opens the store a URL names (`sqlite://path`, `mysql://` or `mariadb://user@host/db`,
/// `postgres://` or `postgresql://user@host/db`), creating and migrating it if needed.
///
/// # Errors
/// An unsupported scheme, or a database that cannot be opened or migrated.
pub async fn open(url: &str) -> Result<Arc<dyn JobStore>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(Arc::new(RedisStore::open(url).await?));
    }
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        return Ok(Arc::new(MySqlStore::open(url).await?));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Ok(Arc::new(PostgresStore::open(url).await?));
    }
    Err(StoreError::Backend(anyhow::anyhow!(
        "unsupported store URL {url:?}: expected sqlite://PATH, mysql://USER@HOST/DB, \
         postgres://USER@HOST/DB or redis://HOST:PORT"
    )))
}

/// Opens one connection to a database server before its pool is built, so that a server that
/// cannot be reached says why (connection refused, unknown host, bad password) instead of the
/// pool's "timed out while waiting for an open connection". The connection is closed again.
///
/// # Errors
/// `Unavailable` with the driver's reason, within `CONNECT_TIMEOUT`.
pub(crate) async fn try_connect<C: sqlx::Connection>(
    options: &C::Options,
    server: &str,
) -> Result<(), StoreError> {
    let cannot = |reason: anyhow::Error| {
        StoreError::Unavailable(reason.context(format!("cannot connect to the {server} server")))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, C::connect_with(options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(error)) => Err(cannot(error.into())),
        Err(_) => Err(cannot(anyhow::anyhow!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// How long the first connection to a database server may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A job row as the server stores read it (the SQL backends share the column names).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    pub id: String,
    pub job_state: String,
    pub version: i64,
}

/// Decodes job rows, logging (and skipping) the unreadable ones; answers their ids too, so a
/// claim can park them.
pub(crate) fn decode_job_rows(rows: Vec<JobRow>) -> (Vec<Job>, Vec<String>) {
    let mut jobs = Vec::with_capacity(rows.len());
    let mut broken = Vec::new();
    for row in rows {
        match Job::from_state(&row.job_state) {
            Ok(mut job) => {
                job.version = row.version;
                jobs.push(job);
            }
            Err(error) => {
                log_unreadable(&row.id, &error, "row");
                broken.push(row.id);
            }
        }
    }
    (jobs, broken)
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

/// The index value of a job's next fire time (µs, UTC); `None` when paused.
pub(crate) fn next_micros(job: &Job) -> Option<i64> {
    job.next_run_time.map(|t| to_micros(t.to_utc()))
}

/// Whether the database refused a duplicate key.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
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
    pub owner: String,
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
            owner: self.owner,
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
