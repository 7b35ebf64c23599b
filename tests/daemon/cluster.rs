//! Several daemons on one MariaDB or PostgreSQL database fire each (job, fire time) exactly
//! once, also when one of them is killed with SIGKILL half-way (issue 5). Three real `tickd`
//! binaries, a database of their own (dropped at the end), real scripts. Runs when
//! `TICKD_TEST_MYSQL_URL` / `TICKD_TEST_POSTGRES_URL` name a server; ignored otherwise.

use crate::common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::db::{Server, in_fresh_database};
use common::project_dir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tickd::job::RunStatus;

const DAEMONS: usize = 3;
const JOBS: usize = 20;
/// How long the jobs fire; one daemon is killed half-way.
const WINDOW: Duration = Duration::from_secs(30);

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    Command::new(env!("CARGO_BIN_EXE_tickd"))
        .arg("--config")
        .arg(home.join("config.toml"))
        .env("TICKD_STORE__URL", store_url)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.join("stderr.log")).unwrap())
        .spawn()
        .unwrap()
}

async fn wait_ready(port: u16, dir: &Path, name: &str) {
    for _ in 0..300 {
        let answer = reqwest::get(format!("http://127.0.0.1:{port}/scheduler")).await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the daemon on port {port} did not answer: {}",
        stderr_of(dir, name)
    );
}

/// What a daemon printed, for a failure message.
fn stderr_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name).join("stderr.log")).unwrap_or_default()
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
    stop(&mut daemons.0[1], Signal::SIGKILL);
    tokio::time::sleep(WINDOW / 2).await;
    for j in 0..JOBS {
        let paused = client
            .post(format!(
                "http://127.0.0.1:{}/scheduler/jobs/job{j:02}/pause",
                ports[0]
            ))
            .send()
            .await
            .unwrap();
        assert!(paused.status().is_success());
    }
    // Survivors finish their runs and mark the killed daemon's as interrupted once its
    // heartbeat is older than the timeout (10 s); the kill was half a window ago.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop(&mut daemons.0[0], Signal::SIGTERM);
    stop(&mut daemons.0[2], Signal::SIGTERM);

    let store = tickd::store::open(&db_url).await.unwrap();
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
            seconds.len() >= 25,
            "job{j:02} fired {} times in 30 s",
            seconds.len()
        );
    }
    store.close().await;
    println!("run statuses: {statuses:?}");
    let killed_runs = statuses.get("interrupted").copied().unwrap_or(0);
    println!("interrupted by the kill: {killed_runs}");
}
