//! What differs between SQLite, MySQL/MariaDB and PostgreSQL, in one trait: the SQL forms
//! (placeholders, upsert, row locks, listing order, how a claim's transaction begins), and
//! the plumbing that binds values and runs statements on each driver.
//!
//! The plumbing is why this is not plain generic code over `sqlx::Database`: binding a value
//! or running a statement generically needs a dozen trait bounds (`&mut Connection:
//! Executor`, `Encode`/`Type`/`Decode` per column type) repeated on every generic item, as
//! Rust does not carry them along with the type. Here the store's logic is written once
//! against [`Dialect`], whose few plumbing functions the [`plumbing!`] macro writes for each
//! driver, where every type is concrete. Statements are written once, with `?` placeholders.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::{AssertSqlSafe, Database, Pool};

use crate::job::{JobId, RunId};

/// A value bound to a statement: the kinds of column tickd stores.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    /// A 64-bit integer (times in µs, versions, pids), or NULL.
    Int(Option<i64>),
    /// A 32-bit integer (exit codes), or NULL.
    Small(Option<i32>),
    /// Text, or NULL.
    Text(Option<Cow<'a, str>>),
    /// A flag.
    Flag(bool),
}

impl From<i64> for Val<'_> {
    fn from(value: i64) -> Self {
        Val::Int(Some(value))
    }
}

impl From<Option<i64>> for Val<'_> {
    fn from(value: Option<i64>) -> Self {
        Val::Int(value)
    }
}

impl From<Option<i32>> for Val<'_> {
    fn from(value: Option<i32>) -> Self {
        Val::Small(value)
    }
}

impl From<bool> for Val<'_> {
    fn from(value: bool) -> Self {
        Val::Flag(value)
    }
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(value: &'a str) -> Self {
        Val::Text(Some(Cow::Borrowed(value)))
    }
}

impl<'a> From<&'a String> for Val<'a> {
    fn from(value: &'a String) -> Self {
        Val::Text(Some(Cow::Borrowed(value)))
    }
}

impl From<String> for Val<'_> {
    fn from(value: String) -> Self {
        Val::Text(Some(Cow::Owned(value)))
    }
}

impl<'a> From<&'a JobId> for Val<'a> {
    fn from(value: &'a JobId) -> Self {
        Val::from(value.as_str())
    }
}

impl<'a> From<&'a RunId> for Val<'a> {
    fn from(value: &'a RunId) -> Self {
        Val::from(value.as_str())
    }
}

impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Val::Text(value.map(Cow::Borrowed))
    }
}

impl<'a> From<Cow<'a, str>> for Val<'a> {
    fn from(value: Cow<'a, str>) -> Self {
        Val::Text(Some(value))
    }
}

/// A statement and its values. The text uses `?` placeholders; [`Dialect::plumbing`]'s
/// binding numbers them for PostgreSQL.
#[derive(Debug, Clone)]
pub(crate) struct Statement<'a> {
    text: Cow<'static, str>,
    args: Vec<Val<'a>>,
    /// Kept in the connection's cache of prepared statements (the default).
    cached: bool,
}

impl<'a> Statement<'a> {
    /// A statement written out in full.
    pub fn new(text: &'static str) -> Statement<'a> {
        Statement {
            text: Cow::Borrowed(text),
            args: Vec::new(),
            cached: true,
        }
    }

    /// A statement put together at run time (an `IN` list, a multi-row `INSERT`).
    pub fn built(text: String) -> Statement<'a> {
        Statement {
            text: Cow::Owned(text),
            args: Vec::new(),
            cached: true,
        }
    }

    /// Prepared for this run only, not kept in the connection's statement cache: for a text
    /// that varies with a batch's size and is not worth keeping (each cached variant of a
    /// wide multi-row `INSERT` holds its own prepared form; a hundred of them per connection
    /// grew the daemon by tens of megabytes).
    pub fn uncached(mut self) -> Statement<'a> {
        self.cached = false;
        self
    }

    /// Binds the next placeholder.
    pub fn bind(mut self, value: impl Into<Val<'a>>) -> Statement<'a> {
        self.args.push(value.into());
        self
    }

    /// Binds the next placeholders, one per value.
    pub fn bind_all<V: Into<Val<'a>>>(mut self, values: impl IntoIterator<Item = V>) -> Self {
        self.args.extend(values.into_iter().map(Into::into));
        self
    }

    /// The text as the driver takes it: `?` numbered `$1`, `$2`, ... where the dialect wants.
    fn sql(text: Cow<'static, str>, numbered: bool) -> AssertSqlSafe<Cow<'static, str>> {
        if !numbered {
            return AssertSqlSafe(text);
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut n = 0;
        for c in text.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        AssertSqlSafe(Cow::Owned(out))
    }
}

/// `n` placeholders, comma-separated: an `IN (...)` list or one row of a multi-row `INSERT`.
pub(crate) fn placeholders(n: usize) -> String {
    let mut list = "?, ".repeat(n);
    list.truncate(list.len().saturating_sub(2));
    list
}

/// How a dialect writes "insert, or update the row whose key is taken".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upsert {
    /// `ON CONFLICT (key) DO UPDATE SET col = excluded.col` (SQLite, PostgreSQL).
    OnConflict,
    /// `ON DUPLICATE KEY UPDATE col = VALUES(col)` (MySQL, MariaDB: MariaDB knows no row
    /// alias, so `VALUES(col)` it is).
    OnDuplicateKey,
}

/// The tail of an upsert into `table` keyed by `id`: the `columns` take the new row's
/// values, and `version` (when asked) is bumped from the stored one.
pub(crate) fn upsert_tail<D: Dialect>(table: &str, columns: &[&str], bump_version: bool) -> String {
    let (head, new, old) = match D::UPSERT {
        Upsert::OnConflict => (" ON CONFLICT (id) DO UPDATE SET ", "excluded.", table),
        Upsert::OnDuplicateKey => (" ON DUPLICATE KEY UPDATE ", "VALUES(", ""),
    };
    let close = if D::UPSERT == Upsert::OnDuplicateKey {
        ")"
    } else {
        ""
    };
    let mut sets: Vec<String> = columns
        .iter()
        .map(|column| format!("{column} = {new}{column}{close}"))
        .collect();
    if bump_version {
        let old = if old.is_empty() {
            String::new()
        } else {
            format!("{old}.")
        };
        sets.push(format!("version = {old}version + 1"));
    }
    format!("{head}{}", sets.join(", "))
}

/// A database tickd's SQL store runs on. The constants are the SQL forms that differ, their
/// defaults the forms the database servers (MySQL, PostgreSQL) share; the functions are the
/// plumbing, written for each driver by [`plumbing!`].
pub(crate) trait Dialect: Database + Sync {
    /// Whether placeholders are numbered (`$1`) rather than `?`.
    const NUMBERED: bool = false;
    /// The contract's listing order (paused jobs last, ties by id), as the listing index
    /// reads it.
    const LISTING_ORDER: &'static str = "next_run_time IS NULL, next_run_time, id";
    /// "Due by ?": a range of the listing index.
    const DUE: &'static str = "next_run_time <= ?";
    /// The earliest next fire time (NULL when no job has one), as one index probe.
    const NEXT_RUN_TIME: &'static str = "SELECT MIN(next_run_time) FROM tickd_jobs";
    /// How an upsert is written.
    const UPSERT: Upsert = Upsert::OnConflict;
    /// What a claim's locking read appends: skip rows another claim holds, wait for none.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    /// What a read that locks its rows appends.
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    /// A statement run on the claim's connection before its transaction begins.
    const BEFORE_CLAIM: Option<&'static str> = None;
    /// How a claim's transaction begins.
    const BEGIN_CLAIM: &'static str = "BEGIN";
    /// How a transaction that writes begins.
    const BEGIN_WRITE: &'static str = "BEGIN";
    /// Whether several daemons may share the database.
    const SHARED: bool = true;
    /// Whether inserts of jobs are committed in groups ([`super::adds`]).
    const GROUP_ADDS: bool = false;
    /// A statement run at a clean close.
    const AT_CLOSE: Option<&'static str> = None;
    /// Job ids per `IN (...)` list.
    const IDS_PER_STATEMENT: usize = 500;

    /// Text as the database can store it (PostgreSQL refuses NUL in `text`).
    fn text(text: &str) -> Cow<'_, str> {
        Cow::Borrowed(text)
    }

    /// Runs a statement; answers the rows it changed.
    fn execute<'c>(
        conn: &'c mut Self::Connection,
        statement: Statement<'c>,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>>;
    /// Runs a query; answers its rows.
    fn fetch_all<'c>(
        conn: &'c mut Self::Connection,
        statement: Statement<'c>,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>>;
    /// Runs a query; answers its first row.
    fn fetch_optional<'c>(
        conn: &'c mut Self::Connection,
        statement: Statement<'c>,
    ) -> BoxFuture<'c, Result<Option<Self::Row>, sqlx::Error>>;
    /// Runs a query; streams its rows as they come, on a connection of its own.
    fn fetch<'c>(
        pool: &'c Pool<Self>,
        statement: Statement<'c>,
    ) -> BoxStream<'c, Result<Self::Row, sqlx::Error>>;
    /// Column `i` as an integer.
    fn int(row: &Self::Row, i: usize) -> Result<Option<i64>, sqlx::Error>;
    /// Column `i` as a 32-bit integer.
    fn small(row: &Self::Row, i: usize) -> Result<Option<i32>, sqlx::Error>;
    /// Column `i` as text.
    fn string(row: &Self::Row, i: usize) -> Result<Option<String>, sqlx::Error>;
    /// Column `i` as a flag.
    fn flag(row: &Self::Row, i: usize) -> Result<bool, sqlx::Error>;
}

/// The plumbing functions of [`Dialect`] for one driver: the same text for each, compiled
/// with its concrete types.
macro_rules! plumbing {
    () => {
        fn execute<'c>(
            conn: &'c mut Self::Connection,
            statement: Statement<'c>,
        ) -> BoxFuture<'c, Result<u64, sqlx::Error>> {
            Box::pin(async move {
                Ok(<Self as Binder>::bind(statement)
                    .execute(conn)
                    .await?
                    .rows_affected())
            })
        }

        fn fetch_all<'c>(
            conn: &'c mut Self::Connection,
            statement: Statement<'c>,
        ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>> {
            Box::pin(<Self as Binder>::bind(statement).fetch_all(conn))
        }

        fn fetch_optional<'c>(
            conn: &'c mut Self::Connection,
            statement: Statement<'c>,
        ) -> BoxFuture<'c, Result<Option<Self::Row>, sqlx::Error>> {
            Box::pin(<Self as Binder>::bind(statement).fetch_optional(conn))
        }

        fn fetch<'c>(
            pool: &'c Pool<Self>,
            statement: Statement<'c>,
        ) -> BoxStream<'c, Result<Self::Row, sqlx::Error>> {
            <Self as Binder>::bind(statement).fetch(pool)
        }

        fn int(row: &Self::Row, i: usize) -> Result<Option<i64>, sqlx::Error> {
            sqlx::Row::try_get(row, i)
        }

        fn small(row: &Self::Row, i: usize) -> Result<Option<i32>, sqlx::Error> {
            sqlx::Row::try_get(row, i)
        }

        fn string(row: &Self::Row, i: usize) -> Result<Option<String>, sqlx::Error> {
            sqlx::Row::try_get(row, i)
        }

        fn flag(row: &Self::Row, i: usize) -> Result<bool, sqlx::Error> {
            sqlx::Row::try_get(row, i)
        }
    };
}

/// A statement as a driver's query, its values bound in order.
macro_rules! binder {
    ($db:ty) => {
        impl Binder for $db {
            fn bind(
                statement: Statement<'_>,
            ) -> sqlx::query::Query<'_, $db, <$db as Database>::Arguments> {
                let mut query = sqlx::query(Statement::sql(statement.text, <$db>::NUMBERED))
                    .persistent(statement.cached);
                for value in statement.args {
                    query = match value {
                        Val::Int(value) => query.bind(value),
                        Val::Small(value) => query.bind(value),
                        Val::Text(value) => query.bind(value),
                        Val::Flag(value) => query.bind(value),
                    };
                }
                query
            }
        }
    };
}

/// Binds a statement for one driver (see [`binder!`]).
trait Binder: Database {
    fn bind(statement: Statement<'_>) -> sqlx::query::Query<'_, Self, Self::Arguments>;
}

binder!(sqlx::Sqlite);
binder!(sqlx::MySql);
binder!(sqlx::Postgres);

impl Dialect for sqlx::Sqlite {
    // `(next_run_time IS NULL) = 0` is the listing index's first column: the due jobs are then
    // a range of it, read in order.
    const DUE: &'static str = "(next_run_time IS NULL) = 0 AND next_run_time <= ?";
    // The listing index holds an expression, which MIN() cannot use: its first row is the
    // earliest fire time.
    const NEXT_RUN_TIME: &'static str = "SELECT next_run_time FROM tickd_jobs \
        ORDER BY next_run_time IS NULL, next_run_time, id LIMIT 1";
    // One writer at a time: BEGIN IMMEDIATE takes the write lock up front, rows need no locks.
    const SKIP_LOCKED: &'static str = "";
    const FOR_UPDATE: &'static str = "";
    const BEGIN_CLAIM: &'static str = "BEGIN IMMEDIATE";
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const SHARED: bool = false;
    const GROUP_ADDS: bool = true;
    // Everything in the WAL goes into the database file and the WAL is cut to nothing, so a
    // stopped daemon leaves one file.
    const AT_CLOSE: Option<&'static str> = Some("PRAGMA wal_checkpoint(TRUNCATE)");

    plumbing!();
}

impl Dialect for sqlx::MySql {
    const UPSERT: Upsert = Upsert::OnDuplicateKey;
    // READ COMMITTED for the claim, as PostgreSQL's: InnoDB then locks only the rows it
    // takes, without gap locks, and the locking read sees each row's latest committed
    // version. (This sets the next transaction only, not the session.)
    const BEFORE_CLAIM: Option<&'static str> =
        Some("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");

    plumbing!();
}

impl Dialect for sqlx::Postgres {
    const NUMBERED: bool = true;
    // An ascending index puts NULLs last already.
    const LISTING_ORDER: &'static str = "next_run_time, id";
    // READ COMMITTED (PostgreSQL's default, said in case the server's default is stricter):
    // the locking read sees each row's latest committed version, and a row another claim
    // holds is skipped, not waited for and not a serialization failure.
    const BEGIN_CLAIM: &'static str = "BEGIN ISOLATION LEVEL READ COMMITTED";

    /// A script may well print NUL, which PostgreSQL refuses in `text`: it becomes U+FFFD (as
    /// undecodable output bytes do) rather than failing the run's record.
    fn text(text: &str) -> Cow<'_, str> {
        if text.contains('\0') {
            Cow::Owned(text.replace('\0', "\u{FFFD}"))
        } else {
            Cow::Borrowed(text)
        }
    }

    plumbing!();
}
