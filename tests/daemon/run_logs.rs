//! A run's lines in `logs/runserver.log`, read as a user greps them (issue 12, item 10): each
//! output line is a log line with the level and the job and run ids, and each run has
//! exactly one line when it starts and one when it ends. The real binary, a real script.

use crate::common;

use std::time::Duration;

use common::daemon::{call, free_port, start, stop, write_config};
use common::project_dir;
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
    stop(&mut daemon);

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

/// `text` with every byte but ASCII letters and digits percent-encoded, for a path segment.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The attack (issue 13, item 8): a newline in a job id and a 900 KB name tried to
/// split and flood the log. Each event stays one line starting with its time, the add's
/// line is bounded, and no control character reaches the file.
#[tokio::test]
async fn ids_and_names_cannot_forge_or_flood_the_log() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start(dir.path(), port).await;
    let id = "evil\n2031-01-01T00:00:00.000000Z  INFO forged\r\u{1b}[2J";
    let name = format!("huge\n{}\u{85}", "n".repeat(900_000));
    let (status, body) = call(
        port,
        Method::POST,
        "/jobs",
        Some(
            json!({"id": id, "name": name, "func": "task:success", "args": ["echo.py"],
                    "trigger": "interval", "hours": 1}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["id"], id,
        "the id is kept as given (APScheduler takes any text)"
    );
    let path = format!("/jobs/{}", encoded(id));
    let (status, run) = call(port, Method::POST, &format!("{path}/run?wait=true"), None).await;
    assert_eq!(
        (status, &run["status"]),
        (200, &json!("succeeded")),
        "{run}"
    );
    assert!(
        run["stdout"].as_str().unwrap().starts_with("evil\n2031"),
        "{run}"
    );
    let (status, _) = call(port, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    stop(&mut daemon);

    let log = std::fs::read(dir.path().join("logs/runserver.log")).unwrap();
    assert!(
        !log.iter().any(|&b| b < b' ' && b != b'\n' && b != b'\t'),
        "no control character in the file"
    );
    let log = String::from_utf8(log).unwrap();
    assert!(log.len() < 16 * 1024, "{} bytes of log", log.len());
    for line in log.lines() {
        let stamp = line.split(' ').next().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "a line that does not start with its time was forged: {line:?}"
        );
        assert!(!line.contains('\u{85}'), "{line:?}");
    }
    let added: Vec<&str> = log.lines().filter(|l| l.contains("Added job")).collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(
        added[0].ends_with(&format!(
            "Added job \"huge\\n{}… [899807 more bytes]\" to job store \"default\"",
            "n".repeat(195)
        )),
        "{}",
        added[0]
    );
    let shown_id = "evil\\n2031-01-01T00:00:00.000000Z  INFO forged\\r\\u{1b}[2J";
    for what in ["Running job", "executed successfully", "stdout: evil"] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(what)).collect();
        assert_eq!(lines.len(), 1, "{what}: {lines:?}");
        assert!(
            lines[0].contains(&format!("job_id={shown_id}")),
            "{}",
            lines[0]
        );
        assert!(lines[0].len() < 1024, "{}", lines[0]);
    }
    assert!(log.contains(&format!("Removed job {shown_id}")), "{log}");
}
