//! Warm starts (`executor.python_mode = "fork"`): one long-lived Python per daemon, the fork
//! server (`zygote.py`), started with the standard library and `executor.preload` imported,
//! forks one child per Python run instead of starting an interpreter. A fork of a started,
//! single-threaded Python costs about a millisecond of CPU where a `python3` start costs tens.
//!
//! The daemon talks to it over a `SOCK_SEQPACKET` pair (its stdin). A run is a request: JSON
//! with the run's files (`SCM_RIGHTS`: the stdout and stderr pipes' write ends, the script or
//! module file opened as for `exec`, a call's result file). The child leads its own process
//! group, so timeouts and cancel stop the whole group as they do a supervised script's; the
//! server reaps it and says `X <pid> <wait status>`. Runs die with the daemon: when the
//! daemon's end closes, however the daemon ended, the server kills every child's group and
//! exits.
//!
//! The server keeps up to [`SPARES_MAX`] children forked ahead (one per run that may start at
//! once), each waiting on a socket whose other end it gives the daemon (`P <pid>`). The daemon
//! hands a run due to one of them itself: one message to a process that exists, with no fork
//! and no round trip through the server (which hears `U <pid>` just before, to fork a
//! replacement once no run has started for 50 ms). Before, the server handed the runs over
//! and answered each: ten runs due together waited for each other's answers behind the
//! children just started (run records' scheduled → spawned p99 9.5 ms in the firing
//! benchmark, most of it after the pass). A run that finds no spare asks the server, which
//! forks it and answers `S <id> <pid>` (or `E <id> <errno> <text>`). A spare lowers itself to
//! `executor.nice` when forked and, while it waits, rehearses what a run does before its own
//! code, so a run that starts never holds up the next hand-over.
//!
//! A server that dies, or does not answer a fork in time, is replaced by a new one at the
//! next start; the runs it was watching end `failed`, with the reason, their groups killed,
//! and its spares, whose daemon ends are dropped, exit. The workspace is never on the
//! server's `sys.path`: each child imports the workspace's modules itself, so an edited script
//! or module is what the next run gets, and the server's memory does not grow with the runs.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde_json::Value;
use tokio::sync::oneshot;

/// The fork server's program.
const ZYGOTE: &str = include_str!("zygote.py");

/// The most bytes of an answer the daemon reads.
const ANSWER_MAX: usize = 512;

/// The most spares a fork server keeps: one per run that may start at once
/// (`executor.max_workers`), up to this.
pub(crate) const SPARES_MAX: usize = 16;

/// The most files a request carries: stdout, stderr, the script, a call's result.
const FILES_MAX: usize = 4;

/// How a forked run ends: its wait status, or why it cannot be known (the server died).
pub(crate) type Exit = Result<ExitStatus, String>;

/// The fork server of one daemon: started with the daemon (`Executor::warm_up`), else by
/// the first run; restarted after it died.
#[derive(Debug)]
pub(crate) struct ForkServer {
    python: PathBuf,
    preload: Vec<String>,
    /// How many children the server keeps forked ahead of the runs (`zygote.py`'s spares).
    spares: usize,
    /// The nice value runs get (`executor.nice` from the daemon's); `None` keeps the server's.
    nice: Option<i32>,
    /// The environment the server itself starts with (`pass_env`'s variables: `PYTHONPATH`
    /// and `VIRTUAL_ENV` shape `sys.path` as they shape a started interpreter's).
    env: Vec<(OsString, OsString)>,
    current: Mutex<Option<Arc<Server>>>,
    next_id: AtomicU64,
}

/// One running server.
#[derive(Debug)]
struct Server {
    control: OwnedFd,
    pid: u32,
    state: Mutex<Watched>,
    /// Set once its end of the socket closed: it is replaced at the next start.
    gone: AtomicBool,
}

/// What the daemon waits to hear from a server, and the spares it holds.
#[derive(Debug, Default)]
struct Watched {
    /// Forks asked for and not answered yet, by request id: where to say the pid (or why
    /// not), and where the run's end will be told once it is known by its pid.
    asked: HashMap<u64, Asked>,
    /// Runs in progress, by pid: where to tell their end.
    running: HashMap<u32, oneshot::Sender<Exit>>,
    /// Spares waiting for a run, oldest first: pid, and the daemon's end of its socket.
    spares: VecDeque<(u32, OwnedFd)>,
}

#[derive(Debug)]
struct Asked {
    started: mpsc::Sender<Result<u32, String>>,
    ended: oneshot::Sender<Exit>,
}

/// What a fork needs besides its files.
pub(crate) struct ForkRequest {
    /// The request's JSON (its id is put in front of it here).
    pub body: serde_json::Map<String, Value>,
    pub files: Vec<OwnedFd>,
}

impl ForkServer {
    pub(crate) fn new(
        python: PathBuf,
        preload: Vec<String>,
        spares: usize,
        nice: Option<i32>,
        env: Vec<(OsString, OsString)>,
    ) -> ForkServer {
        ForkServer {
            python,
            preload,
            spares,
            nice,
            env,
            current: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    /// Forks a run; answers its pid (which is its process group's id) and where its exit
    /// will be told, once the server has forked it. Blocks the calling thread (a blocking
    /// thread: see `Executor::launch`) for at most `patience`.
    ///
    /// # Errors
    /// The server could not be started or asked, did not fork in time (it is then replaced),
    /// or the fork failed; the text says which.
    pub(crate) fn fork(
        &self,
        request: ForkRequest,
        patience: Duration,
    ) -> Result<(u32, oneshot::Receiver<Exit>), String> {
        let server = self.server()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // The id in front, so that the server reads only that.
        let message = format!("{id} {}", Value::Object(request.body));
        if let Some(handed) = server.hand_to_spare(message.as_bytes(), &request.files) {
            return Ok(handed);
        }
        let (started_tx, started_rx) = mpsc::channel();
        let (ended_tx, ended_rx) = oneshot::channel();
        server.lock().asked.insert(
            id,
            Asked {
                started: started_tx,
                ended: ended_tx,
            },
        );
        if let Err(err) = send(server.control.as_fd(), message.as_bytes(), &request.files) {
            server.lock().asked.remove(&id);
            return Err(format!("cannot ask the fork server: {err}"));
        }
        drop(request.files);
        match started_rx.recv_timeout(patience) {
            Ok(Ok(pid)) => Ok((pid, ended_rx)),
            Ok(Err(why)) => Err(why),
            Err(_) => {
                server.lock().asked.remove(&id);
                tracing::warn!(
                    pid = server.pid,
                    "the fork server did not fork a run within {} s; it is replaced",
                    patience.as_secs_f64()
                );
                server.stop();
                Err("the fork server did not answer in time; it is restarted".to_owned())
            }
        }
    }

    /// Starts the server unless it runs.
    ///
    /// # Errors
    /// As [`ForkServer::fork`] when the server cannot be started.
    pub(crate) fn start(&self) -> Result<(), String> {
        self.server().map(drop)
    }

    /// The running server, started (again) when there is none or it died.
    fn server(&self) -> Result<Arc<Server>, String> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = current.as_ref()
            && !server.gone.load(Ordering::Acquire)
        {
            return Ok(Arc::clone(server));
        }
        let server = self.spawn()?;
        *current = Some(Arc::clone(&server));
        Ok(server)
    }

    fn spawn(&self) -> Result<Arc<Server>, String> {
        let (daemon_end, server_end) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|err| format!("cannot make the fork server's socket: {err}"))?;
        let child = Command::new(&self.python)
            .args(["-u", "-c"])
            .arg(format!("{}\n{ZYGOTE}", super::call::CALL))
            .arg(self.spares.to_string())
            .arg(
                self.nice
                    .map_or_else(|| "-".to_owned(), |nice| nice.to_string()),
            )
            .args(&self.preload)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(server_end))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| {
                format!(
                    "cannot start the fork server ({}): {err}",
                    self.python.display()
                )
            })?;
        let server = Arc::new(Server {
            control: daemon_end,
            pid: child.id(),
            state: Mutex::new(Watched::default()),
            gone: AtomicBool::new(false),
        });
        let listening = Arc::clone(&server);
        std::thread::Builder::new()
            .name("tickd-forks".to_owned())
            .spawn(move || listening.listen(child))
            .map_err(|err| format!("cannot watch the fork server: {err}"))?;
        tracing::info!(pid = server.pid, "started the Python fork server");
        Ok(server)
    }
}

impl Server {
    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        // The maps hold no invariant a panicking holder could break.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the run to a spare: answers its pid and where its end will be told, or `None`
    /// when no spare is left. A spare that died waiting refuses the message and is dropped.
    fn hand_to_spare(
        &self,
        message: &[u8],
        files: &[OwnedFd],
    ) -> Option<(u32, oneshot::Receiver<Exit>)> {
        loop {
            let (pid, channel) = self.lock().spares.pop_front()?;
            let (ended_tx, ended_rx) = oneshot::channel();
            // Before the message: the run may end before this thread goes on.
            self.lock().running.insert(pid, ended_tx);
            if self.gone.load(Ordering::Acquire) {
                // `listen` ended the runs already: nobody would tell this one's end.
                self.lock().running.remove(&pid);
                return None;
            }
            // So that the server counts it used and forks its replacement. Before the run:
            // the server reads its messages before it reaps, so it never takes a spare whose
            // run has ended for one that died waiting (and pauses its refills a second); a
            // spare that refuses the run (it died) then ends, to the server, as a run. A
            // server that does not hear it makes that mistake once.
            let _ = rustix::net::send(
                &self.control,
                format!("U {pid}").as_bytes(),
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            );
            if send(channel.as_fd(), message, files).is_ok() {
                return Some((pid, ended_rx));
            }
            self.lock().running.remove(&pid);
        }
    }

    /// Reads the server's answers until its end closes; then ends every run it was watching
    /// (their groups are killed by their `RunningScript`s), lets its spares go and reaps it.
    fn listen(self: Arc<Self>, mut child: Child) {
        let mut buffer = [0u8; ANSWER_MAX];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        loop {
            let mut ancillary = RecvAncillaryBuffer::new(&mut space);
            let received = rustix::net::recvmsg(
                &self.control,
                &mut [IoSliceMut::new(&mut buffer)],
                &mut ancillary,
                RecvFlags::CMSG_CLOEXEC,
            );
            let length = match received {
                Ok(message) if message.bytes > 0 => message.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                _ => break,
            };
            let passed = ancillary
                .drain()
                .filter_map(|message| match message {
                    RecvAncillaryMessage::ScmRights(fds) => Some(fds),
                    _ => None,
                })
                .flatten()
                .next();
            let text = String::from_utf8_lossy(buffer.get(..length).unwrap_or_default());
            self.heard(&text, passed);
        }
        self.gone.store(true, Ordering::Release);
        let why = "the fork server stopped while the run was in progress; its process group \
                   was stopped";
        let Watched {
            asked,
            running,
            spares,
        } = std::mem::take(&mut *self.lock());
        // Their daemon ends dropped, the spares see the end and exit.
        drop(spares);
        for (_, waiter) in asked {
            let _ = waiter.started.send(Err(
                "the fork server stopped before the run started".to_owned()
            ));
            let _ = waiter.ended.send(Err(why.to_owned()));
        }
        for (_, ended) in running {
            let _ = ended.send(Err(why.to_owned()));
        }
        let status = child.wait();
        tracing::warn!(
            pid = self.pid,
            ?status,
            "the Python fork server ended; the next run starts a new one"
        );
    }

    /// One answer: `P <pid>` (with a spare's socket), `S <id> <pid>`, `E <id> <errno> <text>`
    /// or `X <pid> <status>`.
    fn heard(&self, text: &str, passed: Option<OwnedFd>) {
        let mut words = text.splitn(3, ' ');
        let (Some(kind), Some(number), rest) = (words.next(), words.next(), words.next()) else {
            return;
        };
        let Ok(number) = number.parse::<u64>() else {
            return;
        };
        let mut state = self.lock();
        match kind {
            "P" => {
                if let (Ok(pid), Some(channel)) = (u32::try_from(number), passed) {
                    state.spares.push_back((pid, channel));
                }
            }
            "S" => {
                let pid = rest.and_then(|pid| pid.trim().parse::<u32>().ok());
                if let Some(pid) = pid
                    && let Some(asked) = state.asked.remove(&number)
                {
                    state.running.insert(pid, asked.ended);
                    let _ = asked.started.send(Ok(pid));
                }
            }
            "E" => {
                if let Some(asked) = state.asked.remove(&number) {
                    let _ = asked.started.send(Err(format!(
                        "the fork server could not fork: {}",
                        rest.unwrap_or_default()
                    )));
                }
            }
            "X" => {
                let status = rest.and_then(|status| status.trim().parse::<i32>().ok());
                let Ok(pid) = u32::try_from(number) else {
                    return;
                };
                // A spare that died waiting is not handed a run.
                state.spares.retain(|(spare, _)| *spare != pid);
                if let (Some(ended), Some(status)) = (state.running.remove(&pid), status) {
                    let _ = ended.send(Ok(ExitStatus::from_raw(status)));
                }
            }
            _ => {}
        }
    }

    /// Kills the server (it does not answer): its end closes, `listen` ends its runs.
    fn stop(&self) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX));
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Sends one request with its files.
fn send(control: BorrowedFd<'_>, message: &[u8], files: &[OwnedFd]) -> rustix::io::Result<()> {
    let fds: Vec<BorrowedFd<'_>> = files.iter().take(FILES_MAX).map(AsFd::as_fd).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FILES_MAX))];
    let mut rights = SendAncillaryBuffer::new(&mut space);
    rights.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        control,
        &[IoSlice::new(message)],
        &mut rights,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}
