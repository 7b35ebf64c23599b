//! The one task that sleeps: it reads the clock, runs a due-jobs pass, and sleeps until just
//! before the next fire time ([`LOOK_AHEAD`]: the pass that claims it is over when it comes)
//! or a wake-up (a job changed), whichever comes first. It never polls the
//! whole table; it asks the store for the earliest `next_run_time` after each pass. Each turn
//! is recorded (`liveness.rs`): readiness reads its age, and the systemd watchdog is petted
//! from here, so a stalled loop stops petting.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::process::{self, LOOK_AHEAD};
use super::{AWAKE, RunState, Scheduler};

/// The longest sleep on a store this daemon has to itself: a bound so a wall clock that
/// jumps (NTP, suspend) is noticed.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The longest sleep on a store shared with other daemons: a job changed through another
/// daemon's API is acted on within this.
const SHARED_MAX_WAIT: Duration = Duration::from_secs(1);

/// The pause after a pass that leaves a job it handled due again already (a *hot* job): its
/// fire times come faster than passes (`seconds: 0.000001` is accepted, as APScheduler
/// accepts it), and without a pause the driver would run pass after pass, a core at 100 %
/// and records every pass. With it such a job fires at most this often, its latest fire
/// time handled by its options and the ones in between summarised in one record (none is
/// lost: a pass takes every fire time due since the last); other jobs due meanwhile are late
/// by this much at most, and only while such a job exists.
const REFIRE_PAUSE: Duration = Duration::from_millis(100);

/// How long to wait before retrying after the store failed.
const RETRY_WAIT: Duration = Duration::from_secs(1);

/// The end of a wait that Tokio's timer does not do alone. Its wheel counts whole
/// milliseconds and rounds a deadline up, so a sleep ends up to ~1.5 ms late; the wait is
/// ended that much early by the timer and the rest is slept on a blocking thread, whose
/// `nanosleep` is late by tens of microseconds.
const FINE_WAIT: Duration = Duration::from_millis(2);

/// The driver's longest sleep on `scheduler`'s store, before any watchdog shortens it.
fn store_max_wait(scheduler: &Scheduler) -> Duration {
    if scheduler.inner.store.shared() {
        SHARED_MAX_WAIT
    } else {
        MAX_WAIT
    }
}

/// The driver's longest sleep: the store's, or the watchdog's period when shorter. Every
/// turn of the loop, a pass or not, ends within this.
pub(super) fn max_wait(scheduler: &Scheduler) -> Duration {
    scheduler.inner.liveness.max_wait(store_max_wait(scheduler))
}

/// Runs until the scheduler is closed. A stopped or paused scheduler's loop runs no pass but
/// still turns every [`max_wait`], so that its liveness (readiness, the watchdog) is known.
pub(super) async fn drive(scheduler: Scheduler) {
    let inner = &scheduler.inner;
    let max_wait = max_wait(&scheduler);
    loop {
        if *inner.closed.borrow() {
            break;
        }
        let state = scheduler.state();
        let (wait, completed) = match state {
            RunState::Stopped | RunState::Paused => (max_wait, true),
            // `start` is giving pending jobs their fire times; it wakes the loop when done.
            RunState::Running if inner.starting.load(Ordering::SeqCst) => (max_wait, true),
            RunState::Running => {
                let now = inner.clock.now();
                let horizon = now + LOOK_AHEAD;
                match process::process_due_jobs(&scheduler, now, horizon).await {
                    Ok(pass) => {
                        let now = inner.clock.now();
                        let wait = pass.next.map_or(max_wait, |next| {
                            // A fire time this pass reached and left (its job had no place
                            // free) is looked at again when it comes, not before.
                            let wake = if next <= horizon {
                                next
                            } else {
                                next - LOOK_AHEAD
                            };
                            (wake - now)
                                .to_std()
                                .unwrap_or(Duration::ZERO)
                                .min(max_wait)
                        });
                        let wait = if process::mark_hot(&scheduler, &pass, now) {
                            wait.max(REFIRE_PAUSE)
                        } else {
                            wait
                        };
                        (wait, true)
                    }
                    Err(error) => {
                        tracing::error!("Processing due jobs failed: {error:#}; retrying");
                        (RETRY_WAIT.min(max_wait), false)
                    }
                }
            }
        };
        inner.liveness.turned(completed, std::time::Instant::now());
        let until = inner.clock.now() + wait;
        inner
            .next_wake
            .store(until.timestamp_micros(), Ordering::SeqCst);
        tokio::select! {
            () = sleep_precisely(wait) => {}
            () = inner.wakeup.notified() => {}
        }
        inner.next_wake.store(AWAKE, Ordering::SeqCst);
    }
    tracing::debug!("Scheduler driver stopped");
}

/// Sleeps for `wait`, ending within tens of microseconds of it rather than Tokio's
/// millisecond (a due run's lateness starts here). Cancel-safe: dropped during its last
/// [`FINE_WAIT`], it leaves a blocking thread asleep for at most that long.
async fn sleep_precisely(wait: Duration) {
    let until = std::time::Instant::now() + wait;
    if let Some(coarse) = wait.checked_sub(FINE_WAIT) {
        tokio::time::sleep(coarse).await;
    }
    let rest = until.saturating_duration_since(std::time::Instant::now());
    if !rest.is_zero() {
        // A failed blocking task only means the wait ended early: the pass finds nothing due
        // yet and the driver waits again.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}
