//! The job store proper, in APScheduler's `BaseJobStore` vocabulary (`lookup_job`,
//! `get_all_jobs`, `get_next_run_time`, `add_job`, `update_job`, `remove_job`), plus the
//! claim that lets daemons sharing a store take each fire time once.
//!
//! A store keeps each job's state, and may keep beside it the object the API answers for the
//! job (its *view*), rendered by the API and handed over with every write: a listing of
//! thousands of jobs is then written as it is read, with no decoding. A store that does not
//! keep views (Redis) hands back the job itself and the reader renders it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::StoreError;
use crate::job::{Job, RunRecord};

/// What the scheduler decided for one due job while the store holds its claim.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The job with its `next_run_time` advanced, or `None` to remove it (its trigger ran
    /// out).
    pub next: Option<Job>,
    /// `next`'s view (empty when `next` is `None`, or for a store that keeps no views).
    pub view: String,
    /// One record per fire time handled: `running` (to be started) or `skipped`.
    pub runs: Vec<RunRecord>,
}

/// Jobs' views, one at a time, in the contract's listing order.
pub type ViewStream<'a> = BoxStream<'a, Result<StoredView, StoreError>>;

/// Which jobs [`JobStore::stream_job_views`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewFilter {
    /// Every readable job.
    All,
    /// Pending jobs only (added while the scheduler was stopped).
    Pending,
}

/// How many jobs a store holds, by state (for the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Jobs with a next fire time, not pending.
    pub scheduled: u64,
    /// Jobs without one (paused), not pending.
    pub paused: u64,
    /// Jobs added while the scheduler was stopped.
    pub pending: u64,
}

/// A job as a listing reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredView {
    /// The job's id.
    pub id: String,
    /// Its next fire instant in µs since the epoch (`None` = paused or pending).
    pub next_run_time: Option<i64>,
    /// Whether it is pending (added while the scheduler was stopped).
    pub pending: bool,
    /// Its view, or the job to render one from.
    pub body: ViewBody,
}

/// A [`StoredView`]'s object.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewBody {
    /// The view as it was handed to the store.
    Rendered(String),
    /// The job, where the store keeps no view for it.
    Job(Box<Job>),
}

impl StoredView {
    /// The listing entry of a job read whole.
    pub fn of(job: Job) -> StoredView {
        StoredView {
            id: job.id.to_string(),
            next_run_time: job.next_run_time.map(|t| t.timestamp_micros()),
            pending: job.pending,
            body: ViewBody::Job(Box::new(job)),
        }
    }
}

/// A persistent home for jobs. Implementations order jobs as the HTTP contract lists them:
/// by next fire instant, ties by id, paused jobs (no next fire time) last by id. A row that
/// cannot be decoded is logged and kept in the database, never deleted.
///
/// Several daemons may share one store (MySQL, PostgreSQL): [`JobStore::commit_claims`] is
/// the only place fire times are taken, and it takes each (job, fire time) once — a decision
/// is recorded only on the job's version it was made on, with the row locked
/// (`FOR UPDATE SKIP LOCKED`), and every run record is inserted under
/// `UNIQUE(job_id, scheduled_run_time)` in the same transaction as the job's advance.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// One job, or `None`.
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Every readable job, in the contract's order.
    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError>;
    /// Every readable job's view, in the contract's order, as a stream: the API's listing is
    /// written as it is read, so listing 100,000 jobs holds a page of them, not all.
    fn stream_job_views(&self, filter: ViewFilter) -> ViewStream<'_> {
        stream::once(self.get_all_jobs())
            .map_ok(move |jobs| {
                stream::iter(
                    jobs.into_iter()
                        .filter(move |job| filter == ViewFilter::All || job.pending)
                        .map(|job| Ok(StoredView::of(job))),
                )
            })
            .try_flatten()
            .boxed()
    }
    /// How many jobs there are by state. By default counted from the listing; a store that
    /// can count without reading every job (SQL: one aggregate) does.
    async fn count_jobs(&self) -> Result<JobCounts, StoreError> {
        let mut counts = JobCounts::default();
        let mut views = self.stream_job_views(ViewFilter::All);
        while let Some(view) = views.try_next().await? {
            if view.pending {
                counts.pending += 1;
            } else if view.next_run_time.is_some() {
                counts.scheduled += 1;
            } else {
                counts.paused += 1;
            }
        }
        Ok(counts)
    }
    /// One job's view, or `None`.
    async fn get_job_view(&self, id: &str) -> Result<Option<StoredView>, StoreError> {
        Ok(self.lookup_job(id).await?.map(StoredView::of))
    }
    /// The earliest next fire time of any job.
    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Inserts a job (at version 0) with its view; `Conflict` if the id is taken.
    async fn add_job(&self, job: &Job, view: &str) -> Result<(), StoreError>;
    /// Overwrites a job and its view if its stored `version` still equals `job.version`
    /// (and bumps it); `NotFound` if it is gone, `Stale` if another writer got there first.
    async fn update_job(&self, job: &Job, view: &str) -> Result<(), StoreError>;
    /// Inserts or overwrites a job and its view, whatever its version.
    async fn replace_job(&self, job: &Job, view: &str) -> Result<(), StoreError>;
    /// Deletes a job; `NotFound` if it is gone.
    async fn remove_job(&self, id: &str) -> Result<(), StoreError>;
    /// Up to `limit` jobs due by `now` (earliest first, ties by id), as stored, with their
    /// versions: the first half of a claim (APScheduler's `get_due_jobs`). It only reads, and
    /// takes no lock, so the scheduler decides what to do with each job (trigger computation,
    /// bounded but not free) while API writes and other daemons go on. A due row that cannot
    /// be decoded is parked (its next fire time cleared, its state kept) so it cannot spin
    /// the scheduler.
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
}
