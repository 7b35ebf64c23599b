//! A script that could not be started for a reason of the server's (issue 14, item 4): its
//! interpreter was there when the daemon started (it is checked then) and is gone by the run.
//! The client is not at fault, so run-now answers 500 with a generic text and no word of the
//! OS's; the run is recorded `failed` with a reason for its owner, and the log says why, in
//! full. A script whose own job is wrong stays a 400 (tests/daemon/runs.rs), and a script that ran
//! and exited 127 is a run like any other. The real binary, real interpreters.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use crate::common::daemon::{call, free_port, start, stop, write_config};
use crate::common::project_dir;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

/// What run-now answers when tickd could not start the script.
const CANNOT_START: &str = "The script could not be started; the server log says why";
/// The reason of a run whose interpreter was not found.
const NOT_FOUND: &str = "the script could not start: its interpreter was not found";

/// Where `program` is on this machine's `PATH`.
fn on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

/// An executable file at `path` holding `text`.
fn executable(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `POST /jobs/<job>/run<query>`: the status, the `Location` header and the body.
async fn run_now(port: u16, job: &str, query: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/scheduler/jobs/{job}/run{query}"
        ))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, location, body)
}

/// The record of `run_id` once it has ended (bounded).
async fn ended(port: u16, run_id: &str) -> Value {
    for _ in 0..200 {
        let (status, run) = call(port, Method::GET, &format!("/runs/{run_id}"), None).await;
        assert_eq!(status, 200, "{run}");
        if run["status"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {run_id} did not end");
}

/// Checks a run-now answer of a script tickd could not start: 500, the generic text and the
/// failed record's id, nothing of the cause; answers that id.
fn assert_server_fault(answer: &(u16, Option<String>, Value), secrets: &[&str]) -> String {
    let (status, location, body) = answer;
    assert_eq!(*status, 500, "{body}");
    let run_id = body["run_id"]
        .as_str()
        .expect("the answer names the run")
        .to_owned();
    assert_eq!(
        body,
        &json!({"error_message": CANNOT_START, "run_id": run_id})
    );
    assert_eq!(
        location.as_deref(),
        Some(format!("/scheduler/runs/{run_id}").as_str())
    );
    let text = body.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} in {text}");
    }
    run_id
}

/// A daemon started in a new project folder, its `[executor]` section written by `prepare`
/// (which may put files there first), with `jobs` added; the folder, the port and the process.
async fn daemon_with(
    prepare: impl FnOnce(&Path) -> String,
    jobs: &[Value],
) -> (TempDir, u16, Child) {
    let dir = project_dir();
    let port = free_port();
    let executor = prepare(dir.path());
    write_config(dir.path(), port, &format!("[executor]\n{executor}"));
    let daemon = start(dir.path(), port).await;
    for job in jobs {
        let (status, body) = call(port, Method::POST, "/jobs", Some(job.clone())).await;
        assert_eq!(status, 200, "{body}");
    }
    (dir, port, daemon)
}

/// A job `id` that runs `script` every hour.
fn hourly(id: &str, script: &str) -> Value {
    json!({"id": id, "func": "task:run_script", "args": [script], "trigger": "interval", "hours": 1})
}

/// `bin/python3` in `dir`, a link to this machine's python3: an interpreter that can vanish.
fn linked_python(dir: &Path) -> PathBuf {
    let python = dir.join("bin/python3");
    std::fs::create_dir_all(python.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(on_path("python3"), &python).unwrap();
    python
}

/// `python = "<path>"`, for the `[executor]` section.
fn python_setting(python: &Path) -> String {
    format!("python = {:?}\n", python.display().to_string())
}

/// Checks that the record of `run_id` ended `failed` because the interpreter was not found,
/// without running anything; answers it.
async fn assert_not_started(port: u16, run_id: &str) -> Value {
    let run = ended(port, run_id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["reason"], NOT_FOUND);
    assert_eq!(run["exit_code"], Value::Null, "it never ran: {run}");
    assert!(run["finished_at"].is_string(), "{run}");
    run
}

/// Run-now of `job`, without and with `?wait=true`: each a server fault whose answer names
/// none of `secrets` (nor any OS error), whose record ended without running anything.
/// Answers the two run ids.
async fn assert_hidden(port: u16, job: &str, secrets: &[&str]) -> Vec<String> {
    let secrets: Vec<&str> = secrets.iter().copied().chain(["os error"]).collect();
    let mut runs = Vec::new();
    for query in ["", "?wait=true"] {
        let run_id = assert_server_fault(&run_now(port, job, query).await, &secrets);
        let run = assert_not_started(port, &run_id).await;
        assert_eq!(run["cause"], "run_now");
        runs.push(run_id);
    }
    runs
}

/// Checks that the log of the daemon in `dir` has, for each of `runs`, one error line that
/// names the cause, with each of `parts` (the job, the program, the OS's words).
fn assert_cause_logged(dir: &Path, runs: &[String], parts: &[&str]) {
    let log = std::fs::read_to_string(dir.join("logs/runserver.log")).unwrap();
    for run_id in runs {
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(&format!("run_id={run_id}")))
            .collect();
        let cause: Vec<_> = lines
            .iter()
            .filter(|line| line.contains("could not start: its interpreter was not found ("))
            .collect();
        assert_eq!(cause.len(), 1, "one line names the cause: {lines:#?}");
        for part in [" ERROR "].iter().chain(parts) {
            assert!(cause[0].contains(part), "{part:?} in {}", cause[0]);
        }
    }
}

/// Two interpreters that were there when the daemon started and cannot be started by the
/// run: `python3`, a link to the real one removed once the daemon is up, which the daemon
/// finds gone; and `sh`, an executable whose own interpreter (its `#!` line) does not exist,
/// which the daemon finds but the supervisor's `exec` fails on (ENOENT) and tells the daemon.
/// With and without `?wait=true` the answer is the 500 without the path or the OS's words; the
/// record says what happened without them; the log has them and names job and run.
#[tokio::test]
async fn run_now_of_an_interpreter_that_cannot_start_is_a_500_that_names_no_os_detail() {
    let (dir, port, mut daemon) = daemon_with(
        |dir| {
            let broken = dir.join("bin/broken-sh");
            executable(&broken, "#!/nonexistent/tickd-test-shell\n");
            std::fs::write(dir.join("workspace/hello.sh"), "echo hello\n").unwrap();
            let python = python_setting(&linked_python(dir));
            format!("{python}interpreters = {{ sh = {broken:?} }}\n")
        },
        &[hourly("py", "test.py"), hourly("sh", "hello.sh")],
    )
    .await;
    let (python, broken) = (
        dir.path().join("bin/python3"),
        dir.path().join("bin/broken-sh"),
    );
    let (status, _, run) = run_now(port, "py", "?wait=true").await;
    let started = (status, &run["status"]);
    assert_eq!(started, (200, &json!("succeeded")), "{run}");

    std::fs::remove_file(&python).unwrap();
    let gone = "no longer on PATH or in the workspace";
    let python_runs = assert_hidden(port, "py", &[python.to_str().unwrap(), gone]).await;
    let no_such = "No such file or directory";
    let sh_runs = assert_hidden(port, "sh", &[broken.to_str().unwrap(), no_such]).await;
    stop(&mut daemon);
    let logged = [python.to_str().unwrap(), gone, "job_id=py"];
    assert_cause_logged(dir.path(), &python_runs, &logged);
    assert_cause_logged(
        dir.path(),
        &sh_runs,
        &[broken.to_str().unwrap(), no_such, "job_id=sh"],
    );
}

/// A scheduled fire whose interpreter is gone: the run is recorded `failed` with the reason,
/// and the log has the cause.
#[tokio::test]
async fn a_scheduled_run_of_a_vanished_interpreter_is_recorded_failed_and_logged() {
    let (dir, port, mut daemon) = daemon_with(|dir| python_setting(&linked_python(dir)), &[]).await;
    let python = dir.path().join("bin/python3");
    std::fs::remove_file(&python).unwrap();
    // Due in a moment.
    let soon = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let due = json!({"id": "due", "func": "task:run_script", "args": ["test.py"],
                     "trigger": "date", "run_date": soon.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()});
    let (status, body) = call(port, Method::POST, "/jobs", Some(due)).await;
    assert_eq!(status, 200, "{body}");
    let mut run_id = None;
    for _ in 0..200 {
        let (_, runs) = call(port, Method::GET, "/jobs/due/runs", None).await;
        run_id = runs[0]["id"].as_str().map(str::to_owned);
        if run_id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run_id = run_id.expect("the job fired");
    let run = assert_not_started(port, &run_id).await;
    assert_eq!(run["cause"], "schedule");
    stop(&mut daemon);
    assert_cause_logged(
        dir.path(),
        &[run_id],
        &["job_id=due", python.to_str().unwrap()],
    );
}

/// A script that ran and exited 127 (a shell's "command not found") is the script's own
/// failure, not tickd's: run-now answers as for any started run, and the record has the code.
#[tokio::test]
async fn a_script_that_exits_127_ran() {
    let (_dir, port, mut daemon) = daemon_with(
        |dir| {
            std::fs::write(
                dir.join("workspace/missing-command.sh"),
                "no-such-command-for-tickd\n",
            )
            .unwrap();
            "interpreters = { sh = \"/bin/sh\" }\n".to_owned()
        },
        &[hourly("sh", "missing-command.sh")],
    )
    .await;
    let (status, location, job) = run_now(port, "sh", "").await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["id"], "sh");
    let location = location.expect("the answer names the run");
    let run_id = location.strip_prefix("/scheduler/runs/").unwrap();
    assert!(!run_id.is_empty(), "{location}");
    let run = ended(port, run_id).await;
    assert_eq!(
        (&run["status"], &run["exit_code"]),
        (&json!("failed"), &json!(127))
    );
    let (status, _, run) = run_now(port, "sh", "?wait=true").await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 127);
    assert_eq!(run["reason"], "the script exited with code 127");
    let stderr = run["stderr"].as_str().unwrap();
    assert!(stderr.contains("no-such-command-for-tickd"), "{run}");
    stop(&mut daemon);
}
