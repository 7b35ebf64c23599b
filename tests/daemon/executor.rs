//! The executor against real scripts (python3, /bin/sh) in a temporary workspace
//! (CONTRACT §4 and §6). Assertions are on outcomes and on processes being gone, never on
//! durations; the only time limits here are generous guards that turn a hang into a failure.

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tickd::executor::{
    Executor, ExecutorError, ExecutorSettings, RunOutcome, RunRequest, RunStatus, StartFault,
};

/// Turns a hang into a test failure; far above any run here.
const HANG_GUARD: Duration = Duration::from_secs(60);

struct Fixture {
    /// Holds the temporary project root (`<tmp>/workspace` is the workspace).
    dir: TempDir,
    executor: Executor,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut ExecutorSettings)) -> Fixture {
        tickd::executor::supervise_with(env!("CARGO_BIN_EXE_tickd"));
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("workspace");
        fs::create_dir(&workspace).unwrap();
        let mut settings = ExecutorSettings {
            workspace,
            python: "python3".into(),
            interpreters: BTreeMap::from([("sh".to_owned(), "/bin/sh".to_owned())]),
            max_workers: 4,
            output_limit: 64 * 1024,
            kill_grace: Duration::from_millis(500),
            nice: 5,
            pass_env: vec!["PATH".to_owned()],
            python_mode: tickd::executor::PythonMode::Exec,
            preload: Vec::new(),
        };
        adjust(&mut settings);
        let executor = Executor::new(settings).unwrap();
        Fixture { dir, executor }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    /// Writes a script into the workspace.
    fn script(&self, name: &str, body: &str) {
        let path = self.workspace().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }

    fn check(&self, func: &str, args: Value) -> Result<(), String> {
        let args = args.as_array().unwrap().clone();
        self.executor.check(func, &args).map_err(|e| e.to_string())
    }

    /// Starts `args` (args[0] the script) as `task:run_script` with a free slot.
    async fn start(
        &self,
        args: Value,
        timeout: Option<Duration>,
    ) -> tickd::executor::RunningScript {
        let slot = self.executor.acquire_slot().await;
        self.executor.start(request(args, timeout), slot).unwrap()
    }

    async fn run(&self, args: Value, timeout: Option<Duration>) -> RunOutcome {
        guard(self.start(args, timeout).await.wait()).await
    }

    /// Waits until the script created `name` in the workspace (it is ready to be stopped).
    async fn wait_for_file(&self, name: &str) {
        let path = self.workspace().join(name);
        guard(async {
            while !path.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

fn request(args: Value, timeout: Option<Duration>) -> RunRequest {
    RunRequest {
        job_id: "job13".into(),
        run_id: "run-1".into(),
        func: "task:run_script".into(),
        args: args.as_array().unwrap().clone(),
        kwargs: Map::new(),
        scheduled_at: None,
        not_before: None,
        timeout,
    }
}

async fn guard<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the executor hung")
}

/// True when `pid` no longer runs: absent, or a zombie nobody has reaped yet (the test's
/// container may have a PID 1 that does not reap orphans).
fn is_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X') | None
        ),
    }
}

/// Waits (bounded by the guard) until `pid` is gone; SIGKILL is delivered asynchronously.
async fn assert_gone(pid: u32) {
    guard(async {
        while !is_gone(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

fn first_number(text: &str) -> u32 {
    text.split_whitespace()
        .find_map(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
}

fn kill(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
}

// ---- outcomes -------------------------------------------------------------------------------

#[tokio::test]
async fn a_script_that_exits_0_succeeds_with_its_output() {
    let f = Fixture::new();
    f.script(
        "test.py",
        "import sys\nprint('hello out')\nprint('hello err', file=sys.stderr)\n",
    );
    let outcome = f.run(json!(["workspace/test.py"]), None).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.signal, None);
    assert_eq!(outcome.stdout, "hello out\n");
    assert_eq!(outcome.stderr, "hello err\n");
    assert!(!outcome.stdout_truncated && !outcome.stderr_truncated);
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_its_code() {
    let f = Fixture::new();
    f.script(
        "fail.py",
        "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n",
    );
    let outcome = f.run(json!(["fail.py"]), None).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.exit_code, Some(3));
    assert_eq!(outcome.stderr, "bad input\n");
}

#[tokio::test]
async fn a_script_killed_by_a_signal_fails_with_the_signal() {
    let f = Fixture::new();
    f.script(
        "die.py",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    );
    let outcome = f.run(json!(["die.py"]), None).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.exit_code, None);
    assert_eq!(outcome.signal, Some(9));
}

#[tokio::test]
async fn argv_env_and_working_directory_reach_the_script() {
    let f = Fixture::new();
    f.script(
        "env.py",
        "import json, os, sys\n\
         print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(),\n\
           'job': os.environ['TICKD_JOB_ID'], 'run': os.environ['TICKD_RUN_ID'],\n\
           'at': os.environ['TICKD_SCHEDULED_AT'],\n\
           'kwargs': json.loads(os.environ['TICKD_KWARGS']),\n\
           'inherited': os.environ.get('PATH') is not None}))\n",
    );
    let mut request = request(
        json!(["workspace/env.py", "a b", 3, {"k": [1, "x"]}, null, true]),
        None,
    );
    request.kwargs = json!({"name": "guest", "n": 2})
        .as_object()
        .unwrap()
        .clone();
    request.scheduled_at =
        Some(chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05+08:00").unwrap());
    let slot = f.executor.acquire_slot().await;
    let outcome = guard(f.executor.start(request, slot).unwrap().wait()).await;

    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", outcome.stderr);
    let seen: Value = serde_json::from_str(&outcome.stdout).unwrap();
    let cwd = f.workspace().canonicalize().unwrap();
    assert_eq!(
        seen,
        json!({
            "argv": ["a b", "3", r#"{"k":[1,"x"]}"#, "null", "true"],
            "cwd": cwd.to_str().unwrap(),
            "job": "job13",
            "run": "run-1",
            "at": "2030-01-02T03:04:05+08:00",
            "kwargs": {"name": "guest", "n": 2},
            "inherited": true,
        })
    );
}

#[tokio::test]
async fn a_python_script_sees_its_own_path_and_imports_its_neighbours() {
    let f = Fixture::new();
    f.script("jobs/helper.py", "NAME = 'helper'\n");
    f.script(
        "jobs/main.py",
        "\"\"\"The job.\"\"\"\n\
         import json, os, sys\n\
         import helper\n\
         try:\n\
         \x20   os.fstat(3)\n\
         \x20   fd3 = 'open'\n\
         except OSError:\n\
         \x20   fd3 = 'closed'\n\
         print(json.dumps({'file': __file__, 'argv': sys.argv, 'path0': sys.path[0],\n\
           'helper': helper.NAME, 'script': os.environ['TICKD_SCRIPT'], 'fd3': fd3,\n\
           'name': __name__, 'doc': __doc__,\n\
           'names': sorted(n for n in globals() if not n.startswith('__'))}))\n",
    );
    f.script("jobs/broken.py", "x = 1\nraise SystemExit(undefined)\n");
    let outcome = f.run(json!(["jobs/main.py", "x"]), None).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", outcome.stderr);
    let main = f.workspace().join("jobs/main.py").canonicalize().unwrap();
    let folder = main.parent().unwrap();
    let seen: Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(
        seen,
        json!({
            "file": main, "argv": [main, "x"], "path0": folder, "helper": "helper",
            "script": main, "fd3": "closed", "name": "__main__", "doc": "The job.",
            "names": ["fd3", "helper", "json", "os", "sys"],
        })
    );

    let outcome = f.run(json!(["jobs/broken.py"]), None).await;
    assert_eq!(outcome.exit_code, Some(1));
    let broken = f.workspace().join("jobs/broken.py").canonicalize().unwrap();
    let at = format!("File \"{}\", line 2, in <module>", broken.display());
    assert!(outcome.stderr.contains(&at), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("NameError"), "{}", outcome.stderr);
}

#[tokio::test]
async fn a_link_inside_the_workspace_runs_the_file_it_leads_to() {
    let f = Fixture::new();
    f.script("real.py", "print(__file__)\n");
    symlink(
        &f.workspace().join("real.py"),
        &f.workspace().join("alias.py"),
    );
    let outcome = f.run(json!(["alias.py"]), None).await;
    let real = f.workspace().join("real.py").canonicalize().unwrap();
    assert_eq!(outcome.stdout, format!("{}\n", real.display()));
}

#[tokio::test]
async fn other_interpreters_read_the_open_file_and_get_its_path_in_tickd_script() {
    let f = Fixture::new();
    f.script(
        "dir/where.sh",
        "echo \"$0\"\necho \"$TICKD_SCRIPT\"\necho \"$@\"\n",
    );
    let outcome = f.run(json!(["dir/where.sh", "a", 2]), None).await;
    let script = f.workspace().join("dir/where.sh").canonicalize().unwrap();
    assert_eq!(
        outcome.stdout,
        format!("/proc/self/fd/3\n{}\na 2\n", script.display())
    );
}

/// Scripts started at the same moment each get their own script's descriptor and nothing of
/// the others': every descriptor a script holds is its stdin, its output pipes or itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_descriptor_of_one_run_reaches_another_started_with_it() {
    let f = Fixture::with(|s| s.max_workers = 8);
    let names: Vec<String> = (0..8).map(|i| format!("fds{i}.sh")).collect();
    for name in &names {
        f.script(name, "for fd in /proc/$$/fd/*; do readlink \"$fd\"; done\n");
    }
    let runs = names.iter().map(|name| {
        let executor = f.executor.clone();
        let args = json!([name]);
        tokio::spawn(async move {
            let slot = executor.acquire_slot().await;
            let running = executor.launch(request(args, None), slot).await.unwrap();
            guard(running.wait()).await
        })
    });
    let outcomes = futures_util::future::join_all(runs).await;
    for (name, outcome) in names.iter().zip(outcomes) {
        let outcome = outcome.unwrap();
        let own = f.workspace().join(name).canonicalize().unwrap();
        for target in outcome.stdout.lines() {
            assert!(
                target == "/dev/null" || target.starts_with("pipe:[") || own == Path::new(target),
                "{name} holds {target}"
            );
        }
    }
}

#[tokio::test]
async fn a_script_killed_by_any_signal_reports_that_signal() {
    let f = Fixture::new();
    // PIPE: Rust programs, the supervisor among them, ignore it; ALRM: the supervisor outlives
    // it when the group gets it; USR1: neither.
    for (name, number) in [("PIPE", 13), ("ALRM", 14), ("USR1", 10)] {
        f.script("die.sh", &format!("kill -{name} $$\nsleep 5\n"));
        let outcome = f.run(json!(["die.sh"]), None).await;
        assert_eq!(outcome.status, RunStatus::Failed, "{name}");
        assert_eq!(
            (outcome.exit_code, outcome.signal),
            (None, Some(number)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_unscheduled_run_has_an_empty_scheduled_at() {
    let f = Fixture::new();
    f.script(
        "at.py",
        "import os\nprint(repr(os.environ['TICKD_SCHEDULED_AT']))\n",
    );
    let outcome = f.run(json!(["at.py"]), None).await;
    assert_eq!(outcome.stdout, "''\n");
}

#[tokio::test]
async fn output_beyond_the_limit_keeps_the_last_bytes_of_each_stream() {
    let f = Fixture::with(|s| s.output_limit = 100);
    // A megabyte on each stream, interleaved: reading one pipe after the other would block
    // the script on the full other pipe.
    f.script(
        "loud.py",
        "import sys\n\
         for i in range(1000):\n\
         \x20   sys.stdout.write('o' * 1000)\n\
         \x20   sys.stderr.write('e' * 1000)\n\
         sys.stdout.write('END-OUT')\n\
         sys.stderr.write('short')\n",
    );
    let outcome = f.run(json!(["loud.py"]), None).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.stdout, format!("{}END-OUT", "o".repeat(93)));
    assert_eq!(outcome.stderr, format!("{}short", "e".repeat(95)));
    assert!(outcome.stdout_truncated && outcome.stderr_truncated);
}

#[tokio::test]
async fn output_at_the_limit_is_not_marked_truncated() {
    let f = Fixture::with(|s| s.output_limit = 10);
    f.script("ten.py", "import sys\nsys.stdout.write('0123456789')\n");
    let outcome = f.run(json!(["ten.py"]), None).await;
    assert_eq!(outcome.stdout, "0123456789");
    assert!(!outcome.stdout_truncated);
}

#[tokio::test]
async fn output_that_is_not_utf8_is_read_lossily() {
    let f = Fixture::new();
    f.script(
        "bytes.py",
        "import sys\nsys.stdout.buffer.write(b'ok \\xff end')\n",
    );
    let outcome = f.run(json!(["bytes.py"]), None).await;
    assert_eq!(outcome.stdout, "ok \u{fffd} end");
}

#[tokio::test]
async fn a_sh_script_runs_with_the_interpreter_table() {
    let f = Fixture::new();
    f.script(
        "hello.sh",
        "echo \"$1 from $TICKD_JOB_ID in $(pwd)\"\nexit 4\n",
    );
    let outcome = f.run(json!(["workspace/hello.sh", "hi"]), None).await;
    let cwd = f.workspace().canonicalize().unwrap();
    assert_eq!(
        outcome.stdout,
        format!("hi from job13 in {}\n", cwd.display())
    );
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.exit_code, Some(4));
}

// ---- timeouts, stops and process groups -------------------------------------------------------

/// The nice value of process `pid` (`"self"`: this test process, which the executor's scripts
/// are placed below).
fn niceness(pid: &str) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Field 19 (nice) counted from the state, which follows the parenthesised command name.
    let (_, rest) = stat.rsplit_once(')').unwrap_or_default();
    rest.split_whitespace()
        .nth(16)
        .and_then(|nice| nice.parse().ok())
        .unwrap_or(i32::MIN)
}

/// Starts a script that waits for the file `go`, then prints its niceness (coreutils `nice`).
/// The supervisor lowers the run's group only once it has started the interpreter, so `go` is
/// written once the group's leader shows `expected`, or after a bound (then the script tells
/// what it has): a script that read its priority as soon as `start` returned could run ahead
/// of the lowering on a busy machine.
async fn niceness_of_a_script(fixture: &Fixture, expected: i32) -> i32 {
    fixture.script("nice.sh", "while [ ! -e go ]; do sleep 0.01; done\nnice\n");
    let script = fixture.start(json!(["nice.sh"]), None).await;
    let leader = script.pid().to_string();
    for _ in 0..500 {
        if niceness(&leader) == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fs::write(fixture.workspace().join("go"), "").unwrap();
    let outcome = guard(script.wait()).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", outcome.stderr);
    outcome.stdout.trim().parse().unwrap()
}

#[tokio::test]
async fn scripts_run_the_configured_levels_below_the_daemon() {
    let own = niceness("self");
    let fixture = Fixture::new();
    let lowered = (own + 5).min(19);
    assert_eq!(niceness_of_a_script(&fixture, lowered).await, lowered);

    let fixture = Fixture::with(|settings| settings.nice = 0);
    assert_eq!(niceness_of_a_script(&fixture, own).await, own);
}

#[tokio::test]
async fn a_timeout_kills_the_script_and_the_grandchild_it_spawned() {
    let f = Fixture::new();
    f.script(
        "slow.py",
        "import subprocess, time\n\
         child = subprocess.Popen(['sleep', '1000'])\n\
         print(child.pid, flush=True)\n\
         time.sleep(1000)\n",
    );
    let running = f
        .start(json!(["slow.py"]), Some(Duration::from_secs(3)))
        .await;
    let leader = running.pid();
    let outcome = guard(running.wait()).await;

    assert_eq!(outcome.status, RunStatus::TimedOut);
    assert_eq!(outcome.signal, Some(15));
    let grandchild = first_number(&outcome.stdout);
    assert_gone(leader).await;
    assert_gone(grandchild).await;
}

#[tokio::test]
async fn a_script_that_ignores_sigterm_is_killed_after_the_grace() {
    let f = Fixture::new();
    f.script(
        "stubborn.py",
        "import signal, time\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         open('ready', 'w').close()\n\
         while True:\n\
         \x20   time.sleep(1)\n",
    );
    let running = f.start(json!(["stubborn.py"]), None).await;
    let (leader, stop) = (running.pid(), running.stop_handle());
    let waiting = tokio::spawn(running.wait());
    f.wait_for_file("ready").await;
    stop.stop(RunStatus::Interrupted);
    let outcome = guard(waiting).await.unwrap();

    assert_eq!(outcome.status, RunStatus::Interrupted);
    assert_eq!(outcome.signal, Some(9));
    assert_gone(leader).await;
}

#[tokio::test]
async fn a_stop_handle_cancels_the_run_and_its_group() {
    let f = Fixture::new();
    f.script(
        "long.py",
        "import subprocess, time\n\
         child = subprocess.Popen(['sleep', '1000'])\n\
         print(child.pid, flush=True)\n\
         open('ready', 'w').close()\n\
         time.sleep(1000)\n",
    );
    let running = f.start(json!(["long.py"]), None).await;
    let stop = running.stop_handle();
    let waiting = tokio::spawn(running.wait());
    f.wait_for_file("ready").await;
    stop.stop(RunStatus::Cancelled);
    stop.stop(RunStatus::Interrupted); // the first request wins
    let outcome = guard(waiting).await.unwrap();

    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_gone(first_number(&outcome.stdout)).await;
    stop.stop(RunStatus::Cancelled); // after the end: ignored, no panic
}

#[tokio::test]
async fn a_grandchild_left_in_the_group_is_killed_when_the_script_exits() {
    let f = Fixture::new();
    // The grandchild inherits stdout and stderr: reading them to EOF would wait 1000 s.
    f.script(
        "leave.py",
        "import subprocess\n\
         child = subprocess.Popen(['sleep', '1000'])\n\
         print(child.pid, flush=True)\n",
    );
    let outcome = f.run(json!(["leave.py"]), None).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_gone(first_number(&outcome.stdout)).await;
}

#[tokio::test]
async fn a_grandchild_that_escaped_the_group_does_not_hang_the_wait() {
    let f = Fixture::new();
    // A new session puts it out of reach of the group kill, still holding both pipes.
    f.script(
        "daemon.py",
        "import subprocess\n\
         child = subprocess.Popen(['sleep', '1000'], start_new_session=True)\n\
         print(child.pid, flush=True)\n",
    );
    let outcome = f.run(json!(["daemon.py"]), None).await;
    let escaped = first_number(&outcome.stdout);
    kill(escaped);
    assert_eq!(outcome.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn dropping_a_running_script_kills_its_group() {
    let f = Fixture::new();
    f.script(
        "orphan.py",
        "import subprocess, time\n\
         child = subprocess.Popen(['sleep', '1000'])\n\
         open('grandchild', 'w').write(str(child.pid))\n\
         time.sleep(1000)\n",
    );
    let running = f.start(json!(["orphan.py"]), None).await;
    let leader = running.pid();
    f.wait_for_file("grandchild").await;
    // The file is created before the pid is written into it.
    let grandchild = guard(async {
        loop {
            if let Ok(pid) = fs::read_to_string(f.workspace().join("grandchild"))
                .unwrap_or_default()
                .parse()
            {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(running);
    assert_gone(leader).await;
    assert_gone(grandchild).await;
}

// ---- the pool ----------------------------------------------------------------------------------

#[tokio::test]
async fn the_pool_bounds_how_many_scripts_run_at_once() {
    let f = Fixture::with(|s| s.max_workers = 1);
    let slot = f.executor.try_acquire_slot().expect("a free slot");
    assert!(f.executor.try_acquire_slot().is_none());
    drop(slot);

    f.script("quick.py", "print('done')\n");
    let running = f.start(json!(["quick.py"]), None).await;
    assert!(
        f.executor.try_acquire_slot().is_none(),
        "the running script holds the only slot"
    );
    let outcome = guard(running.wait()).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert!(
        f.executor.try_acquire_slot().is_some(),
        "released at the end"
    );
}

#[tokio::test]
async fn acquire_slot_waits_for_a_slot_to_be_released() {
    let f = Fixture::with(|s| s.max_workers = 1);
    let held = f.executor.acquire_slot().await;
    let executor = f.executor.clone();
    let waiter = tokio::spawn(async move { executor.acquire_slot().await });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    drop(held);
    guard(waiter).await.unwrap();
}

#[tokio::test]
async fn a_failed_start_gives_the_slot_back() {
    // An interpreter that is there at start-up (it is checked then) and gone at the run.
    let f = Fixture::with(|s| {
        use std::os::unix::fs::PermissionsExt;
        s.max_workers = 1;
        let python = s.workspace.join("vanishing-python3");
        fs::write(&python, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&python, fs::Permissions::from_mode(0o755)).unwrap();
        s.python = "./vanishing-python3".into();
    });
    fs::remove_file(f.workspace().join("vanishing-python3")).unwrap();
    f.script("test.py", "print('never')\n");
    let slot = f.executor.acquire_slot().await;
    let err = f
        .executor
        .start(request(json!(["test.py"]), None), slot)
        .unwrap_err();
    // The server's fault, not the job's: the detail (for the log) names the program.
    match err {
        ExecutorError::CannotStart {
            fault: StartFault::InterpreterMissing,
            detail,
        } => assert!(detail.contains("vanishing-python3"), "{detail}"),
        other => panic!("expected a missing interpreter, got {other:?}"),
    }
    assert!(f.executor.try_acquire_slot().is_some());
}

// ---- checks at add time ------------------------------------------------------------------------

#[test]
fn check_accepts_paths_relative_to_the_project_root_or_the_workspace() {
    let f = Fixture::new();
    f.script("test.py", "");
    f.script("sub/nested.py", "");
    for path in [
        "workspace/test.py",
        "test.py",
        "./test.py",
        "sub/nested.py",
        "workspace/sub/nested.py",
    ] {
        assert_eq!(f.check("task:success", json!([path])), Ok(()), "{path}");
    }
    assert_eq!(
        f.check("task:run_script", json!(["test.py", 1, "x"])),
        Ok(())
    );
}

#[test]
fn check_refuses_unknown_tasks_with_the_reference_texts() {
    let f = Fixture::new();
    f.script("test.py", "");
    assert_eq!(
        f.check("os:system", json!(["test.py"])),
        Err(
            "Error resolving reference os:system: the module os is not in the workspace: a \
             function job may only name a module whose file is under the workspace (os.py or \
             os/__init__.py); the built-in tasks are task:success and task:run_script"
                .into()
        )
    );
    assert_eq!(
        f.check("nocolon", json!(["test.py"])),
        Err("Invalid reference".into())
    );
}

#[test]
fn check_refuses_a_missing_or_non_string_script_argument() {
    let f = Fixture::new();
    assert_eq!(
        f.check("task:success", json!([])),
        Err("task:success needs the script path as args[0]".into())
    );
    let err = f.check("task:success", json!([42])).unwrap_err();
    assert!(
        err.starts_with("task:success needs the script path as args[0]"),
        "{err}"
    );
}

#[test]
fn check_refuses_an_argument_no_program_could_receive() {
    let f = Fixture::new();
    f.script("test.py", "");
    let err = f
        .check("task:success", json!(["test.py", "ok", "a\0b"]))
        .unwrap_err();
    assert!(err.starts_with("args[2] contains a NUL character"), "{err}");
}

#[test]
fn check_refuses_scripts_that_are_missing_or_not_files() {
    let f = Fixture::new();
    fs::create_dir(f.workspace().join("folder.py")).unwrap();
    assert_eq!(
        f.check("task:success", json!(["workspace/nope.py"])),
        Err("Script workspace/nope.py not found in the workspace".into())
    );
    let err = f.check("task:success", json!(["folder.py"])).unwrap_err();
    assert!(err.starts_with("Script folder.py is a folder"), "{err}");
    let err = f.check("task:success", json!(["workspace"])).unwrap_err();
    assert!(err.starts_with("Script workspace is a folder"), "{err}");
}

#[test]
fn check_refuses_paths_that_leave_the_workspace() {
    let f = Fixture::new();
    // A real file next to the workspace, so only the escape can be the reason.
    fs::write(f.dir.path().join("x.py"), "").unwrap();
    f.script("test.py", "");
    assert_eq!(
        f.check("task:success", json!(["../x.py"])),
        Err("Script ../x.py is outside the workspace".into())
    );
    let err = f
        .check("task:success", json!(["workspace/../x.py"]))
        .unwrap_err();
    assert!(err.contains("outside the workspace"), "{err}");
    let err = f
        .check("task:success", json!(["sub/../test.py"]))
        .unwrap_err();
    assert!(err.contains("outside the workspace"), "{err}");

    let absolute = f.workspace().join("test.py");
    let err = f
        .check("task:success", json!([absolute.to_str().unwrap()]))
        .unwrap_err();
    assert!(
        err.contains("must be a path relative to the workspace"),
        "{err}"
    );
}

#[test]
fn check_refuses_symlinks_that_leave_the_workspace_and_follows_those_inside() {
    let f = Fixture::new();
    let outside = f.dir.path().join("secret.py");
    fs::write(&outside, "").unwrap();
    f.script("real.py", "");
    symlink(&outside, &f.workspace().join("link.py"));
    symlink(f.dir.path(), &f.workspace().join("up"));
    symlink(
        &f.workspace().join("real.py"),
        &f.workspace().join("alias.py"),
    );

    assert_eq!(
        f.check("task:success", json!(["link.py"])),
        Err("Script link.py is outside the workspace".into())
    );
    assert_eq!(
        f.check("task:success", json!(["up/secret.py"])),
        Err("Script up/secret.py is outside the workspace".into())
    );
    assert_eq!(f.check("task:success", json!(["alias.py"])), Ok(()));
}

#[test]
fn check_refuses_an_extension_without_an_interpreter() {
    let f = Fixture::new();
    f.script("tool.rb", "");
    f.script("noext", "");
    f.script("ok.sh", "");
    let err = f.check("task:success", json!(["tool.rb"])).unwrap_err();
    assert!(err.contains("no interpreter for .rb"), "{err}");
    let err = f.check("task:success", json!(["noext"])).unwrap_err();
    assert!(err.contains("no extension"), "{err}");
    assert_eq!(f.check("task:success", json!(["ok.sh"])), Ok(()));
}

#[tokio::test]
async fn start_checks_the_script_again() {
    let f = Fixture::new();
    f.script("gone.py", "");
    assert_eq!(f.check("task:success", json!(["gone.py"])), Ok(()));
    fs::remove_file(f.workspace().join("gone.py")).unwrap();
    let slot = f.executor.acquire_slot().await;
    let err = f
        .executor
        .start(request(json!(["gone.py"]), None), slot)
        .unwrap_err();
    assert_eq!(err.to_string(), "Script gone.py not found in the workspace");
}

#[test]
fn a_missing_workspace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ExecutorSettings {
        workspace: dir.path().join("absent"),
        python: "python3".into(),
        interpreters: BTreeMap::new(),
        max_workers: 1,
        output_limit: 1024,
        kill_grace: Duration::from_secs(1),
        nice: 0,
        pass_env: vec!["PATH".to_owned()],
        python_mode: tickd::executor::PythonMode::Exec,
        preload: Vec::new(),
    };
    assert!(Executor::new(settings).is_err());
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

// ---- the file that was checked is the file that runs -------------------------------------------

/// While a thread swaps each script between a regular file and a symbolic link to a file
/// outside the workspace (one atomic rename each time), runs start again and again: none may
/// run the outside file; a run that meets the link fails to start, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_swapped_for_a_link_to_an_outside_file_never_runs_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let f = Fixture::with(|s| s.max_workers = 6);
    let ws = f.workspace();
    for (ext, outside, inside) in [
        ("py", "print('OUTSIDE')\n", "print('inside')\n"),
        ("sh", "echo OUTSIDE\n", "echo inside\n"),
    ] {
        fs::write(f.dir.path().join(format!("outside.{ext}")), outside).unwrap();
        f.script(&format!(".inside.{ext}"), inside);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (ws, outside, stop, swaps) = (
            ws.clone(),
            f.dir.path().to_owned(),
            Arc::clone(&stop),
            Arc::clone(&swaps),
        );
        std::thread::spawn(move || {
            let tmp = |kind: &str, ext: &str| ws.join(format!(".{kind}.{ext}.tmp"));
            while !stop.load(Ordering::Relaxed) {
                for ext in ["py", "sh"] {
                    fs::copy(ws.join(format!(".inside.{ext}")), tmp("file", ext)).unwrap();
                    let _ = fs::remove_file(tmp("link", ext));
                    symlink(&outside.join(format!("outside.{ext}")), &tmp("link", ext));
                }
                // As long a file as a link, each moment a rename.
                for kind in ["file", "link"] {
                    for ext in ["py", "sh"] {
                        fs::rename(tmp(kind, ext), ws.join(format!("swap.{ext}"))).unwrap();
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while swaps.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    let mut waits = Vec::new();
    let mut refused = Vec::new();
    // At least 120 starts spread over at least 60 swaps, so that starts meet every moment.
    let mut starts = 0;
    while starts < 120 || (swaps.load(Ordering::Relaxed) < 60 && starts < 2000) {
        let script = if starts % 2 == 0 {
            "swap.py"
        } else {
            "swap.sh"
        };
        let slot = f.executor.acquire_slot().await;
        match f.executor.start(request(json!([script]), None), slot) {
            Ok(running) => waits.push(tokio::spawn(running.wait())),
            Err(error) => refused.push(error.to_string()),
        }
        starts += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut ran_inside = 0;
    let mut ran_outside = 0;
    for wait in waits {
        let outcome = guard(wait).await.unwrap();
        if outcome.stdout.contains("OUTSIDE") {
            ran_outside += 1;
        } else if outcome.stdout == "inside\n" {
            ran_inside += 1;
        } else {
            panic!("a run neither inside nor outside: {outcome:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();

    let at_open = refused
        .iter()
        .filter(|r| r.contains("symbolic link"))
        .count();
    println!(
        "{ran_inside} runs inside, {ran_outside} outside, {} refused ({at_open} at the open), \
         {} swaps",
        refused.len(),
        swaps.load(Ordering::Relaxed)
    );
    assert_eq!(ran_outside, 0, "runs of the outside file");
    assert!(ran_inside > 0, "no run started: {refused:?}");
    for reason in &refused {
        assert!(
            reason.ends_with("is outside the workspace") || reason.contains("symbolic link"),
            "{reason}"
        );
    }
}
