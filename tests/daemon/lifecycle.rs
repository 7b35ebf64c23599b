//! The `tickd` binary itself: start-up from a config file, refusals with a clear message,
//! graceful SIGTERM, and a `kill -9` mid-run found `interrupted` after the restart.

use crate::common;

use std::time::Duration;

use common::daemon::{
    answering, call, free_port, kill_scripts_under, start, stop, tickd, wait_exit, write_config,
};
use common::project_dir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

#[tokio::test]
async fn sigterm_stops_the_daemon_cleanly_and_jobs_persist() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut child = start(dir.path(), port).await;
    let (status, _) = call(
        port,
        reqwest::Method::POST,
        "/jobs",
        Some(json!({"id": "job13", "func": "task:success", "args": ["workspace/test.py"], "trigger": "interval", "seconds": 10})),
    )
    .await;
    assert_eq!(status, 200);
    stop(&mut child);
    assert!(
        dir.path().join("logs/runserver.log").exists(),
        "the log file is written"
    );
    let log = std::fs::read_to_string(dir.path().join("logs/runserver.log")).unwrap();
    assert!(
        log.contains("Added job \"job13\" to job store \"default\""),
        "{log}"
    );

    let mut child = start(dir.path(), port).await;
    let (status, job) = call(port, reqwest::Method::GET, "/jobs/job13", None).await;
    assert_eq!((status, job["seconds"].clone()), (200, json!(10)));
    stop(&mut child);
}

/// Off a terminal (here a file; under systemd, the journal) each line is written once, in
/// the same words, to stdout and to the log file, without colour codes, and nothing logged
/// before SIGTERM is lost.
#[tokio::test]
async fn log_lines_reach_stdout_and_the_file_alike() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let stdout_path = dir.path().join("stdout.log");
    let mut child = tickd(dir.path())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut added = 0;
    for attempt in 0..200 {
        let answer = client
            .post(format!("http://127.0.0.1:{port}/scheduler/jobs"))
            .basic_auth("guest", Some("guest"))
            .json(&json!({"id": format!("logged{attempt}"), "func": "task:success", "args": ["workspace/test.py"], "trigger": "interval", "hours": 1}))
            .send()
            .await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            added = attempt;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(&mut child);
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let file = std::fs::read_to_string(dir.path().join("logs/runserver.log")).unwrap();
    let line = format!("Added job \"logged{added}\" to job store \"default\"");
    assert!(stdout.contains(&line), "{stdout}");
    assert!(file.contains(&line), "{file}");
    assert!(
        !stdout.contains('\u{1b}'),
        "colour codes off a terminal: {stdout}"
    );
    assert_eq!(stdout, file, "the same lines in both");
}

#[tokio::test]
async fn a_run_cut_by_kill_9_is_interrupted_after_restart() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut child = start(dir.path(), port).await;
    call(
        port,
        reqwest::Method::POST,
        "/jobs",
        Some(json!({"id": "slow", "func": "task:success", "args": ["slow.py", "1000"], "trigger": "interval", "hours": 1})),
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/scheduler/jobs/slow/run"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let run_id = location.rsplit('/').next().unwrap().to_owned();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let mut child = start(dir.path(), port).await;
    let (status, run) = call(port, reqwest::Method::GET, &format!("/runs/{run_id}"), None).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "interrupted");
    assert!(
        run["reason"].as_str().unwrap().contains("start-up"),
        "{run}"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    wait_exit(&mut child);
    kill_scripts_under(dir.path());
}

#[tokio::test]
async fn a_second_daemon_on_the_same_sqlite_file_refuses_to_start() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut first = start(dir.path(), port).await;
    let output = tickd(dir.path())
        .env("TICKD_SERVER__PORT", free_port().to_string())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another tickd is already using"),
        "{stderr}"
    );
    let (status, nodes) = call(port, reqwest::Method::GET, "/cluster", None).await;
    assert_eq!(status, 200);
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
    assert_eq!(nodes[0]["pid"], first.id());
    stop(&mut first);
}

/// Under systemd with stdout connected to the journal (`JOURNAL_STREAM` names it), lines go to
/// the journal alone, without the time the journal adds itself; `logging.file_under_systemd`
/// writes the file as well.
#[tokio::test]
async fn under_the_journal_lines_are_written_once_unless_configured() {
    use std::os::unix::fs::MetadataExt;

    for file_too in [false, true] {
        let dir = project_dir();
        let port = free_port();
        write_config(
            dir.path(),
            port,
            &format!("[logging]\nfile_under_systemd = {file_too}\n"),
        );
        // The stand-in for the journal's stream: a file whose device and inode JOURNAL_STREAM
        // names, as systemd names the socket it connects.
        let journal_path = dir.path().join("journal");
        let journal = std::fs::File::create(&journal_path).unwrap();
        let meta = journal.metadata().unwrap();
        let mut child = tickd(dir.path())
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
            .stdout(journal)
            .spawn()
            .unwrap();
        assert!(answering(port).await.is_some());
        stop(&mut child);
        let journal = std::fs::read_to_string(&journal_path).unwrap();
        assert!(journal.contains("Scheduler started"), "{journal}");
        assert!(
            journal.lines().all(|line| !line.starts_with("20")),
            "no timestamps in the journal: {journal}"
        );
        let file = std::fs::read_to_string(dir.path().join("logs/runserver.log"));
        if file_too {
            assert!(file.unwrap().contains("Scheduler started"));
        } else {
            assert!(file.is_err(), "no log file: {file:?}");
        }
    }
}

/// `tickd passwd` prints the argon2 hash of the line on its standard input, and nothing
/// else, so its output can be pasted into `password_hash`; the hash verifies the password as
/// the daemon checks it (`Secret::matches`). An empty password is refused.
#[test]
fn passwd_prints_a_hash_the_daemon_accepts() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let hash_of = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tickd"))
            .arg("passwd")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let output = hash_of("correct horse: battery\r\n");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let hash = stdout.trim_end_matches('\n');
    assert!(hash.starts_with("$argon2id$"), "{stdout:?}");
    assert!(!hash.contains('\n'), "one line: {stdout:?}");
    let secret = tickd::api::Secret::Argon2(hash.to_owned());
    assert!(secret.matches("correct horse: battery"));
    assert!(!secret.matches("correct horse: battery\r"));
    assert_ne!(
        hash_of("x\n").stdout,
        hash_of("x\n").stdout,
        "a fresh salt each time"
    );

    let empty = hash_of("\n");
    assert!(!empty.status.success());
    assert!(empty.stdout.is_empty());
    let said = String::from_utf8(empty.stderr).unwrap();
    assert!(said.contains("the password is empty"), "{said}");
}
