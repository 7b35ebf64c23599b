//! The one task that sleeps: it reads the clock, runs a due-jobs pass, and sleeps until the
//! next fire time or a wake-up (a job changed), whichever comes first. It never polls the
//! whole table; it asks the store for the earliest `next_run_time` after each pass.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{AWAKE, RunState, Scheduler};

/// The longest sleep on a store this daemon has to itself: a bound so a wall clock that
/// jumps (NTP, suspend) is noticed.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The longest sleep on a store shared with other daemons: a job changed through another
/// daemon's API is acted on within this.
const SHARED_MAX_WAIT: Duration = Duration::from_secs(1);

/// How long to wait before retrying after the store failed.
const RETRY_WAIT: Duration = Duration::from_secs(1);

/// Runs until the scheduler is stopped.
pub(super) async fn drive(scheduler: Scheduler) {
    let inner = &scheduler.inner;
    let max_wait = if inner.store.shared() {
        SHARED_MAX_WAIT
    } else {
        MAX_WAIT
    };
    loop {
        let wait = match scheduler.state() {
            RunState::Stopped => break,
            RunState::Paused => max_wait,
            RunState::Running => match scheduler.tick(inner.clock.now()).await {
                Ok(Some(next)) => (next - inner.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(max_wait),
                Ok(None) => max_wait,
                Err(error) => {
                    tracing::error!("Processing due jobs failed: {error:#}; retrying");
                    RETRY_WAIT
                }
            },
        };
        let until = inner.clock.now() + wait;
        inner
            .next_wake
            .store(until.timestamp_micros(), Ordering::SeqCst);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = inner.wakeup.notified() => {}
        }
        inner.next_wake.store(AWAKE, Ordering::SeqCst);
    }
    tracing::debug!("Scheduler driver stopped");
}
