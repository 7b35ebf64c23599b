//! systemd's notify protocol spoken by the real binary (issue 17, point 5): a Unix datagram
//! socket bound by the test is its `NOTIFY_SOCKET`; it receives `READY=1` once the daemon
//! serves, `STATUS=` lines, `WATCHDOG=1` from the scheduler's loop at half of
//! `WATCHDOG_USEC`, and `STOPPING=1` on SIGTERM. Counts are bounded, never exact timings.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::daemon::{free_port, tickd, wait_exit, write_config};
use crate::common::project_dir;

/// The next datagram, or `None` once `until` has passed.
fn next(socket: &UnixDatagram, until: Instant) -> Option<String> {
    let left = until.checked_duration_since(Instant::now())?;
    socket
        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .unwrap();
    let mut buffer = [0u8; 4096];
    let n = socket.recv(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
}

/// Datagrams until one starts with `prefix` (answered), or `None` by `until`; every one seen
/// is pushed to `seen`.
fn wait_for(
    socket: &UnixDatagram,
    prefix: &str,
    until: Instant,
    seen: &mut Vec<String>,
) -> Option<String> {
    while let Some(message) = next(socket, until) {
        seen.push(message.clone());
        if message.starts_with(prefix) {
            return Some(message);
        }
    }
    None
}

/// A project configured on a free port, with a datagram socket bound in it to serve as
/// `NOTIFY_SOCKET`.
fn project_with_socket() -> (tempfile::TempDir, u16, PathBuf, UnixDatagram) {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    (dir, port, path, socket)
}

/// `READY=1`, or `None` after 20 s.
fn ready(socket: &UnixDatagram, seen: &mut Vec<String>) -> Option<String> {
    wait_for(
        socket,
        "READY=1",
        Instant::now() + Duration::from_secs(20),
        seen,
    )
}

#[tokio::test]
async fn the_daemon_notifies_ready_status_watchdog_and_stopping() {
    let (dir, port, path, socket) = project_with_socket();
    let mut child = tickd(dir.path())
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .spawn()
        .unwrap();
    let mut seen = Vec::new();

    let ready = ready(&socket, &mut seen);
    assert_eq!(ready.as_deref(), Some("READY=1"), "seen: {seen:?}");
    // Ready means serving: the port answers at once.
    let response = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    let status = wait_for(
        &socket,
        "STATUS=",
        Instant::now() + Duration::from_secs(10),
        &mut seen,
    );
    let status = status.unwrap_or_else(|| panic!("no STATUS= line; seen: {seen:?}"));
    assert!(
        status.starts_with("STATUS=Scheduler running; 0 jobs, 0 running"),
        "{status}"
    );

    // WATCHDOG_USEC = 0.4 s: a pet every 0.2 s at most apart. Over 2 s, at least 5 arrive
    // (10 expected), and never more than the loop's rate allows.
    let window = Instant::now() + Duration::from_secs(2);
    let mut pets = 0;
    while let Some(message) = next(&socket, window) {
        if message == "WATCHDOG=1" {
            pets += 1;
        }
        seen.push(message);
    }
    assert!(
        (5..=40).contains(&pets),
        "{pets} pets in 2 s; seen: {seen:?}"
    );

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let stopping = wait_for(
        &socket,
        "STOPPING=1",
        Instant::now() + Duration::from_secs(10),
        &mut seen,
    );
    assert_eq!(stopping.as_deref(), Some("STOPPING=1"), "seen: {seen:?}");
    assert!(
        wait_exit(&mut child).success(),
        "tickd exits cleanly on SIGTERM"
    );
}

#[tokio::test]
async fn the_watchdog_of_another_process_is_not_petted_and_no_socket_means_no_notification() {
    let (dir, port, path, socket) = project_with_socket();
    let mut child = tickd(dir.path())
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .env("WATCHDOG_PID", "1")
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let ready = ready(&socket, &mut seen);
    assert_eq!(ready.as_deref(), Some("READY=1"), "seen: {seen:?}");
    let window = Instant::now() + Duration::from_millis(1500);
    while let Some(message) = next(&socket, window) {
        seen.push(message);
    }
    assert!(!seen.iter().any(|m| m == "WATCHDOG=1"), "seen: {seen:?}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_exit(&mut child).success());
    while next(&socket, Instant::now() + Duration::from_millis(100)).is_some() {}

    // Without NOTIFY_SOCKET the daemon runs as before (and sends nothing anywhere).
    let mut child = tickd(dir.path())
        .env("WATCHDOG_USEC", "400000")
        .spawn()
        .unwrap();
    let started = Instant::now();
    while crate::common::daemon::answering(port).await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_exit(&mut child).success());
    assert!(next(&socket, Instant::now() + Duration::from_millis(200)).is_none());
}

/// systemd may stop a unit the moment it reports ready. A SIGTERM sent as `READY=1` arrives
/// is the daemon's orderly stop (`STOPPING=1`, exit 0), never the signal's default action:
/// the handlers are installed before the store is opened, not when the serve loop first
/// looks at them. Repeated, since a gap would show only sometimes.
#[tokio::test]
async fn a_sigterm_as_soon_as_ready_is_an_orderly_stop() {
    let (dir, _, path, socket) = project_with_socket();
    for _ in 0..5 {
        let mut child = tickd(dir.path())
            .env("NOTIFY_SOCKET", &path)
            .spawn()
            .unwrap();
        let mut seen = Vec::new();
        let ready = ready(&socket, &mut seen);
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        assert_eq!(ready.as_deref(), Some("READY=1"), "seen: {seen:?}");
        let status = wait_exit(&mut child);
        assert!(status.success(), "tickd exits cleanly, not {status}");
        let stopping = wait_for(
            &socket,
            "STOPPING=1",
            Instant::now() + Duration::from_secs(5),
            &mut seen,
        );
        assert_eq!(stopping.as_deref(), Some("STOPPING=1"), "seen: {seen:?}");
    }
}
