//! [`JobStore`] on SQL: the `tickd_jobs` table, its listing index and its views.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};

use super::dialect::{Dialect, Statement, upsert_tail};
use super::{SqlStore, is_unique_violation, rows};
use crate::job::Job;
use crate::store::{
    Claim, JobCounts, JobStore, StoreError, StoredView, ViewFilter, ViewStream, from_micros,
    to_micros,
};

/// The columns a job is written as, in the order [`job_values`] binds them.
const WRITE_COLUMNS: &str = "id, next_run_time, pending, job_state, view_json";

/// The index value of a job's next fire time (µs, UTC); `None` when paused.
pub(super) fn next_micros(job: &Job) -> Option<i64> {
    job.next_run_time.map(|t| to_micros(t.to_utc()))
}

/// A job's row, as an `INSERT` with its version at 0 (then `tail`).
fn insert<'a>(job: &'a Job, view: &'a str, tail: &str) -> Statement<'a> {
    Statement::built(format!(
        "INSERT INTO tickd_jobs ({WRITE_COLUMNS}, version) VALUES (?, ?, ?, ?, ?, 0){tail}"
    ))
    .bind(&job.id)
    .bind(next_micros(job))
    .bind(job.pending)
    .bind(job.to_state())
    .bind(view)
}

/// Overwrites a job's row and bumps its version (then the `WHERE` in `tail`).
pub(super) fn overwrite<'a>(job: &'a Job, view: &'a str, tail: &'static str) -> Statement<'a> {
    Statement::built(format!(
        "UPDATE tickd_jobs SET next_run_time = ?, pending = ?, job_state = ?, view_json = ?, \
         version = version + 1 WHERE id = ?{tail}"
    ))
    .bind(next_micros(job))
    .bind(job.pending)
    .bind(job.to_state())
    .bind(view)
    .bind(&job.id)
}

impl<D: Dialect> SqlStore<D> {
    /// Parks due rows that could not be decoded: their next fire time is cleared (their
    /// state kept) if they are still unreadable with the row locked, so a row replaced in the
    /// meantime is left alone.
    async fn park(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(D::BEGIN_WRITE).await?;
        for id in ids {
            let read = Statement::built(format!(
                "SELECT {} FROM tickd_jobs WHERE id = ?{}",
                rows::JOB_COLUMNS,
                D::FOR_UPDATE
            ))
            .bind(id);
            let row = D::fetch_optional(&mut *tx, read).await?;
            if row.is_some_and(|row| rows::job::<D>(&row).is_err()) {
                let clear =
                    Statement::new("UPDATE tickd_jobs SET next_run_time = NULL WHERE id = ?");
                D::execute(&mut *tx, clear.bind(id)).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The listing statement for `filter`, in the contract's order.
    fn listing(filter: ViewFilter) -> Statement<'static> {
        let only = match filter {
            ViewFilter::All => "",
            ViewFilter::Pending => " WHERE pending = ?",
        };
        let statement = Statement::built(format!(
            "SELECT {} FROM tickd_jobs{only} ORDER BY {}",
            rows::VIEW_COLUMNS,
            D::LISTING_ORDER
        ));
        match filter {
            ViewFilter::All => statement,
            ViewFilter::Pending => statement.bind(true),
        }
    }
}

#[async_trait]
impl<D: Dialect> JobStore for SqlStore<D> {
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let read = Statement::new("SELECT id, job_state, version FROM tickd_jobs WHERE id = ?");
        let row = self.fetch_optional(read.bind(id)).await?;
        Ok(row.and_then(|row| rows::job::<D>(&row).ok()))
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let read = Statement::built(format!(
            "SELECT {} FROM tickd_jobs ORDER BY {}",
            rows::JOB_COLUMNS,
            D::LISTING_ORDER
        ));
        Ok(rows::jobs::<D>(&self.fetch_all(read).await?).0)
    }

    fn stream_job_views(&self, filter: ViewFilter) -> ViewStream<'_> {
        // One statement, so one snapshot; its order is the listing index's, so rows come as
        // they are read and nothing is sorted or held.
        D::fetch(&self.pool, Self::listing(filter))
            .map_err(StoreError::from)
            .try_filter_map(|row| std::future::ready(Ok(rows::view::<D>(&row))))
            .boxed()
    }

    async fn count_jobs(&self) -> Result<JobCounts, StoreError> {
        // One aggregate, the same in the three dialects (COUNT is a 64-bit integer in each);
        // unreadable rows are counted too, unlike the listing.
        let count = Statement::new(
            "SELECT COUNT(*), COUNT(CASE WHEN pending THEN 1 END), \
             COUNT(CASE WHEN pending THEN NULL WHEN next_run_time IS NULL THEN 1 END) \
             FROM tickd_jobs",
        );
        let Some(row) = self.fetch_optional(count).await? else {
            return Ok(JobCounts::default());
        };
        let count = |i| -> Result<u64, StoreError> {
            Ok(D::int(&row, i)?
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0))
        };
        let (all, pending, paused) = (count(0)?, count(1)?, count(2)?);
        Ok(JobCounts {
            scheduled: all.saturating_sub(pending + paused),
            paused,
            pending,
        })
    }

    async fn get_job_view(&self, id: &str) -> Result<Option<StoredView>, StoreError> {
        let read = Statement::built(format!(
            "SELECT {} FROM tickd_jobs WHERE id = ?",
            rows::VIEW_COLUMNS
        ));
        let row = self.fetch_optional(read.bind(id)).await?;
        Ok(row.and_then(|row| rows::view::<D>(&row)))
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let micros = match self
            .fetch_optional(Statement::new(D::NEXT_RUN_TIME))
            .await?
        {
            Some(row) => D::int(&row, 0)?,
            None => None,
        };
        Ok(micros.and_then(from_micros))
    }

    async fn add_job(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        if let Some(adds) = &self.adds {
            return adds.add(job, view).await;
        }
        D::execute(&mut *self.conn().await?, insert(job, view, ""))
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(job.id.to_string())
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    async fn update_job(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        // MySQL: rows_affected counts matched rows (sqlx sets CLIENT_FOUND_ROWS), and the
        // version always changes anyway.
        let done = self
            .execute(overwrite(job, view, " AND version = ?").bind(job.version))
            .await?;
        if done == 0 {
            return Err(match self.lookup_job(&job.id).await? {
                Some(_) => StoreError::Stale(job.id.to_string()),
                None => StoreError::NotFound(job.id.to_string()),
            });
        }
        Ok(())
    }

    async fn replace_job(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        let tail = upsert_tail::<D>(
            "tickd_jobs",
            &["next_run_time", "pending", "job_state", "view_json"],
            true,
        );
        self.execute(insert(job, view, &tail)).await?;
        Ok(())
    }

    async fn remove_job(&self, id: &str) -> Result<(), StoreError> {
        let delete = Statement::new("DELETE FROM tickd_jobs WHERE id = ?");
        if self.execute(delete.bind(id)).await? == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        // A plain read: it neither takes nor waits for row locks (SQLite's WAL: beside the
        // writer, never waiting for it).
        let read = Statement::built(format!(
            "SELECT {} FROM tickd_jobs WHERE {} ORDER BY next_run_time, id LIMIT ?",
            rows::JOB_COLUMNS,
            D::DUE
        ))
        .bind(to_micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let (jobs, broken) = rows::jobs::<D>(&self.fetch_all(read).await?);
        if !broken.is_empty() {
            self.park(&broken).await?;
        }
        Ok(jobs)
    }

    async fn commit_claims(
        &self,
        claims: Vec<(Job, Claim)>,
    ) -> Result<Vec<(Job, Claim)>, StoreError> {
        self.commit(claims).await
    }
}
