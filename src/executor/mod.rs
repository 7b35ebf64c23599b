//! Executor: runs a job's script as a subprocess, confined to `workspace/` (CONTRACT §4).
//!
//! SKELETON: the public API below is the contract the scheduler codes against; the bodies are
//! filled in by the executor work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};

/// The built-in task names a job's `func` may hold.
pub const TASKS: [&str; 2] = ["task:success", "task:run_script"];

/// How scripts are run; built by the app from `[executor]` in the config.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Absolute path of the workspace folder; scripts must resolve inside it.
    pub workspace: PathBuf,
    /// Program that runs `.py` scripts (default `python3`).
    pub python: String,
    /// Extension (without dot) → program, besides `.py`.
    pub interpreters: BTreeMap<String, String>,
    /// Scripts running at once (default 10).
    pub max_workers: usize,
    /// Bytes of stdout and of stderr kept per run (the last N bytes; default 64 KiB).
    pub output_limit: usize,
    /// Time between SIGTERM and SIGKILL when a run is stopped (default 5 s).
    pub kill_grace: Duration,
}

/// Why a job's script cannot be run. `Display` is the text the API answers with (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExecutorError(pub String);

/// One execution to start.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub job_id: String,
    pub run_id: String,
    pub func: String,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
    pub scheduled_at: Option<DateTime<FixedOffset>>,
    pub timeout: Option<Duration>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Interrupted,
}

/// The end of a run, with its bounded output.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub finished_at: DateTime<Utc>,
}

/// A slot in the bounded pool; held for the whole run.
#[derive(Debug)]
pub struct Slot {
    _private: (),
}

/// Stops a running script from elsewhere (cancel, shutdown).
#[derive(Debug, Clone)]
pub struct StopHandle {
    _private: (),
}

impl StopHandle {
    /// SIGTERM to the script's process group, SIGKILL after `kill_grace`; the run ends with
    /// `status`.
    pub fn stop(&self, status: RunStatus) {
        let _ = status;
        todo!()
    }
}

/// A started script.
#[derive(Debug)]
pub struct RunningScript {
    _private: (),
}

impl RunningScript {
    /// The process id of the script (its process group leader).
    pub fn pid(&self) -> u32 {
        todo!()
    }
    /// A handle that stops this run.
    pub fn stop_handle(&self) -> StopHandle {
        todo!()
    }
    /// Waits for the end: exit, timeout (SIGTERM to the group, SIGKILL after kill_grace) or a
    /// stop. Never hangs on a grandchild that holds the output pipes open.
    pub async fn wait(self) -> RunOutcome {
        todo!()
    }
}

/// Runs scripts in a bounded pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Executor {
    _private: (),
}

impl Executor {
    /// # Errors
    /// The workspace folder does not exist.
    pub fn new(settings: ExecutorSettings) -> Result<Executor, ExecutorError> {
        let _ = settings;
        todo!()
    }

    /// Checks at add time that `func` is a known task and `args[0]` names a script inside the
    /// workspace. Texts: `Error resolving reference <func>: ...`, `Invalid reference`, a clear
    /// message for a missing or escaping script.
    ///
    /// # Errors
    /// When the job could not run.
    pub fn check(&self, func: &str, args: &[Value]) -> Result<(), ExecutorError> {
        let _ = (func, args);
        todo!()
    }

    /// Waits for a free slot in the pool (`max_workers`).
    pub async fn acquire_slot(&self) -> Slot {
        todo!()
    }

    /// A slot if one is free now.
    pub fn try_acquire_slot(&self) -> Option<Slot> {
        todo!()
    }

    /// Starts the script (no shell, own process group, stdin null, piped output) holding
    /// `slot` until it ends.
    ///
    /// # Errors
    /// The script cannot be resolved or the program cannot be spawned.
    pub fn start(&self, request: RunRequest, slot: Slot) -> Result<RunningScript, ExecutorError> {
        let _ = (request, slot);
        todo!()
    }
}
