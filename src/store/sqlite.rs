//! The embedded default store: one SQLite file, WAL mode, a busy timeout.

use std::str::FromStr;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{
    JobStore, RunRow, StoreError, from_micros, scheduled_micros, scheduled_text, to_micros,
};
use crate::job::{Job, RunRecord, RunStatus};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Jobs in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url` (`sqlite://path`).
    ///
    /// # Errors
    /// The file cannot be opened or migrated.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(anyhow!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(anyhow!("migrating {url}: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Decodes rows, logging (and skipping) the ones that cannot be read; returns the ids of
    /// those so the caller can take them out of the due set without deleting them.
    fn decode(rows: Vec<sqlx::sqlite::SqliteRow>) -> (Vec<Job>, Vec<String>) {
        let mut jobs = Vec::with_capacity(rows.len());
        let mut broken = Vec::new();
        for row in rows {
            let id: String = row.get("id");
            let state: String = row.get("job_state");
            match Job::from_state(&state) {
                Ok(job) => jobs.push(job),
                Err(error) => {
                    tracing::error!(job_id = %id, "Unable to restore job {id}: {error}; the row is kept");
                    broken.push(id);
                }
            }
        }
        (jobs, broken)
    }
}

fn next_micros(job: &Job) -> Option<i64> {
    job.next_run_time.map(|t| to_micros(t.to_utc()))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT id, job_state FROM tickd_jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|row| Self::decode(vec![row]).0.pop()))
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, job_state FROM tickd_jobs \
             ORDER BY next_run_time IS NULL, next_run_time, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(Self::decode(rows).0)
    }

    async fn get_due_jobs(&self, now: DateTime<Utc>) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, job_state FROM tickd_jobs \
             WHERE next_run_time <= ? ORDER BY next_run_time, id",
        )
        .bind(to_micros(now))
        .fetch_all(&self.pool)
        .await?;
        let (jobs, broken) = Self::decode(rows);
        // An unreadable due row would be due forever and spin the scheduler: park it (keep
        // its state, clear its index entry) so a person can look at it.
        for id in broken {
            sqlx::query("UPDATE tickd_jobs SET next_run_time = NULL WHERE id = ?")
                .bind(&id)
                .execute(&self.pool)
                .await?;
        }
        Ok(jobs)
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let micros: Option<i64> = sqlx::query_scalar("SELECT MIN(next_run_time) FROM tickd_jobs")
            .fetch_one(&self.pool)
            .await?;
        Ok(micros.and_then(from_micros))
    }

    async fn add_job(&self, job: &Job) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tickd_jobs (id, next_run_time, job_state) VALUES (?, ?, ?)")
            .bind(&job.id)
            .bind(next_micros(job))
            .bind(job.to_state())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(job.id.clone())
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE tickd_jobs SET next_run_time = ?, job_state = ? WHERE id = ?")
                .bind(next_micros(job))
                .bind(job.to_state())
                .bind(&job.id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(job.id.clone()));
        }
        Ok(())
    }

    async fn replace_job(&self, job: &Job) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tickd_jobs (id, next_run_time, job_state) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET next_run_time = excluded.next_run_time, \
             job_state = excluded.job_state",
        )
        .bind(&job.id)
        .bind(next_micros(job))
        .bind(job.to_state())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_job(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM tickd_jobs WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn advance_job(
        &self,
        job_id: &str,
        next: Option<&Job>,
        runs: &[RunRecord],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for run in runs {
            match bind_run(sqlx::query(INSERT_RUN), run)
                .execute(&mut *tx)
                .await
            {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        match next {
            Some(job) => {
                sqlx::query("UPDATE tickd_jobs SET next_run_time = ?, job_state = ? WHERE id = ?")
                    .bind(next_micros(job))
                    .bind(job.to_state())
                    .bind(job_id)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("DELETE FROM tickd_jobs WHERE id = ?")
                    .bind(job_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        bind_run(sqlx::query(INSERT_RUN), run)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickd_runs SET started_micros = ?, finished_micros = ?, status = ?, \
             reason = ?, exit_code = ?, stdout = ?, stderr = ?, stdout_truncated = ?, \
             stderr_truncated = ? WHERE id = ?",
        )
        .bind(run.started_at.map(to_micros))
        .bind(run.finished_at.map(to_micros))
        .bind(run.status.as_str())
        .bind(&run.reason)
        .bind(run.exit_code)
        .bind(&run.stdout)
        .bind(&run.stderr)
        .bind(run.stdout_truncated)
        .bind(run.stderr_truncated)
        .bind(&run.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM tickd_runs WHERE id = ?"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(RunRow::into_record).transpose()
    }

    async fn get_runs(
        &self,
        job_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let rows: Vec<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM tickd_runs WHERE job_id = ? AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        ))
        .bind(job_id)
        .bind(before)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(RunRow::into_record).collect()
    }

    async fn interrupt_runs(
        &self,
        node: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE tickd_runs SET status = ?, reason = ?, finished_micros = ? \
             WHERE status = ? AND node = ?",
        )
        .bind(RunStatus::Interrupted.as_str())
        .bind(reason)
        .bind(to_micros(at))
        .bind(RunStatus::Running.as_str())
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn prune_runs(
        &self,
        older_than: DateTime<Utc>,
        keep_per_job: u32,
    ) -> Result<u64, StoreError> {
        let old = sqlx::query("DELETE FROM tickd_runs WHERE created_micros < ? AND status != ?")
            .bind(to_micros(older_than))
            .bind(RunStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        let extra = sqlx::query(
            "DELETE FROM tickd_runs WHERE id IN (SELECT id FROM (SELECT id, status, \
             ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n FROM tickd_runs) \
             WHERE n > ? AND status != ?)",
        )
        .bind(i64::from(keep_per_job))
        .bind(RunStatus::Running.as_str())
        .execute(&self.pool)
        .await?;
        Ok(old.rows_affected() + extra.rows_affected())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The columns [`RunRow`] reads (a macro, so queries stay `&'static str` literals).
macro_rules! run_columns {
    () => {
        "id, job_id, scheduled_run_time, created_micros, started_micros, finished_micros, \
         status, reason, exit_code, stdout, stderr, stdout_truncated, stderr_truncated, cause, node"
    };
}
use run_columns;

const INSERT_RUN: &str = "INSERT INTO tickd_runs (id, job_id, scheduled_micros, \
    scheduled_run_time, created_micros, started_micros, finished_micros, status, reason, \
    exit_code, stdout, stderr, stdout_truncated, stderr_truncated, cause, node) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

fn bind_run<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    run: &'q RunRecord,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    query
        .bind(&run.id)
        .bind(&run.job_id)
        .bind(scheduled_micros(run))
        .bind(scheduled_text(run))
        .bind(to_micros(run.created_at))
        .bind(run.started_at.map(to_micros))
        .bind(run.finished_at.map(to_micros))
        .bind(run.status.as_str())
        .bind(&run.reason)
        .bind(run.exit_code)
        .bind(&run.stdout)
        .bind(&run.stderr)
        .bind(run.stdout_truncated)
        .bind(run.stderr_truncated)
        .bind(run.cause.as_str())
        .bind(&run.node)
}
