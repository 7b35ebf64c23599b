//! systemd's notify protocol (`sd_notify(3)`), for a unit with `Type=notify` and
//! `WatchdogSec=`: `READY=1` once tickd serves, `STATUS=...` for `systemctl status`,
//! `WATCHDOG=1` from the scheduler's driver loop, `STOPPING=1` at shutdown. A leaf: imports
//! nothing of tickd.
//!
//! Written on the standard library's `UnixDatagram` rather than the `sd-notify` crate: the
//! protocol is one datagram of `KEY=value` lines to the socket `NOTIFY_SOCKET` names, and
//! owning the few lines lets the environment be handed in (tests, and no process-wide
//! `unset_environment` games), the socket be non-blocking (a notification that cannot be
//! queued is dropped: it must never stall the scheduler's loop), and `WATCHDOG_PID` be checked
//! against the pid once. No `unsafe` is needed. Without `NOTIFY_SOCKET` nothing is sent.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, and how often the watchdog wants a sign of life.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    /// `NOTIFY_SOCKET`'s address; `None`: not started by systemd with `Type=notify`.
    socket: Option<SocketAddr>,
    /// Half of `WATCHDOG_USEC`, when it is set for this process.
    watchdog_every: Option<Duration>,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `vars` (the process's
    /// environment in the daemon) for the process `pid`. A socket path starting with `@` is in
    /// Linux's abstract namespace. `WATCHDOG_PID`, when set, must be `pid`: the watchdog is
    /// for that process only.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>, pid: u32) -> Notifier {
        let (mut socket, mut usec, mut watchdog_pid) = (None, None, None);
        for (name, value) in vars {
            match name.as_str() {
                "NOTIFY_SOCKET" => socket = Some(value),
                "WATCHDOG_USEC" => usec = Some(value),
                "WATCHDOG_PID" => watchdog_pid = Some(value),
                _ => {}
            }
        }
        let socket = socket.filter(|path| !path.is_empty()).and_then(|path| {
            address(&path)
                .inspect_err(|error| {
                    tracing::warn!("NOTIFY_SOCKET={path:?} is unusable ({error}); not notifying");
                })
                .ok()
        });
        let ours = watchdog_pid.is_none_or(|value| value.trim().parse::<u32>() == Ok(pid));
        let watchdog_every = usec
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|usec| *usec > 0 && ours && socket.is_some())
            .map(|usec| Duration::from_micros(usec / 2));
        Notifier {
            socket,
            watchdog_every,
        }
    }

    /// Whether notifications are sent at all.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as `sd_watchdog_enabled(3)`
    /// advises; `None` when systemd watches no watchdog for this process.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog_every
    }

    /// `READY=1`: start-up is over.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// `STATUS=text` (one line; new lines are replaced by spaces).
    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={}", text.replace(['\n', '\r'], " ")));
    }

    /// `WATCHDOG=1`: the loop systemd watches is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Sends `state` (`KEY=value` lines); a failure is logged at debug level and dropped, as
    /// `sd_notify` callers do: systemd missing a notification is not a reason to stop.
    pub fn send(&self, state: &str) {
        let Some(socket) = &self.socket else {
            return;
        };
        if let Err(error) = send_to(socket, state) {
            tracing::debug!("systemd notification {state:?} not sent: {error}");
        }
    }
}

fn send_to(address: &SocketAddr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    socket.send_to_addr(state.as_bytes(), address)?;
    Ok(())
}

/// `NOTIFY_SOCKET`'s value as an address: a path, or `@name` in the abstract namespace.
fn address(path: &str) -> io::Result<SocketAddr> {
    match path.strip_prefix('@') {
        Some(name) => abstract_address(name),
        None => SocketAddr::from_pathname(path),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &str) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_name: &str) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist on Linux only",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_no_watchdog_runs() {
        let notifier = Notifier::from_env(vars(&[("WATCHDOG_USEC", "400000")]), 7);
        assert!(!notifier.enabled());
        assert_eq!(notifier.watchdog_every(), None);
        notifier.ready(); // a no-op, not an error
    }

    #[test]
    fn the_watchdog_is_half_its_period_and_for_its_pid_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let socket = path.to_string_lossy().into_owned();
        let mine = Notifier::from_env(
            vars(&[
                ("NOTIFY_SOCKET", &socket),
                ("WATCHDOG_USEC", "400000"),
                ("WATCHDOG_PID", "7"),
            ]),
            7,
        );
        assert_eq!(mine.watchdog_every(), Some(Duration::from_millis(200)));
        let others = Notifier::from_env(
            vars(&[
                ("NOTIFY_SOCKET", &socket),
                ("WATCHDOG_USEC", "400000"),
                ("WATCHDOG_PID", "8"),
            ]),
            7,
        );
        assert_eq!(others.watchdog_every(), None);
        assert!(others.enabled());

        mine.status("3 jobs,\n1 running");
        mine.watchdog();
        let mut buffer = [0u8; 256];
        let n = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"STATUS=3 jobs, 1 running");
        let n = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"WATCHDOG=1");
    }

    #[test]
    fn an_abstract_socket_is_reached_by_its_name() {
        let name = format!("tickd-test-{}", std::process::id());
        let Ok(address) = address(&format!("@{name}")) else {
            return; // not Linux
        };
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        let notifier = Notifier::from_env(vars(&[("NOTIFY_SOCKET", &format!("@{name}"))]), 1);
        notifier.ready();
        let mut buffer = [0u8; 64];
        let n = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"READY=1");
    }
}
