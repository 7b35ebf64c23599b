//! Opening a PostgreSQL store that several daemons share.

use sqlx::Postgres;

use super::{SqlStore, connect_server, migrate};
use crate::store::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connects to and migrates the database at `url` (`postgres://` or `postgresql://
/// user:password@host:port/database`). The database must exist; the tables are created.
///
/// # Errors
/// A bad URL, a server that cannot be reached (`Unavailable`), or a failed migration.
pub(crate) async fn open(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let pool = connect_server::<Postgres>(url).await?;
    migrate(&pool, &MIGRATOR).await?;
    Ok(SqlStore::new(pool, None))
}
