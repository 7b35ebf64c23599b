//! A scheduler for the crate's own tests: real parts (a SQLite file, the executor) in a
//! temporary folder.

use std::sync::Arc;
use std::time::Duration;

use super::{Scheduler, SchedulerSettings};
use crate::clock::SystemClock;
use crate::executor::{Executor, ExecutorSettings};
use crate::job::JobDefaults;

/// A stopped scheduler over a SQLite file in a temporary folder, which is also the
/// workspace; the folder lives as long as the returned guard.
pub(crate) async fn scheduler() -> (Scheduler, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tickd.db").display());
    let store = crate::store::open(&url).await.unwrap();
    let executor = Executor::new(ExecutorSettings {
        workspace: dir.path().to_owned(),
        python: "python3".into(),
        interpreters: Default::default(),
        max_workers: 1,
        output_limit: 1024,
        kill_grace: Duration::from_secs(1),
        nice: 0,
        pass_env: vec!["PATH".to_owned()],
        python_mode: crate::executor::PythonMode::Exec,
        preload: Vec::new(),
    })
    .unwrap();
    let settings = SchedulerSettings {
        timezone: chrono_tz::UTC,
        job_defaults: JobDefaults::default(),
        node: "test-node".to_owned(),
        default_timeout: None,
        history: Default::default(),
        shadow: false,
    };
    let scheduler = Scheduler::new(
        store,
        executor,
        Arc::new(SystemClock),
        settings,
        crate::api::view::render,
    );
    (scheduler, dir)
}
