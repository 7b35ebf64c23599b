//! A PostgreSQL store that several daemons share. Due jobs are claimed with `SELECT … FOR
//! UPDATE SKIP LOCKED` in one transaction per batch, and every (job, fire time) is taken once
//! under `UNIQUE(job_id, scheduled_micros)`. The structure and the semantics follow sqlite.rs
//! method for method; only the SQL dialect differs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::{
    Claim, JobRow, JobStore, NodeRecord, RunRow, StoreError, decode_job_rows, from_micros,
    is_unique_violation, next_micros, scheduled_micros, scheduled_text, to_micros,
};
use crate::job::{Job, RunRecord, RunStatus};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Jobs in a PostgreSQL database.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to and migrates the database at `url` (`postgres://` or `postgresql://
    /// user:password@host:port/database`). The database must exist; the tables are created.
    ///
    /// # Errors
    /// A bad URL, a server that cannot be reached (`Unavailable`), or a failed migration.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(anyhow!("bad PostgreSQL URL: {e}")))?;
        super::try_connect::<sqlx::PgConnection>(&options, "PostgreSQL").await?;
        // A short acquire timeout: while the server is down, a call answers `Unavailable`
        // (503) within seconds instead of hanging; the pool reconnects when it is back.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(anyhow!("migrating the PostgreSQL store: {e}")))?;
        Ok(PostgresStore { pool })
    }
}

/// Records one claim inside the transaction. When a run record for one of its fire times
/// exists already (that fire time was handled), none of the claim's runs are kept but the
/// job still advances — else it would stay due and be claimed again at once — and false is
/// answered: there is nothing to start.
///
/// A failed statement aborts a PostgreSQL transaction, so the claim runs inside a savepoint
/// and a duplicate run record rolls back to it: that undoes the claim's earlier run records
/// too and lets the batch go on. (`INSERT … ON CONFLICT DO NOTHING` with a row count would
/// avoid the error, but the earlier records would still need undoing; the savepoint does
/// both, as in the other SQL stores.)
async fn record_claim(
    tx: &mut Transaction<'_, Postgres>,
    job: &Job,
    claim: &Claim,
) -> Result<bool, StoreError> {
    sqlx::query("SAVEPOINT claim").execute(&mut **tx).await?;
    let mut fresh = true;
    for run in &claim.runs {
        match bind_run(sqlx::query(INSERT_RUN), run)
            .execute(&mut **tx)
            .await
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT claim")
                    .execute(&mut **tx)
                    .await?;
                fresh = false;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    match &claim.next {
        Some(next) => {
            sqlx::query(
                "UPDATE tickd_jobs SET next_run_time = $1, job_state = $2, job_json = $3, \
                 version = version + 1 WHERE id = $4",
            )
            .bind(next_micros(next))
            .bind(next.to_state())
            .bind(next.to_view_json())
            .bind(&job.id)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM tickd_jobs WHERE id = $1")
                .bind(&job.id)
                .execute(&mut **tx)
                .await?;
        }
    }
    sqlx::query("RELEASE SAVEPOINT claim")
        .execute(&mut **tx)
        .await?;
    Ok(fresh)
}

impl PostgresStore {
    /// Parks due rows that could not be decoded: their next fire time is cleared (their
    /// state kept) if they are still unreadable with the row locked, so a row replaced in the
    /// meantime is left alone.
    async fn park(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT id, job_state, version FROM tickd_jobs WHERE id = ANY($1) FOR UPDATE",
        )
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            if Job::from_state(&row.job_state).is_err() {
                sqlx::query("UPDATE tickd_jobs SET next_run_time = NULL WHERE id = $1")
                    .bind(&row.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> =
            sqlx::query_as("SELECT id, job_state, version FROM tickd_jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|row| decode_job_rows(vec![row]).0.pop()))
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT id, job_state, version FROM tickd_jobs \
             ORDER BY next_run_time ASC NULLS LAST, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(decode_job_rows(rows).0)
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let micros: Option<i64> = sqlx::query_scalar("SELECT MIN(next_run_time) FROM tickd_jobs")
            .fetch_one(&self.pool)
            .await?;
        Ok(micros.and_then(from_micros))
    }

    async fn add_job(&self, job: &Job) -> Result<(), StoreError> {
        self.add_job_rendered(job, &job.to_view_json()).await
    }

    async fn add_job_rendered(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tickd_jobs (id, next_run_time, job_state, job_json, version) \
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(&job.id)
        .bind(next_micros(job))
        .bind(job.to_state())
        .bind(view)
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
        let done = sqlx::query(
            "UPDATE tickd_jobs SET next_run_time = $1, job_state = $2, job_json = $3, \
             version = version + 1 WHERE id = $4 AND version = $5",
        )
        .bind(next_micros(job))
        .bind(job.to_state())
        .bind(job.to_view_json())
        .bind(&job.id)
        .bind(job.version)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(match self.lookup_job(&job.id).await? {
                Some(_) => StoreError::Stale(job.id.clone()),
                None => StoreError::NotFound(job.id.clone()),
            });
        }
        Ok(())
    }

    async fn replace_job(&self, job: &Job) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tickd_jobs (id, next_run_time, job_state, job_json, version) \
             VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT (id) DO UPDATE SET next_run_time = EXCLUDED.next_run_time, \
             job_state = EXCLUDED.job_state, job_json = EXCLUDED.job_json, version = tickd_jobs.version + 1",
        )
        .bind(&job.id)
        .bind(next_micros(job))
        .bind(job.to_state())
        .bind(job.to_view_json())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_job(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM tickd_jobs WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        // A plain read: it neither takes nor waits for row locks.
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT id, job_state, version FROM tickd_jobs WHERE next_run_time <= $1 \
             ORDER BY next_run_time, id LIMIT $2",
        )
        .bind(to_micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let (jobs, broken) = decode_job_rows(rows);
        if !broken.is_empty() {
            self.park(&broken).await?;
        }
        Ok(jobs)
    }

    async fn commit_claims(
        &self,
        claims: Vec<(Job, Claim)>,
    ) -> Result<Vec<(Job, Claim)>, StoreError> {
        if claims.is_empty() {
            return Ok(claims);
        }
        // READ COMMITTED (PostgreSQL's default, said explicitly in case the server's default is
        // stricter): the locking read sees each row's latest committed version, and a row
        // another claim holds is skipped, not waited for and not a serialization failure.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await?;
        let ids: Vec<String> = claims.iter().map(|(job, _)| job.id.clone()).collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, version FROM tickd_jobs WHERE id = ANY($1) FOR UPDATE SKIP LOCKED",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let current: HashMap<String, i64> = rows.into_iter().collect();
        let mut claimed = Vec::with_capacity(claims.len());
        for (job, mut claim) in claims {
            if current.get(&job.id) != Some(&job.version) {
                continue;
            }
            if !record_claim(&mut tx, &job, &claim).await? {
                claim.runs.clear();
            }
            claimed.push((job, claim));
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        bind_run(sqlx::query(INSERT_RUN), run)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickd_runs SET started_micros = $1, finished_micros = $2, status = $3, \
             reason = $4, exit_code = $5, stdout = $6, stderr = $7, stdout_truncated = $8, \
             stderr_truncated = $9 WHERE id = $10",
        )
        .bind(run.started_at.map(to_micros))
        .bind(run.finished_at.map(to_micros))
        .bind(run.status.as_str())
        .bind(run.reason.as_deref().map(pg_text))
        .bind(run.exit_code)
        .bind(pg_text(&run.stdout))
        .bind(pg_text(&run.stderr))
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
            " FROM tickd_runs WHERE id = $1"
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
            " FROM tickd_runs WHERE job_id = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC \
             LIMIT $3"
        ))
        .bind(job_id)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(RunRow::into_record).collect()
    }

    async fn interrupt_orphaned_runs(
        &self,
        me: &str,
        alive_since: DateTime<Utc>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE tickd_runs SET status = $1, reason = $2, finished_micros = $3 \
             WHERE status = $4 AND owner <> $5 AND owner NOT IN \
             (SELECT id FROM tickd_nodes WHERE heartbeat_micros >= $6)",
        )
        .bind(RunStatus::Interrupted.as_str())
        .bind(reason)
        .bind(to_micros(at))
        .bind(RunStatus::Running.as_str())
        .bind(me)
        .bind(to_micros(alive_since))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn prune_runs(
        &self,
        older_than: DateTime<Utc>,
        keep_per_job: u32,
    ) -> Result<u64, StoreError> {
        let old = sqlx::query("DELETE FROM tickd_runs WHERE created_micros < $1 AND status <> $2")
            .bind(to_micros(older_than))
            .bind(RunStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        let extra = sqlx::query(
            "DELETE FROM tickd_runs WHERE id IN (SELECT id FROM (SELECT id, \
             ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n FROM tickd_runs \
             WHERE status <> $1) AS ranked WHERE n > $2)",
        )
        .bind(RunStatus::Running.as_str())
        .bind(i64::from(keep_per_job))
        .execute(&self.pool)
        .await?;
        Ok(old.rows_affected() + extra.rows_affected())
    }

    async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tickd_nodes (id, host, pid, started_micros, heartbeat_micros) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
             heartbeat_micros = EXCLUDED.heartbeat_micros",
        )
        .bind(&node.id)
        .bind(&node.host)
        .bind(i64::from(node.pid))
        .bind(to_micros(node.started_at))
        .bind(to_micros(node.heartbeat_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, host, pid, started_micros, heartbeat_micros FROM tickd_nodes \
             ORDER BY heartbeat_micros DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(NodeRecord {
                    id: row.try_get("id").ok()?,
                    host: row.try_get("host").ok()?,
                    pid: u32::try_from(row.try_get::<i64, _>("pid").ok()?).ok()?,
                    started_at: from_micros(row.try_get("started_micros").ok()?)?,
                    heartbeat_at: from_micros(row.try_get("heartbeat_micros").ok()?)?,
                })
            })
            .collect())
    }

    async fn remove_nodes(&self, id: &str, before: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM tickd_nodes WHERE id = $1 OR heartbeat_micros < $2")
            .bind(id)
            .bind(to_micros(before))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The columns [`RunRow`] reads (a macro, so queries stay `&'static str` literals).
macro_rules! run_columns {
    () => {
        "id, job_id, scheduled_run_time, created_micros, started_micros, finished_micros, \
         status, reason, exit_code, stdout, stderr, stdout_truncated, stderr_truncated, cause, \
         node, owner"
    };
}
use run_columns;

const INSERT_RUN: &str = "INSERT INTO tickd_runs (id, job_id, scheduled_micros, \
    scheduled_run_time, created_micros, started_micros, finished_micros, status, reason, \
    exit_code, stdout, stderr, stdout_truncated, stderr_truncated, cause, node, owner) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

fn bind_run<'q>(
    query: sqlx::query::Query<'q, Postgres, PgArguments>,
    run: &'q RunRecord,
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    query
        .bind(&run.id)
        .bind(&run.job_id)
        .bind(scheduled_micros(run))
        .bind(scheduled_text(run))
        .bind(to_micros(run.created_at))
        .bind(run.started_at.map(to_micros))
        .bind(run.finished_at.map(to_micros))
        .bind(run.status.as_str())
        .bind(run.reason.as_deref().map(pg_text))
        .bind(run.exit_code)
        .bind(pg_text(&run.stdout))
        .bind(pg_text(&run.stderr))
        .bind(run.stdout_truncated)
        .bind(run.stderr_truncated)
        .bind(run.cause.as_str())
        .bind(&run.node)
        .bind(&run.owner)
}

/// Text PostgreSQL can store: it refuses NUL in `text`, and a script may well print one, so NUL
/// becomes U+FFFD (as undecodable output bytes do) rather than failing the run's record.
fn pg_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}
