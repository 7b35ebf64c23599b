//! Fresh databases on the test servers: each test that needs MariaDB or PostgreSQL gets its
//! own, named by a UUID, and drops it at the end; one that needs Redis gets a key prefix of its
//! own ([`Space`]) and deletes its keys at the end — also when the test fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;

use redis::Commands;
use sqlx::{AssertSqlSafe, Connection};

/// The database servers the suite can use, and how to reach their own tables directly.
#[derive(Debug, Clone, Copy)]
pub enum Server {
    /// MariaDB or MySQL (`TICKD_TEST_MYSQL_URL`).
    MySql,
    /// PostgreSQL (`TICKD_TEST_POSTGRES_URL`).
    Postgres,
}

impl Server {
    pub fn env(self) -> &'static str {
        match self {
            Server::MySql => "TICKD_TEST_MYSQL_URL",
            Server::Postgres => "TICKD_TEST_POSTGRES_URL",
        }
    }

    pub async fn execute(self, server_url: &str, sql: String) {
        match self {
            Server::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(server_url).await.unwrap();
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
            Server::Postgres => {
                let mut conn = sqlx::PgConnection::connect(server_url).await.unwrap();
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// Runs `body` with the URL of a new, empty database on the server the environment names,
/// then drops the database, whether `body` passed or panicked. The calling test is ignored
/// unless the build saw the variable (see build.rs); missing at run time, it fails.
pub async fn in_fresh_database<F, Fut>(server: Server, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server_url = super::setup::required(server.env());
    // Generated here: safe to splice into the statements below.
    let name = format!("tickd_test_{}", uuid::Uuid::now_v7().simple());
    server
        .execute(&server_url, format!("CREATE DATABASE {name}"))
        .await;
    let outcome = tokio::spawn(body(with_database(&server_url, &name))).await;
    let drop = match server {
        Server::MySql => format!("DROP DATABASE IF EXISTS {name}"),
        // FORCE: a failed check may leave a pool's connections behind.
        Server::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    };
    server.execute(&server_url, drop).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `url` with its database (the path) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A random key prefix on a Redis server, and the deletion of its keys when dropped (a failed
/// test unwinds through the drop too).
pub struct Space {
    pub server: String,
    pub prefix: String,
}

impl Space {
    /// A prefix on the server `TICKD_TEST_REDIS_URL` names (the calling test is ignored unless
    /// the build saw it).
    pub fn fresh() -> Space {
        Space::on(&super::setup::required("TICKD_TEST_REDIS_URL"))
    }

    /// A prefix on `server`.
    pub fn on(server: &str) -> Space {
        Space {
            server: server.to_owned(),
            prefix: format!("tickd-test-{}:", uuid::Uuid::now_v7().simple()),
        }
    }

    /// The store URL for this prefix, with extra query parameters (`&name=value`).
    pub fn url(&self, extra: &str) -> String {
        let sep = if self.server.contains('?') { '&' } else { '?' };
        format!("{}{sep}prefix={}{extra}", self.server, self.prefix)
    }

    /// A plain (blocking) connection for looking behind the store's back.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.server.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A key under this prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Every key under the prefix, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut con = self.raw();
        let mut keys: Vec<String> = con
            .scan_match::<_, String>(format!("{}*", self.prefix))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        let keys = self.keys();
        if !keys.is_empty() {
            let _: () = self.raw().del(keys).unwrap();
        }
    }
}
