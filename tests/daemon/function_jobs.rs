//! Function jobs (issue 18, item 1): `func = "module:callable"` with the module a file in the
//! workspace, called with the job's `args` and `kwargs` by real Python under the real
//! binary, over a bound port. What the call returns is the run's `result`; an exception fails
//! the run with the traceback; a reference to anything outside the workspace is a 400.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::daemon::{call, free_port, run_now_waiting, start, stop, write_config};
use crate::common::project_dir;

/// The module the jobs below call, in a package, as the original platform's
/// `App.tasks.DatabaseTask:send_ding_test`.
const TASKS: &str = r#"import json, os, sys

from .helpers import double

def send(to, times=1, *, loud=False):
    print("sending to", to, times, "times", "loudly" if loud else "quietly")
    print("a warning", file=sys.stderr)
    return {"to": to, "sent": double(times), "loud": loud, "name": __name__,
            "argv": sys.argv, "cwd": os.getcwd(), "run": os.environ.get("TICKD_RUN_ID", "")}

def fail():
    raise RuntimeError("the database is down")

def leave(code):
    sys.exit(code)

class Report:
    @staticmethod
    def weekly(n):
        return [n, n * 2]

class Opaque:
    def __repr__(self):
        return "<Opaque thing>"

def opaque():
    return Opaque()

def huge():
    return "x" * 200000

def nothing():
    pass
"#;

async fn add(port: u16, body: Value) -> (u16, Value) {
    call(port, Method::POST, "/jobs", Some(body)).await
}

/// Runs a job calling `func` with `args` and `kwargs` now, waiting: its run record.
async fn run(port: u16, id: &str, func: &str, args: Value, kwargs: Value) -> Value {
    run_now_waiting(port, id, func, args, json!({ "kwargs": kwargs })).await
}

#[tokio::test]
async fn functions_in_the_workspace_are_called_with_args_and_kwargs_and_their_value_kept() {
    let dir = project_dir();
    let package = dir.path().join("workspace/app/tasks");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(dir.path().join("workspace/app/__init__.py"), "").unwrap();
    std::fs::write(package.join("__init__.py"), "").unwrap();
    std::fs::write(
        package.join("helpers.py"),
        "def double(n):\n    return 2 * n\n",
    )
    .unwrap();
    std::fs::write(package.join("database.py"), TASKS).unwrap();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start(dir.path(), port).await;

    let record = run(
        port,
        "send",
        "app.tasks.database:send",
        json!(["ops"]),
        json!({"times": 3, "loud": true}),
    )
    .await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["exit_code"], 0);
    assert_eq!(record["stdout"], "sending to ops 3 times loudly\n");
    assert_eq!(record["stderr"], "a warning\n");
    let result = &record["result"];
    assert_eq!(result["to"], "ops");
    assert_eq!(result["sent"], 6, "the module's relative import worked");
    assert_eq!(result["loud"], true);
    assert_eq!(result["name"], "app.tasks.database");
    assert_eq!(
        result["run"], record["id"],
        "TICKD_RUN_ID as scripts get it"
    );
    let workspace = dir.path().join("workspace").canonicalize().unwrap();
    assert_eq!(result["cwd"], workspace.to_str().unwrap());
    assert!(
        result["argv"][0]
            .as_str()
            .unwrap()
            .ends_with("app/tasks/database.py"),
        "{result}"
    );

    // The record read back from the store has it too; the job object is unchanged.
    let id = record["id"].as_str().unwrap();
    let (_, stored) = call(port, Method::GET, &format!("/runs/{id}"), None).await;
    assert_eq!(stored["result"], *result);
    let (_, job) = call(port, Method::GET, "/jobs/send", None).await;
    assert_eq!(job["func"], "app.tasks.database:send");
    assert!(job.get("result").is_none());

    // The workspace's own name may begin the module, as it may a script's path; an
    // attribute path reaches into a class.
    let record = run(
        port,
        "weekly",
        "workspace.app.tasks.database:Report.weekly",
        json!([4]),
        json!({}),
    )
    .await;
    assert_eq!(record["result"], json!([4, 8]), "{record}");

    // What JSON cannot hold is kept as its repr; what is too long is cut, as a string.
    let record = run(
        port,
        "opaque",
        "app.tasks.database:opaque",
        json!([]),
        json!({}),
    )
    .await;
    assert_eq!(record["result"], "<Opaque thing>", "{record}");
    let record = run(
        port,
        "huge",
        "app.tasks.database:huge",
        json!([]),
        json!({}),
    )
    .await;
    let text = record["result"].as_str().unwrap();
    assert!(
        text.len() < 64 * 1024 && text.ends_with("(200002 characters)"),
        "{}",
        &text[text.len() - 40..]
    );
    let record = run(
        port,
        "nothing",
        "app.tasks.database:nothing",
        json!([]),
        json!({}),
    )
    .await;
    assert_eq!(record["result"], Value::Null);
    assert_eq!(record["status"], "succeeded");

    // A script's record has no result at all.
    let record = run(
        port,
        "script",
        "task:run_script",
        json!(["test.py"]),
        json!({}),
    )
    .await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert!(record.get("result").is_none(), "{record}");

    stop(&mut daemon);
}

#[tokio::test]
async fn an_exception_fails_the_run_with_its_traceback_and_no_result() {
    let dir = project_dir();
    std::fs::write(
        dir.path().join("workspace/jobs.py"),
        TASKS.replace("from .helpers import double\n", ""),
    )
    .unwrap();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start(dir.path(), port).await;

    let record = run(port, "fail", "jobs:fail", json!([]), json!({})).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["exit_code"], 1);
    let stderr = record["stderr"].as_str().unwrap();
    assert!(
        stderr.contains("Traceback (most recent call last)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("RuntimeError: the database is down"),
        "{stderr}"
    );
    assert!(
        stderr.contains("jobs.py\", line"),
        "the function's own frame: {stderr}"
    );
    assert!(
        !stderr.contains("<string>"),
        "only the user's frames: {stderr}"
    );
    assert!(record.get("result").is_none(), "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .starts_with("the function exited with code 1: an exception"),
        "{record}"
    );

    // `sys.exit(3)` is the run's exit code, as for a script.
    let record = run(port, "leave", "jobs:leave", json!([3]), json!({})).await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["exit_code"], 3);
    assert_eq!(record["reason"], "the function exited with code 3");

    // An attribute the module's class does not have (only the first name is read when the
    // job is added) fails its run, saying which.
    let record = run(port, "missing", "jobs:Report.nowhere", json!([]), json!({})).await;
    assert_eq!(record["status"], "failed");
    let stderr = record["stderr"].as_str().unwrap();
    assert!(stderr.contains("'nowhere' is not found"), "{stderr}");

    // An edited module is picked up by the next run: nothing is cached between runs.
    std::fs::write(
        dir.path().join("workspace/jobs.py"),
        "def fail():\n    return 'fixed'\n",
    )
    .unwrap();
    let (status, _) = call(port, Method::POST, "/jobs/fail/run?wait=true", None).await;
    assert_eq!(status, 200);
    let (_, runs) = call(port, Method::GET, "/jobs/fail/runs", None).await;
    assert_eq!(runs[0]["result"], "fixed", "{runs}");
    assert_eq!(runs[0]["status"], "succeeded");

    stop(&mut daemon);
}

#[tokio::test]
async fn references_to_anything_outside_the_workspace_are_refused_when_added() {
    let dir = project_dir();
    std::fs::write(
        dir.path().join("workspace/jobs.py"),
        "import json as codec\nfrom os import path as where\nLIMIT = 3\nif LIMIT:\n    def maybe():\n        return 2\ndef ok():\n    return 1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("workspace/broken.py"), "def ok(:\n").unwrap();
    std::fs::write(
        dir.path().join("workspace/star.py"),
        "from os.path import *\n",
    )
    .unwrap();
    let outside = dir.path().join("outside.py");
    std::fs::write(&outside, "def evil():\n    return 1\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.path().join("workspace/linked.py")).unwrap();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start(dir.path(), port).await;

    let job = |func: &str| json!({"id": "x", "func": func, "trigger": "interval", "hours": 1});
    for (func, says) in [
        ("os:system", "the module os is not in the workspace"),
        (
            "subprocess:run",
            "the module subprocess is not in the workspace",
        ),
        ("json:dumps", "the module json is not in the workspace"),
        ("linked:evil", "is outside the workspace"),
        ("..jobs:ok", "is not a Python module name"),
        ("jobs:ok()", "is not a Python attribute path"),
        ("outside:evil", "the module outside is not in the workspace"),
        // Read by Python's parser when added, never run:
        ("jobs:okay", "the module defines no 'okay'"),
        (
            "broken:ok",
            "the module does not compile: invalid syntax (line 1)",
        ),
    ] {
        let (status, answer) = add(port, job(func)).await;
        assert_eq!(status, 400, "{func}: {answer}");
        let message = answer["error_message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Error resolving reference {func}: "))
                && message.contains(says),
            "{func}: {message}"
        );
    }
    // APScheduler's own text for a reference without a colon.
    let (status, answer) = add(port, job("jobs.ok")).await;
    assert_eq!(
        (status, answer["error_message"].as_str()),
        (400, Some("Invalid reference"))
    );
    // Names bound by imports, assignments and a top-level `if` are found; a star import may
    // bring anything, so it is let through to run.
    for func in [
        "jobs:codec",
        "jobs:where",
        "jobs:LIMIT",
        "jobs:maybe",
        "star:join",
    ] {
        let body =
            json!({"id": func.replace(':', "-"), "func": func, "trigger": "interval", "hours": 1});
        let (status, answer) = add(port, body).await;
        assert_eq!(status, 200, "{func}: {answer}");
    }
    // A module that does exist is accepted, and PATCH checks a new func as POST does.
    let (status, answer) = add(port, job("jobs:ok")).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(
        port,
        Method::PATCH,
        "/jobs/x",
        Some(json!({"func": "jobs:gone"})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = call(
        port,
        Method::PATCH,
        "/jobs/x",
        Some(json!({"func": "os:system"})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (_, job) = call(port, Method::GET, "/jobs/x", None).await;
    assert_eq!(job["func"], "jobs:ok", "the refused change changed nothing");

    stop(&mut daemon);
}
