//! How long starting a script takes, and how much CPU a run costs, through the executor as a
//! run does (the open script, the clean environment, its own process group): 200 runs of
//! each script one after the other, with `executor.python_mode` `exec` (an interpreter per
//! run, under its supervisor) and `fork` (forked from the fork server, for Python runs).
//! Prints p50, p99 and max of `start` (until the interpreter runs, or the fork server has
//! forked) and of the whole run, and the machine's CPU time per run (every process's, from
//! `/proc/stat`: the daemon's, the supervisor's or fork server's, the script's), so run it on
//! an otherwise idle machine; in `fork` mode also the fork server's resident memory before
//! and after the runs (it must not grow with them).
//!
//! `cargo bench --bench spawn`. A figure, not a check: compare two commits on one host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, json};
use tickd::executor::{Executor, ExecutorSettings, PythonMode, RunRequest};

const RUNS: usize = 200;

#[tokio::main]
async fn main() {
    tickd::executor::supervise_with(env!("CARGO_BIN_EXE_tickd"));
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    std::fs::create_dir(dir.path().join("stamps")).unwrap();
    std::fs::write(workspace.join("true.sh"), "exit 0\n").unwrap();
    std::fs::write(workspace.join("true.py"), "pass\n").unwrap();
    let stamp = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/workspace/stamp.py");
    std::fs::copy(stamp, workspace.join("stamp.py")).unwrap();
    for mode in [PythonMode::Exec, PythonMode::Fork] {
        let executor = Executor::new(ExecutorSettings {
            workspace: workspace.clone(),
            python: "python3".into(),
            interpreters: [("sh".to_owned(), "/bin/sh".to_owned())].into(),
            max_workers: 1,
            output_limit: 64 * 1024,
            kill_grace: Duration::from_secs(1),
            nice: 0,
            pass_env: vec!["PATH".to_owned()],
            python_mode: mode,
            preload: Vec::new(),
        })
        .unwrap();
        let scripts: &[&str] = match mode {
            PythonMode::Exec => &["true.sh", "true.py", "stamp.py"],
            PythonMode::Fork => &["true.py", "stamp.py"],
        };
        for script in scripts {
            // The fork server starts with the first run: not counted.
            run_once(&executor, script, "warm-up").await;
            let (mut starts, mut runs) = (Vec::new(), Vec::new());
            let busy_before = busy_seconds();
            let rss_before = fork_server_rss();
            for i in 0..RUNS {
                let begin = Instant::now();
                let started = run_once(&executor, script, &format!("run-{i}")).await;
                starts.push(started);
                runs.push(begin.elapsed());
            }
            let cpu_ms = (busy_seconds() - busy_before) * 1000.0 / RUNS as f64;
            for (what, times) in [("start", &mut starts), ("whole run", &mut runs)] {
                times.sort();
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                println!(
                    "{mode:?} {script} {what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    ms(times[RUNS / 2]),
                    ms(times[RUNS * 99 / 100]),
                    ms(times[RUNS - 1])
                );
            }
            println!("{mode:?} {script} CPU per run (every process): {cpu_ms:.2} ms");
            if let (Some(before), Some(after)) = (rss_before, fork_server_rss()) {
                println!(
                    "{mode:?} {script} fork server resident: {before} KiB before, {after} KiB \
                     after {RUNS} runs"
                );
            }
        }
    }
}

/// One run of `script`, waited for; answers how long its start took.
async fn run_once(executor: &Executor, script: &str, run_id: &str) -> Duration {
    let request = RunRequest {
        job_id: "bench".into(),
        run_id: run_id.into(),
        func: "task:run_script".into(),
        args: vec![json!(script), json!("bench")],
        kwargs: Map::new(),
        scheduled_at: None,
        not_before: None,
        timeout: None,
    };
    let slot = executor.acquire_slot().await;
    let begin = Instant::now();
    let running = executor.start(request, slot).unwrap();
    let started = begin.elapsed();
    running.wait().await;
    started
}

/// The resident memory (KiB) of this process's fork server, when it has one.
fn fork_server_rss() -> Option<u64> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let parent = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.to_owned();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            if parent != me || !String::from_utf8_lossy(&cmdline).contains("tickd's fork server") {
                return None;
            }
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
}

/// The CPU time every process has used since boot (`/proc/stat`'s first line: user, nice,
/// system, irq, softirq and steal time).
fn busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat.lines().next().unwrap();
    let fields: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap())
        .collect();
    let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7];
    // USER_HZ, as /proc/stat counts (100 on Linux's every common configuration).
    busy / 100.0
}
