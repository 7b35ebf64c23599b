//! Opening the embedded default: one SQLite file, WAL mode, a busy timeout. One daemon per
//! file: SQLite has no row locks to share due jobs with, so [`open`] takes an exclusive lock
//! on `<file>.lock` (`sqlite_lock.rs`) and a second daemon refuses to start. A clean close
//! leaves the database file alone: the WAL checkpointed and removed, the lock file removed.

use std::str::FromStr;
use std::time::Duration;

use anyhow::anyhow;
use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::sqlite_lock::DbLock;
use super::{SqlStore, migrate, pool};
use crate::store::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The WAL's size after a checkpoint, at most (`journal_size_limit`): a burst of writes (a
/// bulk import) grows the WAL, and without a limit SQLite keeps the file at its largest for
/// ever. 4 MiB is a little above what the default auto-checkpoint (1000 pages) lets it
/// reach, so steady use does not shrink and regrow it.
const WAL_SIZE_LIMIT: &str = "4194304";

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
pub(crate) async fn open(url: &str) -> Result<SqlStore<Sqlite>, StoreError> {
    let options = options(url)?;
    let lock = match options.get_filename().to_str() {
        Some(":memory:") | Some("") | None => None,
        Some(path) => Some(DbLock::take(path)?),
    };
    let pool = pool::<Sqlite>(options, 4).await?;
    migrate(&pool, &MIGRATOR).await?;
    Ok(SqlStore::new(pool, lock))
}

/// Opens (creating if missing) and migrates the database at `url` as [`open`] does, without
/// the single-daemon lock and without the group commit's writer task: for `tickd token`, a
/// short-lived second writer beside the daemon (WAL mode and the busy timeout let both write).
///
/// # Errors
/// The file cannot be opened or migrated.
pub(crate) async fn open_unlocked(url: &str) -> Result<SqlStore<Sqlite>, StoreError> {
    let pool = pool::<Sqlite>(options(url)?, 1).await?;
    migrate(&pool, &MIGRATOR).await?;
    Ok(SqlStore::without_tasks(pool))
}

/// The connection options for `url`: WAL, the busy timeout, the cache and WAL limits.
fn options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
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
    Ok(options)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::open;
    use crate::store::Store;

    async fn synchronous(url: &str) -> i64 {
        let store = open(url).await.unwrap();
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
        let error = open(&format!("sqlite://{path}?synchronous=off"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("expected full"), "{error}");
    }
}
