//! Shared test harness: a real tickd on 127.0.0.1:0 with a SQLite file and a workspace of
//! real Python scripts in a temporary folder, and a reqwest client (zero2prod's `TestApp`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod audit_checks;
pub mod browser;
pub mod daemon;
pub mod db;
pub mod run_listing_checks;
pub mod scheduling;
pub mod setup;
pub mod store_checks;
pub mod token_checks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tickd::app::App;
use tickd::clock::Clock;
use tickd::config::Config;
use tickd::scheduler::Scheduler;

/// A running daemon and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    pub scheduler: Scheduler,
    pub prefix: String,
    pub auth: Option<(String, String)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    _tmp: Option<TempDir>,
}

/// Scripts every test workspace has.
pub const SCRIPTS: [(&str, &str); 4] = [
    (
        "test.py",
        "import datetime\nprint(datetime.datetime.now())\n",
    ),
    (
        "fail.py",
        "import sys\nprint('bad', file=sys.stderr)\nsys.exit(3)\n",
    ),
    (
        "slow.py",
        "import time, sys\ntime.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 2)\n",
    ),
    (
        "echo.py",
        "import os, sys\nprint(os.environ.get('TICKD_JOB_ID'), sys.argv[1:], os.environ.get('TICKD_KWARGS'))\n",
    ),
];

/// A fresh folder with `workspace/` and its scripts.
pub fn project_dir() -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = tmp.path().join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    for (name, text) in SCRIPTS {
        std::fs::write(workspace.join(name), text).unwrap();
    }
    tmp
}

/// A config for a test daemon in `dir`: port 0, UTC, SQLite in the folder (given as
/// environment overrides, so `extra`, the file's TOML, may use any section).
pub fn config_in(dir: &Path, extra: &str) -> Config {
    config_on(dir, extra, "sqlite://tickd.db")
}

/// [`config_in`] on the store at `store_url`.
pub fn config_on(dir: &Path, extra: &str, store_url: &str) -> Config {
    let path = dir.join("config.toml");
    std::fs::write(&path, extra).unwrap();
    let env = [
        ("TICKD_SERVER__PORT", "0"),
        ("TICKD_SCHEDULER__TIMEZONE", "UTC"),
        ("TICKD_STORE__URL", store_url),
    ];
    Config::load(&path, env.map(|(k, v)| (k.to_owned(), v.to_owned()))).unwrap()
}

impl TestApp {
    /// Starts a daemon in a new temporary folder.
    pub async fn spawn(extra: &str) -> TestApp {
        let tmp = project_dir();
        let mut app = TestApp::spawn_in(tmp.path(), extra, None).await;
        app._tmp = Some(tmp);
        app
    }

    /// Starts a daemon in `dir` (kept by the caller, e.g. to restart on the same file),
    /// optionally on an injected clock.
    pub async fn spawn_in(dir: &Path, extra: &str, clock: Option<Arc<dyn Clock>>) -> TestApp {
        TestApp::spawn_on(dir, extra, clock, "sqlite://tickd.db").await
    }

    /// Starts a daemon in a new temporary folder on the store at `store_url` (a database
    /// server that several daemons share).
    pub async fn spawn_with_store(extra: &str, store_url: &str) -> TestApp {
        let tmp = project_dir();
        let mut app = TestApp::spawn_on(tmp.path(), extra, None, store_url).await;
        app._tmp = Some(tmp);
        app
    }

    /// [`TestApp::spawn_in`] on the store at `store_url`.
    pub async fn spawn_on(
        dir: &Path,
        extra: &str,
        clock: Option<Arc<dyn Clock>>,
        store_url: &str,
    ) -> TestApp {
        // Scripts run under the tickd binary's supervisor, not under this test program.
        tickd::executor::supervise_with(env!("CARGO_BIN_EXE_tickd"));
        let config = config_on(dir, extra, store_url);
        let prefix = config.api.prefix.clone();
        let auth = config.auth.users.first().and_then(|u| {
            u.password
                .clone()
                .filter(|_| config.auth.enabled)
                .map(|p| (u.username.clone(), p))
        });
        let app = match clock {
            Some(clock) => App::build_with_clock(config, clock).await.unwrap(),
            None => App::build(config).await.unwrap(),
        };
        let addr = app.local_addr();
        let scheduler = app.scheduler();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            app.run_until(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestApp {
            addr,
            client: reqwest::Client::new(),
            dir: dir.to_owned(),
            scheduler,
            prefix,
            auth,
            stop: Some(stop),
            served: Some(served),
            _tmp: None,
        }
    }

    /// Stops the daemon and waits until it has closed its store.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}{}", self.addr, self.prefix, path)
    }

    /// Sends a request under the prefix with the configured credentials; returns the status,
    /// the headers and the body parsed as JSON (`Value::Null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
        };
        (status, headers, json)
    }

    /// Sends `body` as it is (no Content-Type, no JSON encoding) under the prefix with the
    /// configured credentials; returns the status, the headers and the body's text, for what
    /// [`TestApp::call`] cannot show: bodies that are not JSON, and `null` told from nothing.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: &'static str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut request = self.client.request(method, self.url(path)).body(body);
        if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::GET, path, None).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::POST, path, Some(body)).await;
        (s, v)
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::PATCH, path, Some(body)).await;
        (s, v)
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::DELETE, path, None).await;
        (s, v)
    }
}

/// `{"error_message": text}`.
pub fn err(text: &str) -> Value {
    serde_json::json!({ "error_message": text })
}
