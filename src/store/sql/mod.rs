//! The SQL store: one implementation for SQLite (the embedded default), MySQL/MariaDB and
//! PostgreSQL. The logic — statements, decoding, the claim — is written once against
//! [`Dialect`]; what truly differs per database (placeholders, upsert and row-lock forms, how
//! a claim's transaction begins, connection options, migrations) is in `dialect.rs` and in
//! each database's `open`.
//!
//! Tables (see `migrations/`): `tickd_jobs` (id, next fire instant in µs, pending, state
//! JSON, view JSON, version), `tickd_runs` (one row per run, `UNIQUE(job_id,
//! scheduled_micros)`), `tickd_nodes` (heartbeats), `tickd_tokens` (API tokens, their
//! secrets' hashes only), `tickd_audit` (the audit log).

mod adds;
mod audit;
mod claim;
mod dialect;
mod jobs;
mod mysql;
mod nodes;
mod notifications;
mod postgres;
mod rows;
mod runs;
mod sqlite;
mod sqlite_lock;
mod tokens;

use async_trait::async_trait;
use sqlx::Pool;
use sqlx::pool::PoolConnection;

use super::{Store, StoreError};
use adds::Adds;
use dialect::{Dialect, Statement};
use sqlite_lock::DbLock;

pub(crate) use mysql::open as open_mysql;
pub(crate) use postgres::open as open_postgres;
pub(crate) use sqlite::open as open_sqlite;
pub(crate) use sqlite::open_unlocked as open_sqlite_unlocked;

/// Jobs, runs and nodes in a SQL database.
#[derive(Debug)]
pub(crate) struct SqlStore<D: Dialect> {
    pool: Pool<D>,
    /// Inserts of jobs committed in groups, where the dialect wants it.
    adds: Option<Adds>,
    /// The single-daemon lock of a database only one daemon may use, held until
    /// [`Store::close`] (or drop). std Mutex: taken once, at close.
    lock: std::sync::Mutex<Option<DbLock>>,
}

impl<D: Dialect> SqlStore<D> {
    /// The store over an open, migrated pool.
    fn new(pool: Pool<D>, lock: Option<DbLock>) -> SqlStore<D> {
        SqlStore {
            adds: D::GROUP_ADDS.then(|| Adds::start(pool.clone())),
            pool,
            lock: std::sync::Mutex::new(lock),
        }
    }

    /// The store over an open, migrated pool, with no lock and no background task (inserts
    /// of jobs go straight to the database): for a short-lived tool beside the daemon.
    fn without_tasks(pool: Pool<D>) -> SqlStore<D> {
        SqlStore {
            adds: None,
            pool,
            lock: std::sync::Mutex::new(None),
        }
    }

    /// A connection of the pool.
    async fn conn(&self) -> Result<PoolConnection<D>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// Runs a statement on a connection of the pool; answers the rows it changed.
    async fn execute(&self, statement: Statement<'_>) -> Result<u64, StoreError> {
        Ok(D::execute(&mut *self.conn().await?, statement).await?)
    }

    /// Runs a query on a connection of the pool; answers its rows.
    async fn fetch_all(&self, statement: Statement<'_>) -> Result<Vec<D::Row>, StoreError> {
        Ok(D::fetch_all(&mut *self.conn().await?, statement).await?)
    }

    /// Runs a query on a connection of the pool; answers its first row.
    async fn fetch_optional(&self, statement: Statement<'_>) -> Result<Option<D::Row>, StoreError> {
        Ok(D::fetch_optional(&mut *self.conn().await?, statement).await?)
    }
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    fn shared(&self) -> bool {
        D::SHARED
    }

    fn keeps_views(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.fetch_optional(Statement::new("SELECT 1")).await?;
        Ok(())
    }

    async fn close(&self) {
        if let Some(statement) = D::AT_CLOSE
            && let Err(error) = self.execute(Statement::new(statement)).await
        {
            tracing::warn!("Could not tidy the {} store at shutdown: {error}", D::NAME);
        }
        self.pool.close().await;
        // Another daemon may open the database now; the lock file goes with the lock.
        if let Some(mut lock) = self.lock.lock().unwrap_or_else(|e| e.into_inner()).take() {
            lock.release();
        }
    }
}

/// Whether the database refused a duplicate key.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A pool of `max` connections to the database `options` name.
async fn pool<D: Dialect>(
    options: <D::Connection as sqlx::Connection>::Options,
    max: u32,
) -> Result<Pool<D>, StoreError> {
    Ok(sqlx::pool::PoolOptions::<D>::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?)
}

/// A pool of connections to the database server `url` names, the server tried first so that
/// one that cannot be reached says why.
async fn connect_server<D: Dialect>(url: &str) -> Result<Pool<D>, StoreError>
where
    <D::Connection as sqlx::Connection>::Options: std::str::FromStr<Err = sqlx::Error>,
{
    let options = url
        .parse()
        .map_err(|e| StoreError::Backend(anyhow::anyhow!("bad {} URL: {e}", D::NAME)))?;
    try_connect::<D::Connection>(&options, D::NAME).await?;
    pool(options, SERVER_CONNECTIONS).await
}

/// Creates or updates the tables.
async fn migrate<D: Dialect>(
    pool: &Pool<D>,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), StoreError>
where
    D::Connection: sqlx::migrate::Migrate,
{
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::Backend(anyhow::anyhow!("migrating the {} store: {e}", D::NAME)))
}

/// Connections per pool to a database server.
const SERVER_CONNECTIONS: u32 = 8;

/// Opens one connection to a database server before its pool is built, so that a server that
/// cannot be reached says why (connection refused, unknown host, bad password) instead of the
/// pool's "timed out while waiting for an open connection". The connection is closed again.
///
/// # Errors
/// `Unavailable` with the driver's reason, within `CONNECT_TIMEOUT`.
async fn try_connect<C: sqlx::Connection>(
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

/// How long a call waits for a connection of the pool: while the server is down, a call
/// answers `Unavailable` (503) within seconds instead of hanging; the pool reconnects when it
/// is back.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
