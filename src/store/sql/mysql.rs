//! Opening a MySQL (8.0.1+) or MariaDB (10.6+) store that several daemons share.

use sqlx::MySql;

use super::{SqlStore, connect_server, migrate};
use crate::store::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// Connects to and migrates the database at `url` (`mysql://` or `mariadb://
/// user:password@host:port/database`: the same protocol; sqlx reads the URL's parts, not its
/// scheme). The database must exist; the tables are created.
///
/// # Errors
/// A bad URL, a server that cannot be reached (`Unavailable`), or a failed migration.
pub(crate) async fn open(url: &str) -> Result<SqlStore<MySql>, StoreError> {
    let pool = connect_server::<MySql>(url).await?;
    // Daemons starting together on a fresh database would race each other through the
    // migrations (seen on MariaDB 10.11: a duplicate entry in _sqlx_migrations): a named
    // lock, held on one connection while the pool migrates, lets them take turns.
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT GET_LOCK('tickd_migrations', 60)")
        .execute(&mut *conn)
        .await?;
    let migrated = migrate(&pool, &MIGRATOR).await;
    sqlx::query("SELECT RELEASE_LOCK('tickd_migrations')")
        .execute(&mut *conn)
        .await?;
    migrated?;
    drop(conn);
    Ok(SqlStore::new(pool, None))
}
