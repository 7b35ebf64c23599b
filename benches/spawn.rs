//! How long starting a script takes, through the executor as a run does (the supervisor, the
//! open script, the clean environment): 200 runs of a trivial shell and Python script one
//! after the other; prints p50, p99 and max of `start` (the spawn, until the supervisor says
//! the interpreter started; it holds a blocking thread) and of the whole run.
//!
//! `cargo bench --bench spawn`. A figure, not a check: compare two commits on one host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Map, json};
use tickd::executor::{Executor, ExecutorSettings, RunRequest};

const RUNS: usize = 200;

#[tokio::main]
async fn main() {
    tickd::executor::supervise_with(env!("CARGO_BIN_EXE_tickd"));
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    std::fs::write(workspace.join("true.sh"), "exit 0\n").unwrap();
    std::fs::write(workspace.join("true.py"), "pass\n").unwrap();
    let executor = Executor::new(ExecutorSettings {
        workspace,
        python: "python3".into(),
        interpreters: [("sh".to_owned(), "/bin/sh".to_owned())].into(),
        max_workers: 1,
        output_limit: 64 * 1024,
        kill_grace: Duration::from_secs(1),
        nice: 0,
        pass_env: vec!["PATH".to_owned()],
    })
    .unwrap();
    for script in ["true.sh", "true.py"] {
        let (mut starts, mut runs) = (Vec::new(), Vec::new());
        for i in 0..RUNS {
            let request = RunRequest {
                job_id: "bench".into(),
                run_id: format!("run-{i}"),
                func: "task:run_script".into(),
                args: vec![json!(script)],
                kwargs: Map::new(),
                scheduled_at: None,
                timeout: None,
            };
            let slot = executor.acquire_slot().await;
            let begin = Instant::now();
            let running = executor.start(request, slot).unwrap();
            starts.push(begin.elapsed());
            running.wait().await;
            runs.push(begin.elapsed());
        }
        for (what, times) in [("start", &mut starts), ("whole run", &mut runs)] {
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{script} {what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                ms(times[RUNS / 2]),
                ms(times[RUNS * 99 / 100]),
                ms(times[RUNS - 1])
            );
        }
    }
}
