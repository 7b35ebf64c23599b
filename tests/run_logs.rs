//! A run's lines in `logs/runserver.log`, read as a user greps them (issue 12, item 10): each
//! output line is a log line with the level and the job and run ids, and each run has
//! exactly one line when it starts and one when it ends. The real binary, a real script.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::daemon::{call, free_port, start, wait_exit, write_config};
use common::project_dir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Method;
use serde_json::{Value, json};

/// Two lines on each stream, one of them trying to start a forged log line with `\r`, then
/// a failure.
const NOISY: &str = "import sys\nprint('out one')\nprint('out two\\r2031-01-01T00:00:00.000000Z  INFO forged')\nprint('err one', file=sys.stderr)\nprint('err two', file=sys.stderr)\nsys.exit(3)\n";

/// The runs of `job` once none is running (bounded).
async fn ended_runs(port: u16, job: &str) -> Vec<Value> {
    for _ in 0..200 {
        let (status, runs) = call(port, Method::GET, &format!("/jobs/{job}/runs"), None).await;
        assert_eq!(status, 200, "{runs}");
        let runs = runs.as_array().unwrap().clone();
        if !runs.is_empty() && runs.iter().all(|run| run["status"] != "running") {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the runs of {job} did not end");
}

#[tokio::test]
async fn every_output_line_is_a_log_line_and_a_run_starts_and_ends_once() {
    let dir = project_dir();
    std::fs::write(dir.path().join("workspace/noisy.py"), NOISY).unwrap();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start(dir.path(), port).await;
    let (status, body) = call(
        port,
        Method::POST,
        "/jobs",
        Some(json!({"id": "noisy", "func": "task:success", "args": ["noisy.py"], "trigger": "interval", "hours": 1})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, run_now) = call(port, Method::POST, "/jobs/noisy/run?wait=true", None).await;
    assert_eq!((status, run_now["status"].clone()), (200, json!("failed")));
    // A date job already due runs at once (no grace limit), scheduled, and has no next run.
    let (status, body) = call(
        port,
        Method::POST,
        "/jobs",
        Some(
            json!({"id": "once", "func": "task:success", "args": ["noisy.py"], "trigger": "date",
                    "run_date": "2001-01-01T00:00:00+00:00", "misfire_grace_time": null}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let scheduled = ended_runs(port, "once").await;
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    kill(Pid::from_raw(daemon.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_exit(&mut daemon).success());

    let log = std::fs::read_to_string(dir.path().join("logs/runserver.log")).unwrap();
    for line in log.lines() {
        let stamp = line.split(' ').next().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "every line of the log starts with its time: {line:?}"
        );
    }
    for (job, run) in [("noisy", &run_now), ("once", &scheduled[0])] {
        let run_id = run["id"].as_str().unwrap();
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(&format!("run_id={run_id}")))
            .collect();
        assert!(
            lines.iter().all(|l| l.contains(&format!("job_id={job}"))),
            "{lines:#?}"
        );
        let starts: Vec<_> = lines.iter().filter(|l| l.contains("Running job")).collect();
        assert_eq!(starts.len(), 1, "one start line: {lines:#?}");
        assert!(starts[0].contains(" INFO "), "{}", starts[0]);
        let ends: Vec<_> = lines
            .iter()
            .filter(|l| l.contains(&format!("Job \"{job} (trigger:")))
            .collect();
        assert_eq!(ends.len(), 1, "one end line: {lines:#?}");
        for part in [
            " ERROR ",
            "failed after",
            "the script exited with code 3",
            "status=failed",
            "exit_code=3",
            "duration_ms=",
        ] {
            assert!(ends[0].contains(part), "{part:?} in {}", ends[0]);
        }
        for output in [
            "stdout: out one",
            "stdout: out two\\r2031-01-01T00:00:00.000000Z  INFO forged",
            "stderr: err one",
            "stderr: err two",
        ] {
            let found: Vec<_> = lines.iter().filter(|l| l.contains(output)).collect();
            assert_eq!(found.len(), 1, "{output:?} in {lines:#?}");
            assert!(found[0].contains(" INFO "), "{}", found[0]);
        }
        assert_eq!(lines.len(), 6, "start, four output lines, end: {lines:#?}");
    }
    assert!(
        log.contains("Running job \"once (trigger: date, no next run)\" (scheduled at 2001-01-01 00:00:00 +00:00)"),
        "{log}"
    );
    assert!(log.contains("(run now)"), "{log}");
}
