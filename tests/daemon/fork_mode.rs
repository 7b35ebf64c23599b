//! Warm starts (issue 18, items 2 and 3): `executor.python_mode = "fork"` against the default
//! `exec`, with the real binary, real Python and a bound port. The equivalence suite runs one
//! corpus of scripts and functions on a daemon of each mode and compares what a user can
//! observe of each run (status, exit code, output, result, what a script sees of its
//! process); then the fork server is killed in the middle of a run.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::daemon::{call, free_port, run_now_waiting, start, stop, write_config};
use crate::common::project_dir;

/// The corpus: file name and text.
const SCRIPTS: [(&str, &str); 10] = [
    (
        "facts.py",
        r#"import json, os, sys
print(json.dumps({
    "argv": sys.argv[1:], "name": __name__,
    "file_is_script": __file__ == os.environ["TICKD_SCRIPT"] == sys.argv[0],
    "path0_is_folder": sys.path[0] == os.path.dirname(__file__),
    "cwd": os.getcwd(), "stdin": sys.stdin.read(),
    "env": sorted(name for name in os.environ if name.startswith("TICKD")),
    "kwargs": json.loads(os.environ["TICKD_KWARGS"]),
    "main_module": sys.modules["__main__"].__file__ == __file__,
    "nice": os.getpriority(os.PRIO_PROCESS, 0),
}, sort_keys=True))
"#,
    ),
    (
        "exits.py",
        "import sys\nprint('leaving')\nsys.exit(int(sys.argv[1]) if sys.argv[1].isdigit() else sys.argv[1])\n",
    ),
    (
        "raises.py",
        "print('before')\ndef inner():\n    raise KeyError('missing key')\ninner()\n",
    ),
    ("broken.py", "print('never printed')\ntotal = (1 +\n"),
    (
        "ordered.py",
        r#"import atexit, threading, time
atexit.register(lambda: print("atexit ran last"))
def later():
    time.sleep(0.2)
    print("the thread finished")
threading.Thread(target=later).start()
print("main done")
"#,
    ),
    (
        "big.py",
        "import sys\nfor i in range(20000):\n    print(f'line {i:06d} ' + 'x' * 40)\nprint('end', file=sys.stderr)\n",
    ),
    (
        "chance.py",
        "import random, uuid\nprint(random.random(), uuid.uuid4())\n",
    ),
    (
        "signalled.py",
        "import os, signal\nprint('sending myself SIGTERM', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\n",
    ),
    (
        "outlives.py",
        r#"import subprocess, time
child = subprocess.Popen(["sleep", "300"])
print(child.pid, flush=True)
time.sleep(300)
"#,
    ),
    (
        "funcs.py",
        r#"import os, sys
def add(a, b, *, scale=1):
    print("adding", a, b)
    return {"sum": (a + b) * scale, "argv_is_module": sys.argv == [__file__], "name": __name__}
def fails(text):
    raise ValueError(text)
def opaque():
    return object.__new__(type("Thing", (), {"__repr__": lambda self: "<a thing>"}))
"#,
    ),
];

/// A project with the corpus, its config in `mode`, on `port`.
fn project(port: u16, mode: &str) -> TempDir {
    let dir = project_dir();
    for (name, text) in SCRIPTS {
        std::fs::write(dir.path().join("workspace").join(name), text).unwrap();
    }
    write_config(
        dir.path(),
        port,
        &format!("[executor]\npython_mode = \"{mode}\"\npreload = [\"json\"]\nkill_grace = 1\n"),
    );
    dir
}

/// Runs a job now, waiting: its run record.
async fn run(port: u16, id: &str, func: &str, args: Value, extra: Value) -> Value {
    run_now_waiting(port, id, func, args, extra).await
}

/// Runs the script `args[0]` (`task:run_script`) now, waiting: its run record.
async fn script(port: u16, id: &str, args: Value) -> Value {
    run(port, id, "task:run_script", args, json!({})).await
}

/// What a user observes of a run, with the project's own folder written `<project>`.
fn observed(record: &Value, project: &Path) -> Value {
    let folder = project.canonicalize().unwrap();
    let text = |key: &str| {
        record[key]
            .as_str()
            .unwrap_or_default()
            .replace(folder.to_str().unwrap(), "<project>")
    };
    let stderr = text("stderr");
    json!({
        "status": record["status"],
        "exit_code": record["exit_code"],
        "reason": record["reason"],
        "stdout": text("stdout"),
        "stdout_truncated": record["stdout_truncated"],
        // A traceback's first frames name how the interpreter was started; its last line
        // is the error.
        "stderr_last": stderr.lines().last().unwrap_or_default(),
        "stderr_lines": stderr.lines().count().min(1),
        "result": record.get("result").cloned().unwrap_or(Value::String("(none)".into())),
    })
}

/// The corpus's cases: job id, func, args, extra job fields.
fn cases() -> Vec<(&'static str, &'static str, Value, Value)> {
    vec![
        (
            "facts",
            "task:run_script",
            json!(["facts.py", "one", 2]),
            json!({"kwargs": {"k": [1]}}),
        ),
        (
            "exit-0",
            "task:run_script",
            json!(["exits.py", "0"]),
            json!({}),
        ),
        (
            "exit-7",
            "task:run_script",
            json!(["exits.py", "7"]),
            json!({}),
        ),
        (
            "exit-text",
            "task:run_script",
            json!(["exits.py", "goodbye"]),
            json!({}),
        ),
        ("raises", "task:run_script", json!(["raises.py"]), json!({})),
        ("broken", "task:run_script", json!(["broken.py"]), json!({})),
        (
            "ordered",
            "task:run_script",
            json!(["ordered.py"]),
            json!({}),
        ),
        ("big", "task:run_script", json!(["big.py"]), json!({})),
        (
            "signalled",
            "task:run_script",
            json!(["signalled.py"]),
            json!({}),
        ),
        (
            "add",
            "funcs:add",
            json!([2, 3]),
            json!({"kwargs": {"scale": 10}}),
        ),
        ("fails", "funcs:fails", json!(["bad input"]), json!({})),
        ("opaque", "funcs:opaque", json!([]), json!({})),
    ]
}

#[tokio::test]
async fn scripts_and_functions_give_the_same_results_in_both_modes() {
    let (exec_port, fork_port) = (free_port(), free_port());
    let (exec_dir, fork_dir) = (project(exec_port, "exec"), project(fork_port, "fork"));
    let mut exec_daemon = start(exec_dir.path(), exec_port).await;
    let mut fork_daemon = start(fork_dir.path(), fork_port).await;

    for (id, func, args, extra) in cases() {
        let by_exec = run(exec_port, id, func, args.clone(), extra.clone()).await;
        let by_fork = run(fork_port, id, func, args, extra).await;
        assert_eq!(
            observed(&by_exec, exec_dir.path()),
            observed(&by_fork, fork_dir.path()),
            "{id} differs between exec (left) and fork (right)"
        );
    }
    // A few of the corpus's expectations, so that "equal" is not "equally broken".
    let facts = run(
        fork_port,
        "facts",
        "task:run_script",
        json!(["facts.py", "one", 2]),
        json!({"kwargs": {"k": [1]}}),
    )
    .await;
    let seen: Value = serde_json::from_str(facts["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(seen["argv"], json!(["one", "2"]));
    assert_eq!(seen["name"], "__main__");
    assert_eq!(seen["stdin"], "", "stdin is empty");
    for fact in ["file_is_script", "path0_is_folder", "main_module"] {
        assert_eq!(seen[fact], true, "{fact}: {seen}");
    }
    assert_eq!(seen["kwargs"], json!({"k": [1]}));
    // `executor.nice` (5) below the daemon, whose nice value is this test's.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own: i64 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(seen["nice"], json!((own + 5).min(19)), "{seen}");
    let ordered = script(fork_port, "ordered", json!(["ordered.py"])).await;
    assert_eq!(
        ordered["stdout"],
        "main done\nthe thread finished\natexit ran last\n"
    );
    let signalled = script(fork_port, "signalled", json!(["signalled.py"])).await;
    assert_eq!(
        signalled["reason"], "the script was killed by signal 15",
        "{signalled}"
    );
    let add = run(
        fork_port,
        "add",
        "funcs:add",
        json!([2, 3]),
        json!({"kwargs": {"scale": 10}}),
    )
    .await;
    assert_eq!(
        add["result"],
        json!({"sum": 50, "argv_is_module": true, "name": "funcs"})
    );
    let fails = run(
        fork_port,
        "fails",
        "funcs:fails",
        json!(["bad input"]),
        json!({}),
    )
    .await;
    let stderr = fails["stderr"].as_str().unwrap();
    assert!(
        stderr.starts_with("Traceback (most recent call last):\n  File \""),
        "{stderr}"
    );
    assert!(
        !stderr.contains("<string>"),
        "no frame of the fork server's own: {stderr}"
    );

    // A script that does not compile ends as the interpreter ends it: the error alone, 1.
    let broken = script(fork_port, "broken", json!(["broken.py"])).await;
    assert_eq!(broken["exit_code"], 1, "{broken}");
    let stderr = broken["stderr"].as_str().unwrap();
    assert!(stderr.starts_with("  File \""), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with("SyntaxError: '(' was never closed"),
        "{stderr}"
    );
    assert_eq!(broken["stdout"], "", "{broken}");

    // Each run draws its own random numbers, in both modes.
    for port in [exec_port, fork_port] {
        let first = script(port, "chance", json!(["chance.py"])).await;
        let second = script(port, "chance", json!(["chance.py"])).await;
        assert_ne!(first["stdout"], second["stdout"], "port {port}");
    }

    // A timeout stops the whole group: the script and the child it left behind.
    for port in [exec_port, fork_port] {
        let record = run(
            port,
            "outlives",
            "task:run_script",
            json!(["outlives.py"]),
            json!({"timeout": 1}),
        )
        .await;
        assert_eq!(record["status"], "timed_out", "{record}");
        let child: i32 = record["stdout"].as_str().unwrap().trim().parse().unwrap();
        assert!(
            gone(child).await,
            "the script's child {child} outlived the timeout (port {port})"
        );
    }

    stop(&mut exec_daemon);
    stop(&mut fork_daemon);
}

#[tokio::test]
async fn a_dead_fork_server_ends_its_runs_and_the_next_run_starts_a_new_one() {
    let port = free_port();
    let dir = project(port, "fork");
    let mut daemon = start(dir.path(), port).await;
    // The daemon started its fork server before any run; the first run uses it.
    let server = fork_server_of(daemon.id()).expect("a fork server started with the daemon");
    let record = script(port, "first", json!(["exits.py", "0"])).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(fork_server_of(daemon.id()), Some(server));

    let body = json!({"id": "slow", "func": "task:run_script", "args": ["outlives.py"],
                      "trigger": "date", "run_date": "2099-01-01T00:00:00+00:00"});
    let (status, _) = call(port, Method::POST, "/jobs", Some(body)).await;
    assert_eq!(status, 200);
    let (status, _) = call(port, Method::POST, "/jobs/slow/run", None).await;
    assert_eq!(status, 200);
    let (_, runs) = call(port, Method::GET, "/jobs/slow/runs", None).await;
    let run_id = runs[0]["id"].as_str().unwrap().to_owned();
    // Its child is running once it printed its pid.
    let child = loop {
        let (_, output) = call(port, Method::GET, &format!("/runs/{run_id}/output"), None).await;
        if let Ok(pid) = output["stdout"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .parse::<i32>()
        {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    signal(server, Signal::SIGKILL);

    let ended = loop {
        let (_, record) = call(port, Method::GET, &format!("/runs/{run_id}"), None).await;
        if record["status"] != "running" {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ended["status"], "failed", "{ended}");
    assert!(
        ended["reason"]
            .as_str()
            .unwrap()
            .starts_with("the fork server stopped while the run was in progress"),
        "{ended}"
    );
    assert!(gone(child).await, "the run's group was stopped");

    next_run_gets_a_new_server(port, daemon.id(), server).await;
    stop(&mut daemon);
}

/// After the fork server `server` of the daemon `daemon` was lost, the next run succeeds on
/// a new one.
async fn next_run_gets_a_new_server(port: u16, daemon: u32, server: i32) {
    let record = script(port, "after", json!(["exits.py", "0"])).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let replaced = fork_server_of(daemon).expect("a new fork server");
    assert_ne!(replaced, server);
}

/// The pid of the fork server the daemon `daemon` started (its child running Python with
/// the server's program), if any.
fn fork_server_of(daemon: u32) -> Option<i32> {
    children_of(i32::try_from(daemon).ok()?)
        .into_iter()
        .find(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains("tickd's fork server")
        })
}

/// The live processes whose parent is `parent`.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit_once(") ").is_some_and(|(_, rest)| {
                !rest.starts_with('Z') && rest.split(' ').nth(1) == Some(&parent.to_string())
            })
        })
        .collect()
}

/// The fork server's children once there are `count` of them (its spares, when no run is
/// going), within a few seconds.
async fn spares(server: i32, count: usize) -> Vec<i32> {
    for _ in 0..100 {
        let children = children_of(server);
        if children.len() == count {
            return children;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the fork server {server} has {:?} children, not {count}",
        children_of(server)
    );
}

/// Whether `pid` is gone (or a zombie) within a few seconds.
async fn gone(pid: i32) -> bool {
    for _ in 0..100 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty()
            || stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Sends `signal` to `pid`, which must exist.
fn signal(pid: i32, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
}

#[tokio::test]
async fn a_fork_server_that_does_not_answer_is_replaced() {
    let port = free_port();
    let dir = project(port, "fork");
    let mut daemon = start(dir.path(), port).await;
    let server = fork_server_of(daemon.id()).expect("a fork server started with the daemon");
    // Stopped, it receives the request but never forks: the start waits its patience (the
    // job's timeout of 1 s, shorter than the handshake's), then gives up and replaces it.
    // Its spares are killed first, so that the run is a request to it: a spare would take
    // the run without a word to the server.
    let waiting = spares(server, 10).await;
    signal(server, Signal::SIGSTOP);
    for pid in waiting {
        signal(pid, Signal::SIGKILL);
    }
    let body = json!({"id": "hung", "func": "task:run_script", "args": ["exits.py", "0"],
                      "trigger": "date", "run_date": "2099-01-01T00:00:00+00:00", "timeout": 1});
    let (status, _) = call(port, Method::POST, "/jobs", Some(body)).await;
    assert_eq!(status, 200);
    let (status, answer) = call(port, Method::POST, "/jobs/hung/run?wait=true", None).await;
    assert_eq!(status, 500, "{answer}");
    let (_, runs) = call(port, Method::GET, "/jobs/hung/runs", None).await;
    assert_eq!(runs[0]["status"], "failed", "{runs}");
    assert_eq!(
        runs[0]["reason"], "the script could not start: tickd's supervisor failed to start it",
        "{runs}"
    );
    assert!(gone(server).await, "the stopped server was killed");

    next_run_gets_a_new_server(port, daemon.id(), server).await;
    stop(&mut daemon);
}

/// The daemon hands a run to a spare itself: with the fork server stopped (it reads no
/// request and answers none), a run still starts at once; its end is told once the server
/// goes on and reaps it. Through the server, the start would wait out its patience and fail.
#[tokio::test]
async fn a_spare_takes_its_run_from_the_daemon_without_the_fork_server() {
    let port = free_port();
    let dir = project(port, "fork");
    let mut daemon = start(dir.path(), port).await;
    let server = fork_server_of(daemon.id()).expect("a fork server started with the daemon");
    spares(server, 10).await;
    let body = json!({"id": "direct", "func": "task:run_script", "args": ["exits.py", "0"],
                      "trigger": "date", "run_date": "2099-01-01T00:00:00+00:00"});
    let (status, _) = call(port, Method::POST, "/jobs", Some(body)).await;
    assert_eq!(status, 200);
    signal(server, Signal::SIGSTOP);
    let (status, started) = call(port, Method::POST, "/jobs/direct/run", None).await;
    // Through the server, it would have been replaced by now (gone: nothing to continue).
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(server), Signal::SIGCONT);
    assert_eq!(status, 200, "{started}");
    let (_, runs) = call(port, Method::GET, "/jobs/direct/runs", None).await;
    let run_id = runs[0]["id"].as_str().unwrap().to_owned();
    let ended = loop {
        let (_, record) = call(port, Method::GET, &format!("/runs/{run_id}"), None).await;
        if record["status"] != "running" {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert_eq!(
        fork_server_of(daemon.id()),
        Some(server),
        "the server was kept"
    );
    stop(&mut daemon);
}

/// The fork server compiles a script once for the runs it forks, and a run uses that only
/// for the very text it runs: each run runs the file as it is when it starts. The spares are
/// killed first, so that the runs (for a second, until they are replaced) are forked by the
/// server; a run a spare took would have to give the same output.
#[tokio::test]
async fn each_run_forked_by_the_server_runs_its_script_as_it_is_then() {
    let port = free_port();
    let dir = project(port, "fork");
    let script_path = dir.path().join("workspace/edited.py");
    std::fs::write(&script_path, "print('one')\n").unwrap();
    let mut daemon = start(dir.path(), port).await;
    let server = fork_server_of(daemon.id()).expect("a fork server started with the daemon");
    for pid in spares(server, 10).await {
        signal(pid, Signal::SIGKILL);
    }
    // The same size each time, and back to a text run before.
    for text in ["one", "two", "one"] {
        std::fs::write(&script_path, format!("print('{text}')\n")).unwrap();
        let record = script(port, "edited", json!(["edited.py"])).await;
        assert_eq!(record["stdout"], format!("{text}\n"), "{record}");
    }
    // A warning of the compiler's is the run's to say, every time, on its own stderr.
    std::fs::write(&script_path, "x = 1\nif x is 1:\n    print('one')\n").unwrap();
    for _ in 0..2 {
        let record = script(port, "edited", json!(["edited.py"])).await;
        assert_eq!(record["stdout"], "one\n", "{record}");
        assert!(
            record["stderr"].as_str().unwrap().contains("SyntaxWarning"),
            "{record}"
        );
    }
    std::fs::write(&script_path, "print('one'\n").unwrap();
    let record = script(port, "edited", json!(["edited.py"])).await;
    assert_eq!(record["exit_code"], 1, "{record}");
    assert!(
        record["stderr"].as_str().unwrap().contains("SyntaxError"),
        "{record}"
    );
    stop(&mut daemon);
}

#[tokio::test]
async fn runs_are_handed_to_spares_forked_ahead_and_spares_that_die_are_replaced() {
    let port = free_port();
    let dir = project(port, "fork");
    std::fs::write(
        dir.path().join("workspace/pid.py"),
        "import os\nprint(os.getpid())\n",
    )
    .unwrap();
    let mut daemon = start(dir.path(), port).await;
    let server = fork_server_of(daemon.id()).expect("a fork server started with the daemon");
    // One spare per run that may start at once (`max_workers`, 10 by default).
    let waiting = spares(server, 10).await;

    let record = script(port, "pid", json!(["pid.py"])).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let ran: i32 = record["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert!(
        waiting.contains(&ran),
        "run by {ran}, not one of the spares {waiting:?}"
    );
    // The spare used is replaced; the others still wait.
    let now = spares(server, 10).await;
    assert!(!now.contains(&ran));

    // Spares killed from outside are forgotten; a run still starts (forked for it when no
    // spare is left), and the spares are forked again.
    for pid in &now {
        signal(*pid, Signal::SIGKILL);
    }
    for pid in &now {
        assert!(gone(*pid).await, "spare {pid} was killed");
    }
    let record = script(port, "pid", json!(["pid.py"])).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let refilled = spares(server, 10).await;
    assert!(refilled.iter().all(|pid| !now.contains(pid)));

    // The daemon's end closed, the spares go with the server.
    stop(&mut daemon);
    assert!(gone(server).await, "the fork server ended with the daemon");
    for pid in refilled {
        assert!(gone(pid).await, "spare {pid} outlived the fork server");
    }
}
