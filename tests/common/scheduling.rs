//! Driving the scheduler on an injected clock: a daemon that waits for `POST P/start`, the
//! events a test waits on, and the log lines it reads.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use tickd::scheduler::SchedulerEvent;
use tokio::sync::broadcast::Receiver;

use super::TestApp;

/// The scheduler is started by the test (a host that is not allowed keeps it stopped at
/// boot), so the test subscribes to events before anything fires.
pub const MANUAL_START: &str = "[scheduler]\nallowed_hosts = [\"no-such-host\"]\n[executor]\nshutdown_grace = 0.2\nkill_grace = 0.2\n";

/// [`MANUAL_START`] with the test's own keys (`[scheduler]` may appear only once: they are
/// merged into its table).
pub fn manual_start(extra: &str) -> String {
    format!("{MANUAL_START}{extra}")
}

/// Starts the scheduler (`POST P/start`) and answers its events from then on.
pub async fn start(app: &TestApp) -> Receiver<SchedulerEvent> {
    let events = app.scheduler.subscribe();
    let (status, _, _) = app.call(Method::POST, "/start", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    events
}

/// The next event matching `pick`, skipping others; fails after 20 s of silence.
pub async fn next_event<T>(
    events: &mut Receiver<SchedulerEvent>,
    mut pick: impl FnMut(SchedulerEvent) -> Option<T>,
) -> T {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("no event within 20 s")
            .unwrap();
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

/// What the daemon logs, kept in memory for a test.
///
/// Lines reach it through one global subscriber that writes each line to the capture its
/// thread registered (a `tokio::test` runs the daemon's tasks on the test's thread), not
/// through a subscriber per thread: tracing caches whether a line is wanted across threads,
/// and a line first reached on a thread with no subscriber of its own could be cached as
/// wanted by no one, and never reach a test's capture (it did, in one run of two).
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

thread_local! {
    /// The capture this thread's lines go to, if any.
    static CAPTURE: std::cell::RefCell<Option<CapturedLog>> = const { std::cell::RefCell::new(None) };
}

/// Writes a line to its thread's capture, or nowhere.
struct ThreadCapture;

impl std::io::Write for ThreadCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(log) = capture.borrow().as_ref() {
                log.0.lock().unwrap().extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// While alive, this thread's lines go to a capture.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

impl CapturedLog {
    /// Captures this thread's log lines until the guard is dropped.
    pub fn install(&self) -> CaptureGuard {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(|| ThreadCapture)
                .try_init();
        });
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(self.clone()));
        CaptureGuard(())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The misfire lines (`Run time of job ... was missed by ...`).
    pub fn misfire_lines(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains("Run time of job"))
            .map(str::to_owned)
            .collect()
    }
}
