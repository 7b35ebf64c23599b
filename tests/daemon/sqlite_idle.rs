//! An idle daemon on its own SQLite file writes nothing to it, and a clean exit leaves only
//! the database file (issue 12, item 8): no heartbeats where no other daemon reads them, the
//! WAL checkpointed and gone, the lock file removed.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::daemon::{call, free_port, start, stop, write_config};
use common::{TestApp, project_dir};
use reqwest::StatusCode;
use serde_json::json;

/// The WAL's bytes (empty when there is none): equal bytes mean nothing was written, not
/// even over frames already there after a checkpoint.
fn wal(db: &Path) -> Vec<u8> {
    let mut path = db.as_os_str().to_owned();
    path.push("-wal");
    std::fs::read(path).unwrap_or_default()
}

#[tokio::test]
async fn an_idle_daemon_does_not_write_to_its_sqlite_file() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start(dir.path(), port).await;
    let db = dir.path().join("sqlite.db");
    // Start-up writes (migrations, the boot heartbeat) are done before the port answers;
    // a second lets anything queued behind them land too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = wal(&db);
    // More than two periods of the heartbeat that used to be written every 2 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = wal(&db);
    assert_eq!(
        before.len(),
        after.len(),
        "the WAL grew from {} to {} bytes with no jobs",
        before.len(),
        after.len()
    );
    assert!(before == after, "the WAL was written with no jobs");

    // The daemon answering is alive: GET P/cluster lists it, beating now.
    let (status, nodes) = call(port, reqwest::Method::GET, "/cluster", None).await;
    assert_eq!(status, 200);
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
    assert_eq!(nodes[0]["pid"], daemon.id());
    let beat =
        chrono::DateTime::parse_from_rfc3339(nodes[0]["last_heartbeat"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now() - beat.to_utc();
    assert!(
        age < chrono::TimeDelta::seconds(2),
        "last heartbeat {age} ago"
    );
    assert_eq!(wal(&db), after, "answering GET P/cluster writes nothing");

    stop(&mut daemon);
}

#[tokio::test]
async fn a_clean_exit_leaves_no_lock_file_and_no_wal_and_a_restart_works() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start(dir.path(), port).await;
    let (status, _) = call(
        port,
        reqwest::Method::POST,
        "/jobs",
        Some(json!({"id": "kept", "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1})),
    )
    .await;
    assert_eq!(status, 200);
    let lock = dir.path().join("sqlite.db.lock");
    assert!(lock.exists(), "held while the daemon runs");
    stop(&mut daemon);
    assert!(!lock.exists(), "the lock file goes at a clean exit");
    assert!(
        wal(&dir.path().join("sqlite.db")).is_empty(),
        "the WAL is checkpointed and empty or gone"
    );

    let mut daemon = start(dir.path(), port).await;
    assert!(lock.exists(), "taken again by the restarted daemon");
    let (status, job) = call(port, reqwest::Method::GET, "/jobs/kept", None).await;
    assert_eq!((status, job["id"].clone()), (200, json!("kept")));
    stop(&mut daemon);
    assert!(!lock.exists());
}

/// The scheduler's periodic work on an idle store — a due-jobs pass with nothing due, the
/// retention sweep with nothing to remove — reads and writes nothing.
#[tokio::test]
async fn passes_and_sweeps_with_nothing_to_do_write_nothing() {
    let app = TestApp::spawn("").await;
    let (status, _) = app
        .post(
            "/jobs",
            json!({"id": "later", "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, run) = app.post("/jobs/later/run?wait=true", json!(null)).await;
    assert_eq!(
        (status, run["status"].clone()),
        (StatusCode::OK, json!("succeeded"))
    );
    // The audit log's records of those two changes are written off the request path: they
    // are in before the WAL is read.
    for _ in 0..200 {
        let (_, records) = app.get("/audit").await;
        if records.as_array().map_or(0, Vec::len) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let db = app.dir.join("tickd.db");
    let before = wal(&db);
    assert!(!before.is_empty(), "the writes above went to the WAL");
    let now = app.scheduler.now();
    assert_eq!(app.scheduler.prune_runs(now).await.unwrap(), 0);
    app.scheduler.tick(now).await.unwrap();
    assert!(
        wal(&db) == before,
        "an empty pass or sweep wrote to the WAL"
    );
    app.stop().await;
}
