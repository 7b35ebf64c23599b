//! Several daemons on one MariaDB or PostgreSQL database fire each (job, fire time) exactly
//! once, also when one of them is killed with SIGKILL half-way (issue 5). Three real `tickd`
//! binaries, a database of their own (dropped at the end), real scripts. Runs when
//! `TICKD_TEST_MYSQL_URL` / `TICKD_TEST_POSTGRES_URL` name a server; ignored otherwise.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::daemon::free_port;
use common::db::{Server, in_fresh_database};
use common::project_dir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tickd::job::{RunRecord, RunStatus};
use tickd::store::Store;

const DAEMONS: usize = 3;
const JOBS: usize = 20;
/// How long the jobs fire; one daemon is killed half-way.
const WINDOW: Duration = Duration::from_secs(30);
/// How long the test waits for what the daemons must do (start, fire past the kill, end or
/// interrupt every run) before it says they did not. Each wait ends as soon as it is done;
/// the bound only matters on a machine so loaded that the daemons fall seconds behind (CI
/// runs a browser beside this test). With fixed sleeps instead, the test failed once in CI.
const PATIENCE: Duration = Duration::from_secs(90);

#[tokio::test]
#[cfg_attr(not(tickd_test_mysql), ignore = "needs TICKD_TEST_MYSQL_URL")]
async fn three_daemons_on_mariadb_fire_each_second_once() {
    in_fresh_database(Server::MySql, exactly_once).await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn three_daemons_on_postgres_fire_each_second_once() {
    in_fresh_database(Server::Postgres, exactly_once).await;
}

fn spawn_daemon(dir: &Path, name: &str, port: u16, store_url: &str) -> Child {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[server]\nport = {port}\n[scheduler]\ntimezone = \"UTC\"\n[executor]\nworkspace = \"{}\"\n",
            dir.join("workspace").display()
        ),
    )
    .unwrap();
    // Its log lines (stdout) and anything else it prints, for a failure message.
    let output = std::fs::File::create(home.join("output.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tickd"))
        .arg("--config")
        .arg(home.join("config.toml"))
        .env("TICKD_STORE__URL", store_url)
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .unwrap()
}

async fn wait_ready(port: u16, dir: &Path, name: &str) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let answer = reqwest::get(format!("http://127.0.0.1:{port}/scheduler")).await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{name}'s last lines:\n{}\nthe daemon on port {port} did not answer",
        output_of(dir, name)
    );
}

/// The last lines a daemon printed, for a failure message.
fn output_of(dir: &Path, name: &str) -> String {
    let output = std::fs::read_to_string(dir.join(name).join("output.log")).unwrap_or_default();
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn stop(child: &mut Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    child.wait().unwrap();
}

/// The daemons of one test, killed when it ends however it ends (a failed assertion must not
/// leave daemons behind).
struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn exactly_once(db_url: String) {
    let dir = project_dir();
    let ports: Vec<u16> = (0..DAEMONS).map(|_| free_port()).collect();
    let mut daemons = Daemons(
        ports
            .iter()
            .enumerate()
            .map(|(i, port)| spawn_daemon(dir.path(), &format!("d{i}"), *port, &db_url))
            .collect(),
    );
    for (i, port) in ports.iter().enumerate() {
        wait_ready(*port, dir.path(), &format!("d{i}")).await;
    }
    let client = reqwest::Client::new();
    for j in 0..JOBS {
        let port = ports[j % DAEMONS];
        let answer = client
            .post(format!("http://127.0.0.1:{port}/scheduler/jobs"))
            .json(
                &json!({"id": format!("job{j:02}"), "func": "task:success", "args": ["test.py"],
                          "trigger": "cron", "second": "*"}),
            )
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_success(),
            "{}",
            answer.text().await.unwrap()
        );
    }
    tokio::time::sleep(WINDOW / 2).await;
    let killed_at = chrono::Utc::now().timestamp();
    stop(&mut daemons.0[1], Signal::SIGKILL);
    let store = tickd::store::open(&db_url).await.unwrap();
    // The survivors go on firing every job: until each has a record for a second half a
    // window after the kill.
    let wanted = killed_at + (WINDOW / 2).as_secs() as i64;
    wait_for(
        store.as_ref(),
        &dir,
        "every job to have a record half a window after the kill",
        |runs| {
            runs.iter().any(|run| {
                run.scheduled_run_time
                    .is_some_and(|at| at.timestamp() >= wanted)
            })
        },
    )
    .await;
    for j in 0..JOBS {
        let paused = client
            .post(format!(
                "http://127.0.0.1:{}/scheduler/jobs/job{j:02}/pause",
                ports[0]
            ))
            .send()
            .await
            .unwrap();
        let status = paused.status();
        assert!(
            status.is_success(),
            "pausing job{j:02}: {status} {}",
            paused.text().await.unwrap_or_default()
        );
    }
    // Survivors finish their runs and mark the killed daemon's as interrupted once its
    // heartbeat is older than the timeout (10 s).
    wait_for(store.as_ref(), &dir, "no run to be left running", |runs| {
        runs.iter().all(|run| run.status != RunStatus::Running)
    })
    .await;
    stop(&mut daemons.0[0], Signal::SIGTERM);
    stop(&mut daemons.0[2], Signal::SIGTERM);

    let mut statuses: BTreeMap<&'static str, usize> = BTreeMap::new();
    for j in 0..JOBS {
        let runs = store
            .get_runs(&format!("job{j:02}"), 500, None)
            .await
            .unwrap();
        let mut seconds: Vec<i64> = runs
            .iter()
            .map(|run| run.scheduled_run_time.unwrap().timestamp())
            .collect();
        for run in &runs {
            *statuses.entry(run.status.as_str()).or_default() += 1;
            assert_ne!(run.status, RunStatus::Running, "left running: {run:?}");
        }
        seconds.sort_unstable();
        let (first, last) = (seconds[0], seconds[seconds.len() - 1]);
        let mut unique = seconds.clone();
        unique.dedup();
        assert_eq!(
            unique.len(),
            seconds.len(),
            "job{j:02}: a second recorded twice"
        );
        assert_eq!(
            (last - first + 1) as usize,
            seconds.len(),
            "job{j:02}: a second between {first} and {last} has no record"
        );
        assert!(
            last >= wanted && seconds.len() >= 25,
            "job{j:02} fired {} times, the last at {last}, wanted {wanted}",
            seconds.len()
        );
    }
    store.close().await;
    println!("run statuses: {statuses:?}");
    let killed_runs = statuses.get("interrupted").copied().unwrap_or(0);
    println!("interrupted by the kill: {killed_runs}");
}

/// Waits until `done` holds for the run records of every job, polling the store, at most
/// [`PATIENCE`]; past it, fails naming what was waited for, with the survivors' last lines.
async fn wait_for(
    store: &dyn Store,
    dir: &tempfile::TempDir,
    what: &str,
    done: impl Fn(&[RunRecord]) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut all = true;
        for j in 0..JOBS {
            let runs = store
                .get_runs(&format!("job{j:02}"), 500, None)
                .await
                .unwrap();
            if !done(&runs) {
                all = false;
                break;
            }
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "d0's last lines:\n{}\nd2's last lines:\n{}\nwaited {PATIENCE:?} for {what}",
            output_of(dir.path(), "d0"),
            output_of(dir.path(), "d2")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
