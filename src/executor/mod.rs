//! Executor: runs a job's script as a subprocess, confined to `workspace/` (CONTRACT §4).
//!
//! - `workspace.rs`: which task and script a job names, checked at add time and at start.
//! - `open.rs`: the checked script opened once, without following links; that file runs.
//! - `program.rs`: the interpreters, and how each is told to run the open file.
//! - `reference.rs`: a function job's `module:callable`, confined to the workspace.
//! - `call.rs`: how Python is told to call it, and the value it returns.
//! - `inspect.rs`: its module read by Python's parser when the job is added, never run.
//! - `fork.rs`, `zygote.py`: warm starts, Python runs forked from one started interpreter.
//! - `supervisor.rs`: the tickd binary again, leading each script's group, killing it when
//!   the daemon dies.
//! - `process.rs`: a started script, its process group, timeouts and stops.
//! - `capture.rs`: bounded capture of stdout and stderr.
//! - `live.rs`: a running script's output for its followers, as it is read.
//! - `environment.rs`: the daemon's variables a script gets (`pass_env`), never tickd's own.
//! - `priority.rs`: scripts run a few nice levels below the daemon.
//! - `scripts.rs`: the scripts a job may name, listed for the console.
//!
//! The executor never decides *when* to run: the scheduler does, and hands it a slot from the
//! bounded pool plus a [`RunRequest`]. It reads the wall clock only to stamp `finished_at`.

mod call;
mod capture;
mod environment;
mod fork;
mod inspect;
mod live;
mod open;
mod priority;
mod process;
mod program;
mod reference;
mod scripts;
mod supervisor;
mod workspace;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::trigger::isoformat;

pub use call::RESULT_LIMIT;
pub use live::{
    CHUNK_MAX, FEED_CAPACITY, LiveEnd, LiveEvent, LiveOutput, MAX_WATCHERS, OutputStream,
    TooManyWatchers, Watch,
};
pub use process::{RunningScript, StopHandle};
pub use scripts::{MAX_ENTRIES as MAX_SCRIPT_ENTRIES, ScriptList};
use supervisor::Heard;
pub use supervisor::{main_if_asked as supervise_if_asked, supervise_with};
use workspace::{Invocation, Workspace};

/// The longest a start waits for the supervisor to say whether the interpreter started; only
/// an `exec` stuck on the file system takes more than milliseconds.
const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(10);

/// The built-in task names a job's `func` may hold.
pub const TASKS: [&str; 2] = ["task:success", "task:run_script"];

/// Whether `func` is a function job's (`module:callable`, `reference.rs`) rather than one of
/// the built-in tasks, which run a script.
pub fn runs_a_function(func: &str) -> bool {
    !TASKS.contains(&func)
}

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
    /// Nice levels scripts run below the daemon (default 5; 0 keeps the daemon's).
    pub nice: i32,
    /// The daemon's environment variables scripts get: names, or prefixes ending in `*`
    /// (`LC_*`). tickd's own `TICKD_*` never pass, whatever this says.
    pub pass_env: Vec<String>,
    /// How Python runs start: a new interpreter each (`exec`, the default), or a fork of
    /// one started at boot (`fork.rs`).
    pub python_mode: PythonMode,
    /// Modules the fork server imports when it starts (`fork` only).
    pub preload: Vec<String>,
}

/// How Python runs start (`executor.python_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PythonMode {
    /// `python3 -u` for each run, under its supervisor.
    #[default]
    Exec,
    /// A fork of the fork server for each run.
    Fork,
}

/// Why a job's script cannot be run: whose fault it is decides what the client hears, so
/// each cause has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// The job cannot run as it is written: an unknown task, a script that is missing, outside
    /// the workspace or not a regular file, no interpreter for its extension, an argument no
    /// program can receive. The client's to fix (400); `Display` is the text the API answers
    /// with and the run's reason.
    #[error("{0}")]
    Invalid(String),
    /// `[executor]` settings that cannot work, found at start-up: the daemon does not start.
    #[error("{0}")]
    Settings(String),
    /// The script could not be started for a reason of the server's: its interpreter is gone
    /// since start-up, the process could not be created, its supervisor failed (500).
    /// `Display` is the cause in words for the run's owner, without the OS's text or paths of
    /// the server's; `detail` has those, for the log.
    #[error("{fault}")]
    CannotStart { fault: StartFault, detail: String },
}

impl ExecutorError {
    pub(crate) fn cannot_start(fault: StartFault, detail: impl Into<String>) -> ExecutorError {
        ExecutorError::CannotStart {
            fault,
            detail: detail.into(),
        }
    }
}

/// Why the server could not start a script; `Display` is what its run's reason says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartFault {
    /// The interpreter was found at start-up and is gone, or what it needs to start is.
    #[error("its interpreter was not found")]
    InterpreterMissing,
    /// The interpreter is there but cannot be executed (permissions, not a program).
    #[error("its interpreter could not be run")]
    InterpreterUnusable,
    /// The system refused a new process or descriptor: too many processes or open files, or
    /// no memory.
    #[error("the server could not create its process")]
    NoResources,
    /// tickd's own part failed: the supervisor could not be run or ended without a word, or
    /// the thread that starts scripts failed.
    #[error("tickd's supervisor failed to start it")]
    Supervisor,
}

impl StartFault {
    /// What a failure with the OS error `errno` to make the supervisor's process means.
    fn of_process(errno: Option<i32>) -> StartFault {
        match errno.map(rustix::io::Errno::from_raw_os_error) {
            Some(errno) if is_exhaustion(errno) => StartFault::NoResources,
            _ => StartFault::Supervisor,
        }
    }

    /// What an `exec` of the interpreter failing with the OS error `errno` means.
    fn of_interpreter(errno: Option<i32>) -> StartFault {
        use rustix::io::Errno;
        match errno.map(Errno::from_raw_os_error) {
            Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::NAMETOOLONG) => {
                StartFault::InterpreterMissing
            }
            Some(errno) if is_exhaustion(errno) => StartFault::NoResources,
            Some(_) => StartFault::InterpreterUnusable,
            None => StartFault::Supervisor,
        }
    }
}

/// Whether the OS refused for want of processes, descriptors or memory.
fn is_exhaustion(errno: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    matches!(
        errno,
        Errno::AGAIN | Errno::NOMEM | Errno::MFILE | Errno::NFILE | Errno::NOBUFS
    )
}

/// What a failed spawn of a script's supervisor means: arguments too long for any program
/// are the job's (the text is the one it always had); anything else is the server's.
fn spawn_failure(err: &std::io::Error, program: &str, job_id: &str) -> ExecutorError {
    if err.raw_os_error() == Some(rustix::io::Errno::TOOBIG.raw_os_error()) {
        return ExecutorError::Invalid(format!(
            "Cannot start {program} for job \"{job_id}\": {err}"
        ));
    }
    ExecutorError::cannot_start(
        StartFault::of_process(err.raw_os_error()),
        format!("cannot start its supervisor: {err}"),
    )
}

/// How long a start waits to hear that the run started: [`HANDSHAKE_PATIENCE`], or the run's
/// timeout when shorter (past it, `wait` ends the run as timed out).
fn handshake_patience(request: &RunRequest) -> Duration {
    request
        .timeout
        .map_or(HANDSHAKE_PATIENCE, |t| t.min(HANDSHAKE_PATIENCE))
}

/// What the supervisor's word means for a start: `Ok` when it goes on.
fn handshake_outcome(heard: Heard) -> Result<(), ExecutorError> {
    match heard {
        // No word in time: the run's timeout and stop requests hold from here, as for any
        // started run; if the start failed after all, the run ends as the supervisor exits
        // (code 127).
        Heard::Started | Heard::Late => Ok(()),
        Heard::NotStarted { errno, message } => Err(ExecutorError::cannot_start(
            StartFault::of_interpreter(errno),
            message,
        )),
        Heard::Failed(why) => Err(ExecutorError::cannot_start(
            StartFault::Supervisor,
            format!("its supervisor failed: {why}"),
        )),
    }
}

/// One execution to start.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub job_id: String,
    pub run_id: String,
    pub func: String,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
    pub scheduled_at: Option<DateTime<FixedOffset>>,
    /// Not to be started before this: a fire time the scheduler claimed ahead. The start is
    /// made ready (the script opened, the request written) and then waits for it, so that
    /// the process is there at that instant.
    pub not_before: Option<std::time::Instant>,
    pub timeout: Option<Duration>,
}

/// Sleeps the calling (blocking) thread until `not_before`, if it is to come: `nanosleep`
/// ends within tens of microseconds of it.
fn wait_for(not_before: Option<std::time::Instant>) {
    if let Some(at) = not_before {
        let rest = at.saturating_duration_since(std::time::Instant::now());
        if !rest.is_zero() {
            std::thread::sleep(rest);
        }
    }
}

/// How a run ended: the executor ends runs as `Succeeded`, `Failed`, `TimedOut`,
/// `Cancelled` or `Interrupted`.
pub use crate::job::RunStatus;

/// The end of a run, with its bounded output.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    /// A function job's return value as JSON text ([`RESULT_LIMIT`] bytes at most); `None`
    /// for a script, or a call that did not return.
    pub result: Option<String>,
    /// Why the run's end could not be watched (the fork server stopped during it), when so:
    /// the run's reason.
    pub lost: Option<String>,
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
    _permit: OwnedSemaphorePermit,
}

/// Runs scripts in a bounded pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: ExecutorSettings,
    workspace: Workspace,
    /// `max_workers` permits; a `Slot` owns one for a run's whole life. Never closed.
    slots: Arc<Semaphore>,
    /// The nice value scripts are given once started; `None` keeps the daemon's.
    script_priority: Option<i32>,
    /// The daemon's variables that `pass_env` names, read once.
    passed_env: Vec<(OsString, OsString)>,
    /// The daemon's `PATH`, where interpreters named without a `/` are found.
    search_path: Option<OsString>,
    /// Function jobs' modules read at once when added (`inspect.rs`).
    inspections: Semaphore,
    /// The fork server Python runs are forked from, in `fork` mode.
    forks: Option<fork::ForkServer>,
}

impl Executor {
    /// # Errors
    /// [`ExecutorError::Settings`]: the workspace folder does not exist, a configured
    /// interpreter cannot be found, or `max_workers` is 0 (no run could ever start).
    pub fn new(settings: ExecutorSettings) -> Result<Executor, ExecutorError> {
        let workspace = Workspace::open(&settings.workspace)?;
        let search_path = std::env::var_os("PATH");
        program::check_all(
            &settings.python,
            &settings.interpreters,
            workspace.root(),
            search_path.as_deref(),
        )?;
        if settings.max_workers == 0 || settings.max_workers > Semaphore::MAX_PERMITS {
            return Err(ExecutorError::Settings(format!(
                "max_workers must be between 1 and {}, not {}",
                Semaphore::MAX_PERMITS,
                settings.max_workers
            )));
        }
        let slots = Arc::new(Semaphore::new(settings.max_workers));
        let settings = ExecutorSettings {
            workspace: workspace.root().to_path_buf(),
            ..settings
        };
        let script_priority = priority::script_priority(settings.nice);
        let passed_env = environment::passed(&settings.pass_env, std::env::vars_os());
        let forks = match settings.python_mode {
            PythonMode::Exec => None,
            PythonMode::Fork => {
                let python =
                    program::find(&settings.python, workspace.root(), search_path.as_deref())
                        .ok_or_else(|| {
                            ExecutorError::Settings(format!(
                                "python = {:?} is not found",
                                settings.python
                            ))
                        })?;
                Some(fork::ForkServer::new(
                    python,
                    settings.preload.clone(),
                    settings.max_workers.min(fork::SPARES_MAX),
                    script_priority,
                    passed_env.clone(),
                ))
            }
        };
        Ok(Executor {
            inner: Arc::new(Inner {
                settings,
                workspace,
                slots,
                script_priority,
                passed_env,
                search_path,
                inspections: Semaphore::new(inspect::AT_ONCE),
                forks,
            }),
        })
    }

    /// Checks at add time that `func` is a known task and `args[0]` names a script inside the
    /// workspace. Texts: `Error resolving reference <func>: ...`, `Invalid reference`, a clear
    /// message for a missing or escaping script.
    ///
    /// # Errors
    /// [`ExecutorError::Invalid`] when the job could not run.
    pub fn check(&self, func: &str, args: &[Value]) -> Result<(), ExecutorError> {
        self.invocation(func, args).map(drop)
    }

    /// For a function job, what [`Executor::check`] cannot see: whether its module compiles
    /// and defines the callable, read by Python's parser without running the module
    /// (`inspect.rs`). Anything else passes.
    ///
    /// # Errors
    /// [`ExecutorError::Invalid`] as [`Executor::check`], or naming what the module lacks.
    pub async fn check_function(&self, func: &str) -> Result<(), ExecutorError> {
        if !runs_a_function(func) {
            return Ok(());
        }
        let settings = &self.inner.settings;
        let reference = reference::resolve(&self.inner.workspace, func)?;
        let root = self.inner.workspace.root();
        // A Python gone since start-up is the run's to report, not the add's.
        let Some(python) = program::find(&settings.python, root, self.inner.search_path.as_deref())
        else {
            return Ok(());
        };
        inspect::check(&python, &reference, func, &self.inner.inspections).await
    }

    /// In `fork` mode, starts the fork server now, at the daemon's start, rather than with
    /// the first Python run: that run is then as quick as the rest, and a module of
    /// `preload` that does not import is logged at once. A server that cannot start is
    /// logged; each run tries again.
    pub fn warm_up(&self) {
        if let Some(forks) = &self.inner.forks
            && let Err(why) = forks.start()
        {
            tracing::warn!("{why}; each Python run will try again");
        }
    }

    /// Waits for a free slot in the pool (`max_workers`).
    pub async fn acquire_slot(&self) -> Slot {
        match Arc::clone(&self.inner.slots).acquire_owned().await {
            Ok(permit) => Slot { _permit: permit },
            // The semaphore is private to `Inner` and nothing closes it.
            Err(_closed) => unreachable!("the executor's pool is never closed"),
        }
    }

    /// A slot if one is free now.
    pub fn try_acquire_slot(&self) -> Option<Slot> {
        Arc::clone(&self.inner.slots)
            .try_acquire_owned()
            .ok()
            .map(|permit| Slot { _permit: permit })
    }

    /// Starts the script (no shell, own process group, stdin null, piped output) holding
    /// `slot` until it ends, and answers once the interpreter is running. The task and script
    /// are checked again: the file may have changed since the job was added. Must be called
    /// inside a Tokio runtime; it blocks the calling thread until the interpreter has started
    /// (see [`Executor::launch`]).
    ///
    /// The script is opened here, once, and the interpreter runs that open file ([`open`]);
    /// it runs under a supervisor that leads its process group, kills the group if the
    /// daemon dies, and says whether the interpreter started ([`supervisor`]). The script's
    /// environment is the daemon's variables that `pass_env` names (never tickd's own
    /// `TICKD_*`), plus `TICKD_JOB_ID`, `TICKD_RUN_ID`, `TICKD_SCHEDULED_AT` (ISO 8601 with
    /// offset, empty when unscheduled), `TICKD_KWARGS` (the kwargs as a JSON object) and
    /// `TICKD_SCRIPT` (the script's canonical path). Its working directory is the workspace.
    ///
    /// # Errors
    /// [`ExecutorError::Invalid`] when the job's script cannot be resolved or opened, or its
    /// arguments are more than a program can receive; [`ExecutorError::CannotStart`] when the
    /// interpreter is gone or cannot be run, or the process could not be created.
    pub fn start(&self, request: RunRequest, slot: Slot) -> Result<RunningScript, ExecutorError> {
        let root = self.inner.workspace.root();
        let invocation = self.invocation(&request.func, &request.args)?;
        if invocation.python
            && let Some(forks) = &self.inner.forks
        {
            // The fork server's Python was found when it started: no search here.
            let file = open::script(root, &invocation.script, &invocation.given)?;
            return self.fork(forks, request, &invocation, file, slot);
        }
        let job_id = &request.job_id;
        let gone = || {
            ExecutorError::cannot_start(
                StartFault::InterpreterMissing,
                format!(
                    "cannot start {}: it is no longer on PATH or in the workspace",
                    invocation.program
                ),
            )
        };
        // Found on the daemon's PATH, as it was when scripts shared the daemon's environment.
        let program = program::find(&invocation.program, root, self.inner.search_path.as_deref())
            .ok_or_else(gone)?;
        let file = open::script(root, &invocation.script, &invocation.given)?;
        let argv = match &invocation.call {
            Some(call) => call::argv(&program, &call.reference, &call.args, root),
            None => program::argv(
                &program,
                invocation.python,
                &invocation.script,
                &invocation.args,
            ),
        };
        let environment = self.environment(&request, &invocation);
        let mut passed = vec![file];
        // A call's return value comes back in a file of its own.
        let result = match invocation.call {
            Some(_) => {
                let (kept, given) = call::result_files()?;
                passed.push(given);
                Some(kept)
            }
            None => None,
        };
        let (mut command, handshake) =
            supervisor::command(&argv, passed, self.inner.script_priority).map_err(|errno| {
                ExecutorError::cannot_start(
                    StartFault::of_process(Some(errno.raw_os_error())),
                    format!("cannot pass the script on: {}", std::io::Error::from(errno)),
                )
            })?;
        command
            .current_dir(root)
            .env_clear()
            .envs(environment)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        wait_for(request.not_before);
        let spawned = command.spawn();
        // It holds the supervisor's end of the handshake: from now on only the supervisor
        // does, so its end, however it comes, is heard.
        drop(command);
        let child = spawned.map_err(|err| spawn_failure(&err, &invocation.program, job_id))?;
        // Present until the child is reaped, and only `RunningScript` reaps it.
        let Some(pid) = child.id() else {
            return Err(ExecutorError::cannot_start(
                StartFault::Supervisor,
                "its supervisor exited before it could be watched",
            ));
        };
        // Built first, so that its start instant is the spawn's; the log lines come after.
        let script =
            RunningScript::new(child, pid, self.bounds(&request), slot).with_result(result);
        let patience = handshake_patience(&request);
        let heard = handshake.wait(patience);
        if heard == Heard::Late {
            tracing::warn!(
                job_id = %job_id,
                run_id = %request.run_id,
                pid,
                "the supervisor did not say within {} s whether {} started; the run goes on \
                 as started",
                patience.as_secs_f64(),
                program.display()
            );
        }
        // An error drops `script`, which kills what is left of the group and frees the slot.
        handshake_outcome(heard)?;
        // The scheduler logs the run's start, in APScheduler's words; this is how.
        tracing::debug!(
            job_id = %job_id,
            run_id = %request.run_id,
            pid,
            program = %program.display(),
            script = %invocation.script.display(),
            args = ?invocation.args,
            "started a script"
        );
        Ok(script)
    }

    /// [`Executor::start`] on one of Tokio's blocking threads.
    ///
    /// Creating a process blocks the calling thread until the child has called `exec`: a few
    /// hundred µs on an idle machine, milliseconds once the scripts started a moment earlier
    /// compete for the cores. On a runtime worker that would hold up every task queued behind
    /// it, the other runs due in the same second among them, so that ten runs due together
    /// started one after the other; here each spawn waits only for a core. The wait for the
    /// supervisor's word holds the thread but no core.
    ///
    /// # Errors
    /// As [`Executor::start`]; also when the blocking thread could not run the spawn.
    pub async fn launch(
        &self,
        request: RunRequest,
        slot: Slot,
    ) -> Result<RunningScript, ExecutorError> {
        let executor = self.clone();
        tokio::task::spawn_blocking(move || executor.start(request, slot))
            .await
            .map_err(|err| {
                ExecutorError::cannot_start(
                    StartFault::Supervisor,
                    format!("the thread that starts it failed: {err}"),
                )
            })?
    }

    /// The scripts a job may name (runnable files inside the workspace), at most `limit`;
    /// reads the file system, so call it off the async threads (`spawn_blocking`).
    pub fn scripts(&self, limit: usize) -> ScriptList {
        let settings = &self.inner.settings;
        scripts::list(
            &self.inner.workspace,
            &settings.python,
            &settings.interpreters,
            limit,
        )
    }

    /// A run's whole environment: the daemon's variables `pass_env` names, then tickd's
    /// `TICKD_JOB_ID`, `TICKD_RUN_ID`, `TICKD_SCHEDULED_AT`, `TICKD_KWARGS`, `TICKD_SCRIPT`.
    fn environment(
        &self,
        request: &RunRequest,
        invocation: &Invocation,
    ) -> Vec<(OsString, OsString)> {
        let scheduled_at = request
            .scheduled_at
            .map(|at| isoformat(&at))
            .unwrap_or_default();
        let mut environment = self.inner.passed_env.clone();
        environment.extend(
            [
                ("TICKD_JOB_ID", OsString::from(&request.job_id)),
                ("TICKD_RUN_ID", OsString::from(&request.run_id)),
                ("TICKD_SCHEDULED_AT", OsString::from(scheduled_at)),
                (
                    "TICKD_KWARGS",
                    OsString::from(Value::Object(request.kwargs.clone()).to_string()),
                ),
                ("TICKD_SCRIPT", invocation.script.clone().into_os_string()),
            ]
            .map(|(name, value)| (OsString::from(name), value)),
        );
        environment
    }

    /// What bounds `request`'s run: its timeout, and the daemon's kill grace and output limit.
    fn bounds(&self, request: &RunRequest) -> process::Bounds {
        process::Bounds {
            timeout: request.timeout,
            kill_grace: self.inner.settings.kill_grace,
            output_limit: self.inner.settings.output_limit,
        }
    }

    /// [`Executor::start`] of a Python run in `fork` mode: forked by the fork server
    /// (`fork.rs`) with the environment, working directory, arguments and output pipes a
    /// started interpreter gets.
    fn fork(
        &self,
        forks: &fork::ForkServer,
        request: RunRequest,
        invocation: &Invocation,
        file: std::os::fd::OwnedFd,
        slot: Slot,
    ) -> Result<RunningScript, ExecutorError> {
        let root = self.inner.workspace.root();
        let no_resources = |err: rustix::io::Errno| {
            ExecutorError::cannot_start(
                StartFault::of_process(Some(err.raw_os_error())),
                format!("cannot make its pipes: {}", std::io::Error::from(err)),
            )
        };
        let (stdout_read, stdout_write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(no_resources)?;
        let (stderr_read, stderr_write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(no_resources)?;
        let text = |value: &std::ffi::OsStr| value.to_string_lossy().into_owned();
        let environment: serde_json::Map<String, Value> = self
            .environment(&request, invocation)
            .iter()
            .map(|(name, value)| (text(name), Value::String(text(value))))
            .collect();
        let mut body = serde_json::Map::new();
        body.insert(
            "path".into(),
            Value::String(text(invocation.script.as_os_str())),
        );
        body.insert("cwd".into(), Value::String(text(root.as_os_str())));
        body.insert("env".into(), Value::Object(environment));
        let mut files = vec![stdout_write, stderr_write, file];
        let mut result = None;
        match &invocation.call {
            None => {
                body.insert("mode".into(), "script".into());
                let argv = invocation
                    .args
                    .iter()
                    .map(|arg| Value::String(text(arg)))
                    .collect();
                body.insert("argv".into(), Value::Array(argv));
            }
            Some(call) => {
                body.insert("mode".into(), "call".into());
                body.insert("module".into(), call.reference.module.clone().into());
                body.insert("attribute".into(), call.reference.attribute.clone().into());
                body.insert("root".into(), Value::String(text(root.as_os_str())));
                body.insert("args".into(), Value::Array(call.args.clone()));
                body.insert("kwargs".into(), Value::Object(request.kwargs.clone()));
                body.insert("limit".into(), Value::from(RESULT_LIMIT));
                let (kept, given) = call::result_files()?;
                files.push(given);
                result = Some(kept);
            }
        }
        let patience = handshake_patience(&request);
        wait_for(request.not_before);
        let (pid, ended) = forks
            .fork(fork::ForkRequest { body, files }, patience)
            .map_err(|why| ExecutorError::cannot_start(StartFault::Supervisor, why))?;
        let pipe = |read: std::os::fd::OwnedFd| -> Result<process::Pipe, ExecutorError> {
            tokio::net::unix::pipe::Receiver::from_owned_fd(read)
                .map(|receiver| Box::new(receiver) as process::Pipe)
                .map_err(|err| {
                    ExecutorError::cannot_start(
                        StartFault::NoResources,
                        format!("cannot read its output: {err}"),
                    )
                })
        };
        let pipes = [pipe(stdout_read)?, pipe(stderr_read)?];
        let script = RunningScript::forked(ended, pipes, pid, self.bounds(&request), slot)
            .with_result(result);
        tracing::debug!(
            job_id = %request.job_id,
            run_id = %request.run_id,
            pid,
            script = %invocation.script.display(),
            "forked a Python run"
        );
        Ok(script)
    }

    fn invocation(&self, func: &str, args: &[Value]) -> Result<Invocation, ExecutorError> {
        let settings = &self.inner.settings;
        workspace::invocation(
            &self.inner.workspace,
            &settings.python,
            &settings.interpreters,
            func,
            args,
        )
    }
}
