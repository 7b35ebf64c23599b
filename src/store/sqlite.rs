//! The embedded default store: one SQLite file, WAL mode, a busy timeout. One daemon per
//! file: SQLite has no row locks to share due jobs with, so [`SqliteStore::open`] takes an
//! exclusive lock on `<file>.lock` (`lock.rs`) and a second daemon refuses to start. A clean
//! close leaves the database file alone: the WAL checkpointed and removed, the lock file
//! removed.

mod adds;
mod lock;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{FromRow, QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use super::{
    Claim, JobRow, JobStore, NodeRecord, RunRow, StoreError, StoredView, ViewFilter, ViewStream,
    decode_job_rows, from_micros, is_unique_violation, log_unreadable, next_micros,
    scheduled_micros, scheduled_text, to_micros,
};
use crate::job::{Job, RunRecord, RunStatus};
use adds::{Adds, NewRow};
use lock::DbLock;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The WAL's size after a checkpoint, at most (`journal_size_limit`): a burst of writes (a
/// bulk import) grows the WAL, and without a limit SQLite keeps the file at its largest for
/// ever. 4 MiB is a little above what the default auto-checkpoint (1000 pages) lets it
/// reach, so steady use does not shrink and regrow it.
const WAL_SIZE_LIMIT: &str = "4194304";

/// Jobs in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Inserts, committed in groups.
    adds: Adds,
    /// The single-daemon lock, held until [`JobStore::close`] (or drop).
    /// std Mutex: taken once, at close.
    lock: std::sync::Mutex<Option<DbLock>>,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url` (`sqlite://path`,
    /// optionally `?synchronous=normal`).
    ///
    /// Durability: by default every commit is synced to disk (`synchronous=FULL`), so an
    /// acknowledged create survives a power cut, not only a crash of the process; the group
    /// commit shares one sync among the creates that arrive together. `synchronous=normal`
    /// (WAL mode) syncs at checkpoints only: still safe against a crash of tickd, but the last
    /// transactions before a power cut may be lost.
    ///
    /// # Errors
    /// The file cannot be opened or migrated, or another daemon holds it.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let (url, synchronous) = synchronous_of(url)?;
        let url = url.as_str();
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(anyhow!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(5))
            // Pages cached per connection: 512 KiB instead of 2 MiB. The OS caches the file
            // anyway; SQLite's own cache is process memory, four times over with the pool.
            .pragma("cache_size", "-512")
            .pragma("journal_size_limit", WAL_SIZE_LIMIT);
        let lock = match options.get_filename().to_str() {
            Some(":memory:") | Some("") | None => None,
            Some(path) => Some(DbLock::take(path)?),
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(anyhow!("migrating {url}: {e}")))?;
        Ok(SqliteStore {
            adds: Adds::start(pool.clone()),
            pool,
            lock: std::sync::Mutex::new(lock),
        })
    }
}

/// Takes tickd's own `synchronous` parameter off a SQLite URL (sqlx does not know it).
fn synchronous_of(url: &str) -> Result<(String, SqliteSynchronous), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), SqliteSynchronous::Full));
    };
    let mut synchronous = SqliteSynchronous::Full;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "full" => SqliteSynchronous::Full,
                    "normal" => SqliteSynchronous::Normal,
                    _ => {
                        return Err(StoreError::Backend(anyhow!(
                            "synchronous={value} in the SQLite URL: expected full (the default: \
                             every commit reaches the disk) or normal (faster; the last \
                             commits may be lost in a power cut)"
                        )));
                    }
                };
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, synchronous))
}

impl SqliteStore {
    /// Parks due rows that could not be decoded: their next fire time is cleared (their
    /// state kept) if they are still unreadable under the write lock, so a row replaced in
    /// the meantime is left alone.
    async fn park(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for id in ids {
            let row = sqlx::query("SELECT id, job_state, version FROM tickd_jobs WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let readable = row.is_some_and(|row| {
                JobRow::from_row(&row).is_ok_and(|row| Job::from_state(&row.job_state).is_ok())
            });
            if !readable {
                sqlx::query("UPDATE tickd_jobs SET next_run_time = NULL WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Decodes job rows as the other SQL stores do ([`decode_job_rows`]): unreadable ones are
/// logged and skipped, their ids answered too.
fn decode_jobs(rows: Vec<SqliteRow>) -> (Vec<Job>, Vec<String>) {
    let mut readable = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in &rows {
        match JobRow::from_row(row) {
            Ok(job_row) => readable.push(job_row),
            Err(error) => {
                let id: String = row.try_get("id").unwrap_or_default();
                log_unreadable(&id, &error, "row");
                unreadable.push(id);
            }
        }
    }
    let (jobs, mut broken) = decode_job_rows(readable);
    broken.extend(unreadable);
    (jobs, broken)
}

/// A listing row's view; a row written without a rendering is decoded and rendered, and
/// skipped (logged) if unreadable.
fn view_of_row(row: SqliteRow) -> Option<StoredView> {
    let json: Option<String> = row.try_get("job_json").ok()?;
    match json {
        Some(json) => Some(StoredView {
            id: row.try_get("id").ok()?,
            next_run_time: row.try_get("next_run_time").ok()?,
            json,
        }),
        None => decode_jobs(vec![row])
            .0
            .pop()
            .map(|job| StoredView::of(&job)),
    }
}

/// The columns a view is read from: the state only where no rendering was kept.
macro_rules! view_columns {
    () => {
        "id, next_run_time, job_json, CASE WHEN job_json IS NULL THEN job_state END AS job_state, \
         version"
    };
}

/// Records one claim inside the transaction. When a run record for one of its fire times
/// exists already (that fire time was handled), nothing of the claim's runs is kept but the
/// job still advances — else it would stay due and be claimed again at once — and false is
/// answered: there is nothing to start.
async fn record_claim(
    tx: &mut Transaction<'_, Sqlite>,
    job: &Job,
    claim: &Claim,
) -> Result<bool, StoreError> {
    sqlx::query("SAVEPOINT claim").execute(&mut **tx).await?;
    let mut fresh = true;
    for run in &claim.runs {
        match insert_runs([run]).build().execute(&mut **tx).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                sqlx::query("ROLLBACK TO claim").execute(&mut **tx).await?;
                fresh = false;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    match &claim.next {
        Some(next) => advance(tx, &job.id, next).await?,
        None => {
            sqlx::query("DELETE FROM tickd_jobs WHERE id = ?")
                .bind(&job.id)
                .execute(&mut **tx)
                .await?;
        }
    }
    sqlx::query("RELEASE claim").execute(&mut **tx).await?;
    Ok(fresh)
}

/// Writes a claimed job's advance: its next fire time and state, its version bumped.
async fn advance(tx: &mut Transaction<'_, Sqlite>, id: &str, next: &Job) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tickd_jobs SET next_run_time = ?, job_state = ?, job_json = ?, version = version + 1 \
         WHERE id = ?",
    )
    .bind(next_micros(next))
    .bind(next.to_state())
    .bind(next.to_view_json())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Run records per multi-row INSERT (17 values each, well below SQLite's variable limit).
const RUNS_PER_INSERT: usize = 64;

/// Job ids per `DELETE ... IN (...)`.
const IDS_PER_DELETE: usize = 500;

/// The stored versions of the jobs `ids` names (gone ones are absent).
async fn versions<'a>(
    tx: &mut Transaction<'_, Sqlite>,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, i64>, StoreError> {
    let ids: Vec<&str> = ids.collect();
    let mut current = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_DELETE) {
        let mut select =
            QueryBuilder::<Sqlite>::new("SELECT id, version FROM tickd_jobs WHERE id IN (");
        let mut list = select.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        select.push(")");
        let rows: Vec<(String, i64)> = select.build_query_as().fetch_all(&mut **tx).await?;
        current.extend(rows);
    }
    Ok(current)
}

/// Records a whole batch of claims in a few statements: its run records in multi-row
/// INSERTs, its finished jobs in one DELETE, then an UPDATE per advanced job. Job by job
/// ([`record_claim`]) the batch took four statements per job, each a round trip to sqlx's
/// SQLite thread while the due runs waited for the commit. False, with nothing written, when
/// one of the run records exists already: the caller then records job by job, which leaves
/// out only that job's runs.
async fn record_claims(
    tx: &mut Transaction<'_, Sqlite>,
    claims: &[(Job, Claim)],
) -> Result<bool, StoreError> {
    sqlx::query("SAVEPOINT claims").execute(&mut **tx).await?;
    let runs: Vec<&RunRecord> = claims.iter().flat_map(|(_, claim)| &claim.runs).collect();
    for chunk in runs.chunks(RUNS_PER_INSERT) {
        let mut insert = insert_runs(chunk.iter().copied());
        match insert.build().execute(&mut **tx).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                sqlx::query("ROLLBACK TO claims").execute(&mut **tx).await?;
                sqlx::query("RELEASE claims").execute(&mut **tx).await?;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let finished: Vec<&str> = claims
        .iter()
        .filter(|(_, claim)| claim.next.is_none())
        .map(|(job, _)| job.id.as_str())
        .collect();
    for chunk in finished.chunks(IDS_PER_DELETE) {
        let mut delete = QueryBuilder::<Sqlite>::new("DELETE FROM tickd_jobs WHERE id IN (");
        let mut ids = delete.separated(", ");
        for id in chunk {
            ids.push_bind(*id);
        }
        delete.push(")");
        delete.build().execute(&mut **tx).await?;
    }
    for (job, claim) in claims {
        if let Some(next) = &claim.next {
            advance(tx, &job.id, next).await?;
        }
    }
    sqlx::query("RELEASE claims").execute(&mut **tx).await?;
    Ok(true)
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT id, job_state, version FROM tickd_jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|row| decode_jobs(vec![row]).0.pop()))
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, job_state, version FROM tickd_jobs \
             ORDER BY next_run_time IS NULL, next_run_time, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(decode_jobs(rows).0)
    }

    fn stream_job_views(&self, filter: ViewFilter) -> ViewStream<'_> {
        // One statement, so one snapshot; its order is the `tickd_jobs_listing` index's, so
        // rows come as they are read and nothing is sorted or held.
        let sql = match filter {
            ViewFilter::All => concat!(
                "SELECT ",
                view_columns!(),
                " FROM tickd_jobs ORDER BY next_run_time IS NULL, next_run_time, id"
            ),
            // A pending job's object has no `next_run_time` key (CONTRACT §1); in listing
            // order too, as a pending job may have been given a first fire time.
            ViewFilter::Pending => concat!(
                "SELECT ",
                view_columns!(),
                " FROM tickd_jobs WHERE job_json IS NULL \
                 OR json_type(job_json, '$.next_run_time') IS NULL \
                 ORDER BY next_run_time IS NULL, next_run_time, id"
            ),
        };
        sqlx::query(sql)
            .fetch(&self.pool)
            .map_err(StoreError::from)
            .try_filter_map(|row| std::future::ready(Ok(view_of_row(row))))
            .boxed()
    }

    async fn get_job_view(&self, id: &str) -> Result<Option<StoredView>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            view_columns!(),
            " FROM tickd_jobs WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(view_of_row))
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        // The first row in listing order: the earliest fire time, or NULL when no job has one
        // (one probe of `tickd_jobs_listing`).
        let micros: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT next_run_time FROM tickd_jobs \
             ORDER BY next_run_time IS NULL, next_run_time, id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(micros.flatten().and_then(from_micros))
    }

    async fn add_job(&self, job: &Job) -> Result<(), StoreError> {
        self.add_job_rendered(job, &job.to_view_json()).await
    }

    async fn add_job_rendered(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        self.adds
            .add(NewRow {
                id: job.id.clone(),
                next_run_time: next_micros(job),
                job_state: job.to_state(),
                job_json: view.to_owned(),
            })
            .await
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE tickd_jobs SET next_run_time = ?, job_state = ?, job_json = ?, version = version + 1 \
             WHERE id = ? AND version = ?",
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
             VALUES (?, ?, ?, ?, 0) \
             ON CONFLICT (id) DO UPDATE SET next_run_time = excluded.next_run_time, \
             job_state = excluded.job_state, job_json = excluded.job_json, version = tickd_jobs.version + 1",
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
        let done = sqlx::query("DELETE FROM tickd_jobs WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        // A plain read (WAL: beside the writer, never waiting for it).
        let rows = sqlx::query(
            // `(next_run_time IS NULL) = 0` is the listing index's first column: the due jobs
            // are then a range of it, read in order.
            "SELECT id, job_state, version FROM tickd_jobs \
             WHERE (next_run_time IS NULL) = 0 AND next_run_time <= ? \
             ORDER BY next_run_time, id LIMIT ?",
        )
        .bind(to_micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let (jobs, broken) = decode_jobs(rows);
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
        // BEGIN IMMEDIATE takes the write lock up front; inside, only the version check and
        // the writes.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current = versions(&mut tx, claims.iter().map(|(job, _)| job.id.as_str())).await?;
        let mut kept: Vec<(Job, Claim)> = claims
            .into_iter()
            .filter(|(job, _)| current.get(&job.id) == Some(&job.version))
            .collect();
        if !record_claims(&mut tx, &kept).await? {
            for (job, claim) in &mut kept {
                if !record_claim(&mut tx, job, claim).await? {
                    claim.runs.clear();
                }
            }
        }
        tx.commit().await?;
        Ok(kept)
    }

    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        insert_runs([run]).build().execute(&self.pool).await?;
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

    async fn interrupt_orphaned_runs(
        &self,
        me: &str,
        alive_since: DateTime<Utc>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE tickd_runs SET status = ?, reason = ?, finished_micros = ? \
             WHERE status = ? AND owner != ? AND owner NOT IN \
             (SELECT id FROM tickd_nodes WHERE heartbeat_micros >= ?)",
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
        let old = sqlx::query("DELETE FROM tickd_runs WHERE created_micros < ? AND status != ?")
            .bind(to_micros(older_than))
            .bind(RunStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        let extra = sqlx::query(
            "DELETE FROM tickd_runs WHERE id IN (SELECT id FROM (SELECT id, \
             ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n FROM tickd_runs \
             WHERE status != ?) WHERE n > ?)",
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
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
             heartbeat_micros = excluded.heartbeat_micros",
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
                    id: row.get("id"),
                    host: row.get("host"),
                    pid: u32::try_from(row.get::<i64, _>("pid")).ok()?,
                    started_at: from_micros(row.get("started_micros"))?,
                    heartbeat_at: from_micros(row.get("heartbeat_micros"))?,
                })
            })
            .collect())
    }

    async fn remove_nodes(&self, id: &str, before: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM tickd_nodes WHERE id = ? OR heartbeat_micros < ?")
            .bind(id)
            .bind(to_micros(before))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn shared(&self) -> bool {
        false
    }

    async fn close(&self) {
        // Everything in the WAL goes into the database file and the WAL is cut to nothing,
        // so a stopped daemon leaves one file (SQLite also removes the WAL when its last
        // connection closes; this does not depend on that).
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!("Could not checkpoint the SQLite WAL at shutdown: {error}");
        }
        self.pool.close().await;
        // Another daemon may open the file now; the lock file goes with the lock.
        if let Some(mut lock) = self.lock.lock().unwrap_or_else(|e| e.into_inner()).take() {
            lock.release();
        }
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

/// One INSERT of `runs` (a row each): a single record, or a claim's batch.
fn insert_runs<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> QueryBuilder<Sqlite> {
    let mut insert = QueryBuilder::new(
        "INSERT INTO tickd_runs (id, job_id, scheduled_micros, scheduled_run_time, \
         created_micros, started_micros, finished_micros, status, reason, exit_code, stdout, \
         stderr, stdout_truncated, stderr_truncated, cause, node, owner) ",
    );
    insert.push_values(runs, |mut row, run| {
        row.push_bind(&run.id)
            .push_bind(&run.job_id)
            .push_bind(scheduled_micros(run))
            .push_bind(scheduled_text(run))
            .push_bind(to_micros(run.created_at))
            .push_bind(run.started_at.map(to_micros))
            .push_bind(run.finished_at.map(to_micros))
            .push_bind(run.status.as_str())
            .push_bind(&run.reason)
            .push_bind(run.exit_code)
            .push_bind(&run.stdout)
            .push_bind(&run.stderr)
            .push_bind(run.stdout_truncated)
            .push_bind(run.stderr_truncated)
            .push_bind(run.cause.as_str())
            .push_bind(&run.node)
            .push_bind(&run.owner);
    });
    insert
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{JobStore, SqliteStore};

    async fn synchronous(url: &str) -> i64 {
        let store = SqliteStore::open(url).await.unwrap();
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        store.close().await;
        level
    }

    /// Every commit reaches the disk unless the URL asks for less.
    #[tokio::test]
    async fn commits_are_synced_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db").display().to_string();
        assert_eq!(synchronous(&format!("sqlite://{path}")).await, 2, "FULL");
        assert_eq!(
            synchronous(&format!("sqlite://{path}?synchronous=normal")).await,
            1
        );
        let error = SqliteStore::open(&format!("sqlite://{path}?synchronous=off"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("expected full"), "{error}");
    }
}
