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
//! The supervisor's stdin is a Unix socket, its end of a pair the daemon made for this run:
//! the daemon's word to it is the script, open ([`super::open`]) and passed as `SCM_RIGHTS`;
//! its word back is whether the interpreter started, and if not why (the [`Handshake`]). So the
//! daemon knows "could not be started" (its own fault, a 500 for run-now) from "ran and exited
//! 127" (the script's). It costs a socket pair and a message each way, and the daemon hears
//! the answer as soon as the interpreter's `exec` has succeeded: `std` reports a failed `exec`
//! from `spawn` itself.
//!
//! The interpreter gets the script as descriptor [`SCRIPT_FD`] (a function job's call, also
//! the file for its result as the next one) and `/dev/null` as stdin, so not the socket. Only
//! this child gets those descriptors: the daemon's copies of them and of both ends of the
//! socket are close-on-exec, and the supervisor starts nothing else.

use std::ffi::{OsStr, OsString};
use std::io::{IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{FileType, fstat};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::process::{Resource, Rlimit, Signal, getpgrp, getpid, kill_current_process_group};

/// The hidden first argument that makes the tickd binary a supervisor.
const FLAG: &str = "--supervise-script";

/// The descriptor the interpreter reads the script from (`/proc/self/fd/3`).
pub(super) const SCRIPT_FD: i32 = 3;

/// The most files passed to a run: its script (or module), and a call's result file.
const PASSED_MAX: usize = 2;

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
/// supervisor that gets `script`, lowering the run's group to `priority` (an absolute nice
/// value) once the interpreter is started; and the [`Handshake`] on which the supervisor will
/// say whether it started. The caller adds the rest: the process group, the environment, the
/// working directory and the output pipes.
///
/// The command holds the supervisor's end of the handshake: drop it once it has spawned, or a
/// supervisor that dies without a word is not heard of until the handshake's patience ends.
///
/// # Errors
/// No socket pair could be made or the script could not be put in it (the system is out of
/// descriptors or memory).
pub(super) fn command(
    argv: &[OsString],
    passed: Vec<OwnedFd>,
    priority: Option<i32>,
) -> rustix::io::Result<(tokio::process::Command, Handshake)> {
    let (daemon_end, supervisor_end) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let fds: Vec<BorrowedFd<'_>> = passed.iter().map(AsFd::as_fd).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(PASSED_MAX))];
    let mut rights = SendAncillaryBuffer::new(&mut space);
    rights.push(SendAncillaryMessage::ScmRights(&fds));
    // Queued in the socket: the supervisor takes it when it starts. One byte, as a message
    // with rights must carry some data.
    rustix::net::sendmsg(
        &daemon_end,
        &[IoSlice::new(&[0])],
        &mut rights,
        SendFlags::NOSIGNAL,
    )?;
    let mut command = tokio::process::Command::new(program());
    command
        .arg0("tickd")
        .arg(FLAG)
        .arg(priority.map_or_else(|| KEEP_PRIORITY.to_owned(), |p| p.to_string()))
        .args(argv)
        .stdin(Stdio::from(supervisor_end));
    Ok((command, Handshake(UnixStream::from(daemon_end))))
}

/// The supervisor's first byte when the interpreter started.
const STARTED: u8 = b'S';
/// The first byte when the interpreter could not be started; then its OS error number, a
/// space, and the message.
const NOT_STARTED: u8 = b'X';
/// The first byte when the supervisor failed before it tried; then the message.
const FAILED: u8 = b'F';
/// The most of a report the daemon reads.
const REPORT_LIMIT: usize = 4096;

/// The daemon's end of the channel on which a run's supervisor says whether the interpreter
/// started.
#[derive(Debug)]
pub(super) struct Handshake(UnixStream);

/// What the supervisor said.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Heard {
    /// The interpreter is running.
    Started,
    /// The interpreter could not be started: the OS error number, when there is one, and the
    /// supervisor's message (which names the program).
    NotStarted { errno: Option<i32>, message: String },
    /// The supervisor failed before it started the interpreter, or ended without a word.
    Failed(String),
    /// No word within the patience given: the supervisor may still be starting it.
    Late,
}

impl Handshake {
    /// Waits up to `patience` for the supervisor's word (it comes right after the
    /// interpreter's `exec`, or the failed one).
    pub(super) fn wait(self, patience: Duration) -> Heard {
        use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
        let mut socket = self.0;
        let deadline = Instant::now() + patience;
        let mut report = Vec::new();
        let mut chunk = [0; 512];
        let mut late = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                late = true;
                break;
            }
            match socket.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => report.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(err) if err.kind() == Interrupted => {}
                Err(err) if matches!(err.kind(), WouldBlock | TimedOut) => {
                    late = true;
                    break;
                }
                Err(err) => return Heard::Failed(format!("its report could not be read: {err}")),
            }
            // A start is one byte, said while the supervisor goes on; any other report ends
            // with its exit.
            if report.first() == Some(&STARTED) || report.len() >= REPORT_LIMIT {
                break;
            }
        }
        if late && report.is_empty() {
            return Heard::Late;
        }
        parse_report(&report)
    }
}

/// A report as read: up to the supervisor's exit, or its first byte for a start.
fn parse_report(report: &[u8]) -> Heard {
    let Some((&kind, rest)) = report.split_first() else {
        return Heard::Failed("it ended without a word".to_owned());
    };
    let rest = String::from_utf8_lossy(rest);
    match kind {
        STARTED => Heard::Started,
        NOT_STARTED => {
            let (errno, message) = rest.split_once(' ').unwrap_or(("", &rest));
            Heard::NotStarted {
                errno: errno.parse().ok(),
                message: message.to_owned(),
            }
        }
        FAILED => Heard::Failed(rest.into_owned()),
        _ => Heard::Failed(format!("it said something unexpected: {rest:?}")),
    }
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
        Err(failure) => {
            // The daemon hears it on the handshake, if it still listens; whoever reads the
            // run's output (or runs this by hand) on stderr.
            tell(&failure.report());
            eprintln!("tickd: {}", failure.message());
            ExitCode::from(failure.code())
        }
    })
}

/// Why the supervisor ends without the interpreter's exit status.
#[derive(Debug)]
enum Failure {
    /// Its own part failed: what to say, and the exit code.
    Own(String, u8),
    /// The interpreter could not be started (exit 127, as a shell's).
    NotStarted { errno: Option<i32>, message: String },
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Own(message, _) | Failure::NotStarted { message, .. } => message,
        }
    }

    fn code(&self) -> u8 {
        match self {
            Failure::Own(_, code) => *code,
            Failure::NotStarted { .. } => 127,
        }
    }

    /// The handshake's report of it.
    fn report(&self) -> Vec<u8> {
        match self {
            Failure::Own(message, _) => [&[FAILED], message.as_bytes()].concat(),
            Failure::NotStarted { errno, message } => {
                let errno = errno.map(|e| e.to_string()).unwrap_or_default();
                [&[NOT_STARTED], errno.as_bytes(), b" ", message.as_bytes()].concat()
            }
        }
    }
}

/// Says `report` to the daemon on the handshake (stdin). Nothing to do if that fails: the
/// daemon is gone, or this was started by hand.
fn tell(report: &[u8]) {
    let _ = rustix::net::send(std::io::stdin().as_fd(), report, SendFlags::NOSIGNAL);
}

/// Starts `argv` with the script as descriptor 3 and waits for it, killing the group if the
/// daemon goes. Answers its exit status, or why it ends without one.
///
/// The group is lowered to `priority` only once the interpreter is started: until then this
/// process and the interpreter's `exec` run at the daemon's priority, so that a run due among
/// many is not held up behind the scripts started a moment earlier (`priority.rs`).
fn supervise(argv: &[OsString], priority: Option<i32>) -> Result<ExitStatus, Failure> {
    let internal = || {
        Failure::Own(
            format!("{FLAG} is how tickd starts each script; it is not meant to be run by hand"),
            2,
        )
    };
    // Killing "the current group" must never reach a group this process does not lead.
    if getpgrp() != getpid() {
        return Err(internal());
    }
    let (program, args) = argv.split_first().ok_or_else(internal)?;
    let files = receive_files(std::io::stdin().as_fd()).ok_or_else(internal)?;
    let _ = rustix::thread::set_name(c"tickd-run");
    let ignored = Arc::new(AtomicBool::new(false));
    for signal in OUTLIVED {
        // A caught signal, unlike an ignored or blocked one, is back to its default in the
        // interpreter once it starts.
        signal_hook::flag::register(signal, Arc::clone(&ignored)).map_err(|e| {
            Failure::Own(format!("cannot set up the script's supervisor: {e}"), 126)
        })?;
    }
    // `spawn` answers once the interpreter's `exec` has succeeded, or with its error.
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| Failure::NotStarted {
            errno: e.raw_os_error(),
            message: format!("cannot start {}: {e}", program.display()),
        })?;
    tell(&[STARTED]);
    drop(files);
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
        .map_err(|e| Failure::Own(format!("cannot wait for the script: {e}"), 126))?;
    // The script ended, but helpers it left in the group may not have: the daemon kills them
    // when it reaps this process, unless it is gone too.
    if daemon_gone(Some(&Timespec::default())) {
        let _ = kill_current_process_group(Signal::KILL);
    }
    Ok(status)
}

/// The files the daemon passed on the handshake: the script, a regular file received as
/// descriptor [`SCRIPT_FD`] (the lowest free one, as only 0, 1 and 2 are open), and for a
/// function job the file for its result, as the next one; not close-on-exec, for the
/// interpreter. `None` when stdin is not the daemon's socket or brought no such files.
fn receive_files(handshake: BorrowedFd<'_>) -> Option<Vec<OwnedFd>> {
    let is_socket =
        fstat(handshake).is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Socket);
    if !is_socket {
        return None;
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(PASSED_MAX))];
    let mut rights = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0];
    rustix::net::recvmsg(
        handshake,
        &mut [IoSliceMut::new(&mut byte)],
        &mut rights,
        RecvFlags::empty(),
    )
    .ok()?;
    let files: Vec<OwnedFd> = rights
        .drain()
        .filter_map(|message| match message {
            RecvAncillaryMessage::ScmRights(fds) => Some(fds),
            _ => None,
        })
        .flatten()
        .collect();
    let in_place = files.iter().zip(SCRIPT_FD..).all(|(file, expected)| {
        file.as_raw_fd() == expected
            && fstat(file)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile)
    });
    (in_place && !files.is_empty()).then_some(files)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_as_the_supervisor_writes_them() {
        assert_eq!(parse_report(&[STARTED]), Heard::Started);
        for errno in [Some(2), None] {
            let failure = Failure::NotStarted {
                errno,
                message: "cannot start /x y: No such file or directory".into(),
            };
            assert_eq!(
                parse_report(&failure.report()),
                Heard::NotStarted {
                    errno,
                    message: "cannot start /x y: No such file or directory".into()
                }
            );
        }
        let own = Failure::Own("cannot set up the script's supervisor: EINVAL".into(), 126);
        assert_eq!(
            parse_report(&own.report()),
            Heard::Failed("cannot set up the script's supervisor: EINVAL".into())
        );
        assert_eq!(
            parse_report(b""),
            Heard::Failed("it ended without a word".into())
        );
    }

    #[test]
    fn the_daemon_hears_a_start_a_failure_an_end_without_a_word_and_nothing() {
        let heard = |say: &[u8], hang_up: bool| {
            let (daemon, mut supervisor) = UnixStream::pair().unwrap();
            std::io::Write::write_all(&mut supervisor, say).unwrap();
            let kept = (!hang_up).then_some(supervisor);
            let heard = Handshake(daemon).wait(Duration::from_millis(50));
            drop(kept);
            heard
        };
        // A start is heard at once, while the supervisor goes on.
        assert_eq!(heard(&[STARTED], false), Heard::Started);
        let failure = Failure::NotStarted {
            errno: Some(13),
            message: "cannot start /x: Permission denied".into(),
        };
        assert_eq!(
            heard(&failure.report(), true),
            Heard::NotStarted {
                errno: Some(13),
                message: "cannot start /x: Permission denied".into()
            }
        );
        assert_eq!(
            heard(b"", true),
            Heard::Failed("it ended without a word".into())
        );
        assert_eq!(heard(b"", false), Heard::Late);
    }
}
