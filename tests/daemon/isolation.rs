//! What a script can reach of the daemon that started it, with the real binary (issue 13):
//! its environment (item 4) and its life after a `kill -9` (item 9).

use crate::common;

use std::path::Path;
use std::process::Child;

use common::daemon::{answering, call, free_port, tickd, wait_exit, write_config};
use common::project_dir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// Starts the binary in `dir` with `env` added to this process's environment.
async fn start_with(dir: &Path, port: u16, env: &[(&str, &str)]) -> Child {
    let mut child = tickd(dir).envs(env.iter().copied()).spawn().unwrap();
    if answering(port).await.is_some_and(|s| s.is_success()) {
        return child;
    }
    let _ = child.kill();
    panic!(
        "tickd did not answer: {:?}",
        child.wait_with_output().unwrap()
    );
}

fn stop(mut child: Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    wait_exit(&mut child);
}

/// Adds `script` as a job and runs it now, answering the finished run record.
async fn run_now(port: u16, script: &str) -> Value {
    let job = json!({"id": "probe", "func": "task:run_script", "args": [script],
                     "trigger": "interval", "hours": 1});
    let (status, body) = call(port, reqwest::Method::POST, "/jobs", Some(job)).await;
    assert_eq!(status, 200, "{body}");
    let (status, run) = call(
        port,
        reqwest::Method::POST,
        "/jobs/probe/run?wait=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{run}");
    run
}

#[tokio::test]
async fn a_script_gets_the_listed_variables_and_none_of_the_daemon_s_secrets() {
    let dir = project_dir();
    // sh, not Python: a pyenv shim for python3 would add variables of its own.
    std::fs::write(dir.path().join("workspace/env.sh"), "exec env\n").unwrap();
    let port = free_port();
    write_config(
        dir.path(),
        port,
        "[executor]\ninterpreters = { sh = \"/bin/sh\" }\n",
    );
    let daemon = start_with(
        dir.path(),
        port,
        &[
            ("TICKD_STORE__URL", "sqlite://tickd.db"),
            ("TICKD_LOGGING__LEVEL", "info"),
            ("SERVICE_API_TOKEN", "hunter2"),
            ("LC_TICKD_PROBE", "kept"),
            ("TZ", "Asia/Shanghai"),
            ("PYTHONPATH", "/opt/probe"),
        ],
    )
    .await;
    let run = run_now(port, "env.sh").await;
    stop(daemon);

    assert_eq!(run["status"], "succeeded", "{run}");
    let seen: serde_json::Map<String, Value> = run["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), json!(value)))
        .collect();
    for absent in [
        "TICKD_STORE__URL",
        "TICKD_LOGGING__LEVEL",
        "SERVICE_API_TOKEN",
    ] {
        assert!(
            !seen.contains_key(absent),
            "{absent} reached the script: {seen:?}"
        );
    }
    for (name, value) in [
        ("LC_TICKD_PROBE", "kept"),
        ("TZ", "Asia/Shanghai"),
        ("PYTHONPATH", "/opt/probe"),
        ("TICKD_JOB_ID", "probe"),
        ("TICKD_KWARGS", "{}"),
        ("TICKD_SCHEDULED_AT", ""),
    ] {
        assert_eq!(seen.get(name), Some(&json!(value)), "{name} in {seen:?}");
    }
    assert_eq!(seen.get("TICKD_RUN_ID"), Some(&run["id"]));
    let script = dir.path().join("workspace/env.sh").canonicalize().unwrap();
    assert_eq!(seen.get("TICKD_SCRIPT"), Some(&json!(script)));
    assert_eq!(
        seen.get("PATH").and_then(Value::as_str),
        std::env::var("PATH").ok().as_deref()
    );
    // Nothing else of this process's environment: what pass_env names by default, and the
    // run's own variables.
    let expected = [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "TICKD_JOB_ID",
        "TICKD_RUN_ID",
        "TICKD_SCHEDULED_AT",
        "TICKD_KWARGS",
        "TICKD_SCRIPT",
        // What sh sets itself.
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
    ];
    for name in seen.keys() {
        assert!(
            expected.contains(&name.as_str()) || name.starts_with("LC_"),
            "{name} reached the script"
        );
    }
}

/// True while `pid` runs: its /proc entry exists and it is not a zombie (which nobody may reap
/// in a container whose PID 1 does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}

#[tokio::test]
async fn scripts_and_their_children_die_with_a_daemon_killed_by_sigkill() {
    let dir = project_dir();
    std::fs::write(
        dir.path().join("workspace/long.py"),
        "import os, subprocess, time\n\
         child = subprocess.Popen(['sleep', '1000'])\n\
         with open('pids.tmp', 'w') as f: f.write(f'{os.getpid()} {child.pid}')\n\
         os.rename('pids.tmp', 'pids')\n\
         time.sleep(1000)\n",
    )
    .unwrap();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start_with(dir.path(), port, &[]).await;
    let job = json!({"id": "long", "func": "task:run_script", "args": ["long.py"],
                     "trigger": "interval", "hours": 1});
    let (status, body) = call(port, reqwest::Method::POST, "/jobs", Some(job)).await;
    assert_eq!(status, 200, "{body}");
    let (status, run) = call(port, reqwest::Method::POST, "/jobs/long/run", None).await;
    assert_eq!(status, 200, "{run}");
    let pids_file = dir.path().join("workspace/pids");
    let pids = within_seconds(10, || std::fs::read_to_string(&pids_file).ok()).await;
    let pids: Vec<u32> = pids.split(' ').map(|p| p.parse().unwrap()).collect();
    let _cleanup = KillOnDrop(pids.clone());
    assert!(pids.iter().all(|&pid| alive(pid)), "{pids:?} should run");

    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    let gone = within_seconds(5, || pids.iter().all(|&pid| !alive(pid)).then_some(())).await;
    assert_eq!(gone, ());
}

/// Kills what is left of these processes when the test ends, passed or failed.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// Polls `probe` every 20 ms until it answers, failing the test after `seconds`.
async fn within_seconds<T>(seconds: u64, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {seconds} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
