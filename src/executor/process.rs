//! A started script: its process group, its stop requests, and the wait for its end.
//!
//! The script's supervisor leads its own process group (`process_group(0)`), and the
//! interpreter runs in it (`supervisor.rs`), so every signal goes to the group: a script that
//! spawned helpers (`sleep`, a shell pipeline) is stopped with them. The leader reports the
//! interpreter's exit code or signal as its own.
//! `Child::kill` and `kill_on_drop` would reach only the leader, and a surviving grandchild
//! would keep the output pipes open, so reading them to EOF would never end.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncRead;
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::sync::watch;
use tokio::time::Instant;

use super::capture::read_into;
use super::fork::Exit;
use super::live::{LiveOutput, OutputStream};
use super::{RunOutcome, RunStatus, Slot};

/// Stops a running script from elsewhere (cancel, shutdown).
#[derive(Debug, Clone)]
pub struct StopHandle {
    requested: Arc<watch::Sender<Option<RunStatus>>>,
}

impl StopHandle {
    /// SIGTERM to the script's process group, SIGKILL after `kill_grace`; the run ends with
    /// `status`.
    ///
    /// Only records the request: the task in [`RunningScript::wait`] sends the signals, because
    /// only it knows whether the leader has been reaped (after that its pid may be reused).
    /// The first request wins; a request after the end is ignored.
    pub fn stop(&self, status: RunStatus) {
        self.requested.send_if_modified(|requested| {
            if requested.is_none() {
                *requested = Some(status);
                true
            } else {
                false
            }
        });
    }
}

/// What bounds a run, the same for every way it starts: its timeout (counted from the
/// start), the grace between SIGTERM and SIGKILL, and the bytes kept of each stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) timeout: Option<Duration>,
    pub(crate) kill_grace: Duration,
    pub(crate) output_limit: usize,
}

/// A started script.
#[derive(Debug)]
pub struct RunningScript {
    group: Group,
    /// The read ends of the script's stdout and stderr, until `wait` takes them.
    pipes: Pipes,
    pid: u32,
    started: Instant,
    timeout: Option<Duration>,
    kill_grace: Duration,
    /// The output as it is read: the tails the record keeps, and the run's watchers.
    live: Arc<LiveOutput>,
    stop_sender: Arc<watch::Sender<Option<RunStatus>>>,
    stop_requested: watch::Receiver<Option<RunStatus>>,
    /// Held until [`RunningScript::wait`] returns: the pool counts the run while it lives.
    slot: Slot,
    /// A function job's result file (`call.rs`), read once the run has ended.
    result: Option<OwnedFd>,
}

impl RunningScript {
    /// Wraps a freshly spawned `child` whose output pipes have not been taken.
    pub(crate) fn new(mut child: Child, pid: u32, bounds: Bounds, slot: Slot) -> RunningScript {
        let pipes = [
            child.stdout.take().map(|pipe| Box::new(pipe) as Pipe),
            child.stderr.take().map(|pipe| Box::new(pipe) as Pipe),
        ];
        RunningScript::with_leader(Leader::Spawned(child), pipes, pid, bounds, slot)
    }

    /// Wraps a run the fork server (`fork.rs`) forked as `pid`, whose exit `ended` will tell,
    /// writing to the pipes read by `pipes` (stdout, stderr).
    pub(crate) fn forked(
        ended: oneshot::Receiver<Exit>,
        pipes: [Pipe; 2],
        pid: u32,
        bounds: Bounds,
        slot: Slot,
    ) -> RunningScript {
        let [stdout, stderr] = pipes;
        let pipes = [Some(stdout), Some(stderr)];
        RunningScript::with_leader(Leader::Forked(ended), pipes, pid, bounds, slot)
    }

    fn with_leader(
        leader: Leader,
        pipes: [Option<Pipe>; 2],
        pid: u32,
        bounds: Bounds,
        slot: Slot,
    ) -> RunningScript {
        let Bounds {
            timeout,
            kill_grace,
            output_limit,
        } = bounds;
        let (stop_sender, stop_requested) = watch::channel(None);
        RunningScript {
            group: Group::new(leader, pid),
            pipes: Pipes(pipes),
            pid,
            started: Instant::now(),
            timeout,
            kill_grace,
            live: Arc::new(LiveOutput::new(output_limit)),
            stop_sender: Arc::new(stop_sender),
            stop_requested,
            slot,
            result: None,
        }
    }

    /// The same, reading a function job's return value from `result` at the end.
    pub(crate) fn with_result(self, result: Option<OwnedFd>) -> RunningScript {
        RunningScript { result, ..self }
    }

    /// How long ago the script's process was created: what a caller that reads its own clock
    /// later subtracts to date the start itself.
    pub fn running_for(&self) -> Duration {
        self.started.elapsed()
    }

    /// The process id of the script's supervisor, which leads its process group: the group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The run's output as it is read, for its followers (`GET P/runs/<id>/output`).
    pub fn live(&self) -> Arc<LiveOutput> {
        Arc::clone(&self.live)
    }

    /// A handle that stops this run.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            requested: Arc::clone(&self.stop_sender),
        }
    }

    /// Waits for the end: exit, timeout (SIGTERM to the group, SIGKILL after kill_grace) or a
    /// stop. Never hangs on a grandchild that holds the output pipes open.
    ///
    /// The timeout counts from the spawn, but it is this future that enforces it (and stop
    /// requests), so the caller polls it from the start, typically in its own task. If it is
    /// dropped before the end, or never called, the whole process group is killed.
    pub async fn wait(self) -> RunOutcome {
        let RunningScript {
            mut group,
            pipes: Pipes([stdout, stderr]),
            timeout,
            kill_grace,
            live,
            mut stop_requested,
            started,
            slot,
            result,
            ..
        } = self;
        let (gone_tx, gone_rx) = watch::channel(false);
        let capture = async {
            let out = async {
                if let Some(pipe) = stdout {
                    read_into(pipe, &live, OutputStream::Stdout, gone_rx.clone()).await;
                }
            };
            let err = async {
                if let Some(pipe) = stderr {
                    read_into(pipe, &live, OutputStream::Stderr, gone_rx.clone()).await;
                }
            };
            tokio::join!(out, err)
        };
        let supervise = async {
            let deadline = timeout.map(|t| started + t);
            let ended = group
                .supervise(deadline, kill_grace, &mut stop_requested)
                .await;
            // The leader is reaped; whatever is left of its group (a daemonised helper) goes too,
            // then the readers get a short drain instead of waiting for an EOF that may not come.
            group.kill_leftovers();
            let _ = gone_tx.send(true);
            ended
        };
        let (_, (exit, forced)) = tokio::join!(capture, supervise);

        let [(stdout, stdout_truncated), (stderr, stderr_truncated)] = live.texts();
        let (exit_code, signal) = match &exit {
            Ok(status) => (status.code(), status.signal()),
            Err(_) => (None, None),
        };
        let status = match (forced, exit_code) {
            (Some(forced), _) => forced,
            (None, Some(0)) => RunStatus::Succeeded,
            (None, _) => RunStatus::Failed,
        };
        let lost = exit.as_ref().err().map(ToString::to_string);
        if let Err(err) = exit {
            tracing::warn!(
                pid = group.pgid.as_raw(),
                "cannot wait for the script: {err}"
            );
        }
        let outcome = RunOutcome {
            status,
            result: result.as_ref().and_then(super::call::read_result),
            lost,
            exit_code,
            signal,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            finished_at: Utc::now(),
        };
        // Only now, with the group gone and the pipes drained, is the run over for the pool.
        drop(slot);
        outcome
    }
}

/// The script's process group, owning its leader. Dropped before the leader is reaped (the
/// wait was cancelled), it kills the whole group; tokio's `kill_on_drop` then reaps the leader.
#[derive(Debug)]
struct Group {
    leader: Leader,
    /// The leader's pid, which is also the group id.
    pgid: Pid,
    /// Set once the leader is reaped: from then on the group id is only safe to signal right
    /// away (the kernel keeps it reserved only while the group has members).
    reaped: bool,
}

impl Group {
    fn new(leader: Leader, pid: u32) -> Group {
        // A pid always fits in i32 (pid_max ≤ 2^22); a wrapped value would make `killpg` fail
        // (not reach another group), since valid group ids are positive.
        let pgid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
        Group {
            leader,
            pgid,
            reaped: false,
        }
    }

    /// Waits for the leader to exit, stopping the group at the deadline or on request.
    /// Returns the leader's exit status and, if the run was stopped, the status it ends with.
    async fn supervise(
        &mut self,
        deadline: Option<Instant>,
        kill_grace: Duration,
        stop_requested: &mut watch::Receiver<Option<RunStatus>>,
    ) -> (io::Result<ExitStatus>, Option<RunStatus>) {
        let timed_out = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let stop = async {
            // Copied out at once: the watch guard must not live across an await.
            let requested = stop_requested
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|requested| *requested);
            match requested {
                Some(status) => status,
                // Unreachable while `RunningScript` holds the sender; never stop on it.
                None => std::future::pending().await,
            }
        };
        let forced = tokio::select! {
            exit = self.leader.wait() => {
                self.reaped = true;
                return (exit, None);
            }
            () = timed_out => RunStatus::TimedOut,
            status = stop => status,
        };

        self.signal(Signal::SIGTERM);
        let exit = match tokio::time::timeout(kill_grace, self.leader.wait()).await {
            Ok(exit) => exit,
            Err(_elapsed) => {
                self.signal(Signal::SIGKILL);
                self.leader.wait().await
            }
        };
        self.reaped = true;
        (exit, Some(forced))
    }

    /// SIGKILL to what is left of the group once the leader is reaped. Called right after the
    /// reap: the group id stays reserved as long as any member lives, and if none does the
    /// call fails with ESRCH.
    fn kill_leftovers(&mut self) {
        self.signal(Signal::SIGKILL);
    }

    fn signal(&self, signal: Signal) {
        match killpg(self.pgid, signal) {
            // ESRCH: the group is already empty, which is the goal.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(err) => tracing::warn!(pgid = self.pgid.as_raw(), "killpg {signal}: {err}"),
        }
    }
}

/// A script's output pipe, read as it comes.
pub(crate) type Pipe = Box<dyn AsyncRead + Send + Unpin>;

/// A run's stdout and stderr pipes.
struct Pipes([Option<Pipe>; 2]);

impl std::fmt::Debug for Pipes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pipes")
    }
}

/// The process that leads a run's group: the supervisor tickd spawned (`exec`), or a child
/// of the fork server, whose exit the server reports (`fork`).
#[derive(Debug)]
enum Leader {
    Spawned(Child),
    Forked(oneshot::Receiver<Exit>),
}

impl Leader {
    /// Waits for the leader's exit. A forked one's is an error when the fork server died
    /// before it reported it.
    async fn wait(&mut self) -> io::Result<ExitStatus> {
        match self {
            Leader::Spawned(child) => child.wait().await,
            Leader::Forked(ended) => match ended.await {
                Ok(Ok(status)) => Ok(status),
                Ok(Err(why)) => Err(io::Error::other(why)),
                Err(_) => Err(io::Error::other(
                    "the fork server stopped while the run was in progress",
                )),
            },
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(Signal::SIGKILL);
        }
    }
}
