//! Each script's supervisor: the tickd binary started again in a hidden mode as the leader of
//! the script's process group, so that scripts die with their daemon (issue 13, item 9).
//!
//! A daemon killed with SIGKILL cannot stop its scripts, and the kernel does not do it for
//! it: a script's process group outlives the daemon. So each script runs under a small process
//! that leads its group, starts the interpreter in it, and kills the whole group the moment the
//! daemon is gone. It knows that without polling: it holds the write ends of the pipes the
//! daemon reads the script's output from, and the kernel flags a pipe's write end (`POLLERR`)
//! once no reader is left, which happens when the daemon's process ends, however it ends.
//!
//! Not `PR_SET_PDEATHSIG`: the kernel sends it when the parent *thread* ends, and scripts are
//! started from Tokio's blocking threads, which end after ten idle seconds; and it can only be
//! set by the child itself, between fork and exec, which takes `unsafe` code tickd forbids.
//!
//! For everything else the supervisor is transparent. It ignores the signals the daemon sends
//! the group (SIGTERM at a timeout or a cancel, so the script has its grace) and dies with
//! SIGKILL like every member; it ends with the interpreter's exit code, or by the signal that
//! ended it, so the run records the same `exit_code` and `signal` as if there were none.
//!
//! The script arrives open on the supervisor's stdin ([`super::open`]); the interpreter gets it
//! as descriptor [`SCRIPT_FD`] and `/dev/null` as stdin. Only this child gets that descriptor:
//! the daemon's copy is close-on-exec, and the supervisor starts nothing else.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{FileType, fstat};
use rustix::process::{Resource, Rlimit, Signal, getpgrp, getpid, kill_current_process_group};

/// The hidden first argument that makes the tickd binary a supervisor.
const FLAG: &str = "--supervise-script";

/// The descriptor the interpreter reads the script from (`/proc/self/fd/3`).
pub(super) const SCRIPT_FD: i32 = 3;

/// The signals the supervisor outlives; the script gets them with the rest of its group.
const OUTLIVED: [i32; 7] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGQUIT,
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGUSR2,
    signal_hook::consts::SIGALRM,
];

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Names the tickd binary that supervises scripts, for a process that is not tickd itself
/// (tests: `env!("CARGO_BIN_EXE_tickd")`); the first call wins. Without it the executor starts
/// its own program again, `/proc/self/exe`, which is the running binary even if the file was
/// replaced by an upgrade since.
pub fn supervise_with(program: impl Into<PathBuf>) {
    let _ = PROGRAM.set(program.into());
}

fn program() -> &'static Path {
    PROGRAM
        .get()
        .map_or(Path::new("/proc/self/exe"), PathBuf::as_path)
}

/// The daemon's side: a command that runs `argv` (the interpreter and its arguments) under a
/// supervisor, with `script` as its stdin, lowering the run's group to `priority` (an
/// absolute nice value) once the interpreter is started. The caller adds the rest: the
/// process group, the environment, the working directory and the output pipes.
pub(super) fn command(
    argv: &[OsString],
    script: OwnedFd,
    priority: Option<i32>,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program());
    command
        .arg0("tickd")
        .arg(FLAG)
        .arg(priority.map_or_else(|| KEEP_PRIORITY.to_owned(), |p| p.to_string()))
        .args(argv)
        .stdin(Stdio::from(script));
    command
}

/// The priority argument that leaves the run's group at the daemon's priority.
const KEEP_PRIORITY: &str = "-";

/// The supervisor's side: when the process was started as one (its first argument is the
/// hidden flag), supervises the script and answers the exit code; `None` otherwise. Called
/// first thing in `main`, before any thread or runtime exists.
pub fn main_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(FLAG)) {
        return None;
    }
    let priority = args.next();
    let argv: Vec<OsString> = args.collect();
    let priority = priority
        .as_deref()
        .and_then(OsStr::to_str)
        .filter(|p| *p != KEEP_PRIORITY)
        .and_then(|p| p.parse::<i32>().ok());
    Some(match supervise(&argv, priority) {
        Ok(status) => end_like(status),
        // Read by whoever looks at the run: it goes to the script's stderr.
        Err((message, code)) => {
            eprintln!("tickd: {message}");
            ExitCode::from(code)
        }
    })
}

/// Starts `argv` with the script as descriptor 3 and waits for it, killing the group if the
/// daemon goes. Answers its exit status, or what to say and exit with.
///
/// The group is lowered to `priority` only once the interpreter is started: until then this
/// process and the interpreter's `exec` run at the daemon's priority, so that a run due among
/// many is not held up behind the scripts started a moment earlier (`priority.rs`).
fn supervise(argv: &[OsString], priority: Option<i32>) -> Result<ExitStatus, (String, u8)> {
    let internal = || {
        (
            format!("{FLAG} is how tickd starts each script; it is not meant to be run by hand"),
            2,
        )
    };
    // Killing "the current group" must never reach a group this process does not lead.
    if getpgrp() != getpid() {
        return Err(internal());
    }
    let stdin = std::io::stdin();
    let is_file = fstat(stdin.as_fd())
        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile);
    let (program, args) = argv.split_first().ok_or_else(internal)?;
    if !is_file {
        return Err(internal());
    }
    // `dup` takes the lowest free descriptor: 3, as only 0, 1 and 2 are open. Not close-on-exec.
    let script = rustix::io::dup(stdin.as_fd()).map_err(|e| (format!("{e}"), 126))?;
    if script.as_raw_fd() != SCRIPT_FD {
        return Err(internal());
    }
    let _ = rustix::thread::set_name(c"tickd-run");
    let ignored = Arc::new(AtomicBool::new(false));
    for signal in OUTLIVED {
        // A caught signal, unlike an ignored or blocked one, is back to its default in the
        // interpreter once it starts.
        signal_hook::flag::register(signal, Arc::clone(&ignored))
            .map_err(|e| (format!("cannot set up the script's supervisor: {e}"), 126))?;
    }
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| (format!("cannot start {}: {e}", program.display()), 127))?;
    drop(script);
    if let Some(priority) = priority {
        // A sandbox that forbids it leaves the script at the daemon's priority.
        let _ = rustix::process::setpriority_pgrp(None, priority);
    }
    std::thread::spawn(|| {
        if daemon_gone(None) {
            let _ = kill_current_process_group(Signal::KILL);
        }
    });
    let status = child
        .wait()
        .map_err(|e| (format!("cannot wait for the script: {e}"), 126))?;
    // The script ended, but helpers it left in the group may not have: the daemon kills them
    // when it reaps this process, unless it is gone too.
    if daemon_gone(Some(&Timespec::default())) {
        let _ = kill_current_process_group(Signal::KILL);
    }
    Ok(status)
}

/// Whether the daemon has closed its end of the output pipes (it has ended), waiting up to
/// `timeout` (`None`: until it happens). A stdout or stderr that is not a pipe never says so.
fn daemon_gone(timeout: Option<&Timespec>) -> bool {
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let mut fds = [
        PollFd::new(&stdout, PollFlags::empty()),
        PollFd::new(&stderr, PollFlags::empty()),
    ];
    loop {
        match poll(&mut fds, timeout) {
            Ok(_) => return fds.iter().any(|fd| fd.revents().contains(PollFlags::ERR)),
            // A signal the supervisor outlives interrupted the wait.
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

/// Ends this process the way `status` says the interpreter ended: with its exit code, or killed
/// by the same signal (without a core file: the interpreter wrote any there was).
fn end_like(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let signal = status.signal().unwrap_or(0);
    let no_core = Rlimit {
        current: Some(0),
        maximum: rustix::process::getrlimit(Resource::Core).maximum,
    };
    let _ = rustix::process::setrlimit(Resource::Core, no_core);
    // Restores the signal's default action (a terminating one, SIGPIPE included, which Rust
    // programs ignore) and raises it; it returns only for a signal it does not know.
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    ExitCode::from(u8::try_from(128 + signal).unwrap_or(255))
}
