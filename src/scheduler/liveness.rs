//! Whether the driver loop is alive: the time of its last completed turn (readiness,
//! `/readyz`) and the watchdog it pets (systemd's `WATCHDOG=1`), so that a stalled loop is
//! seen by both. The scheduler knows nothing of systemd: the app hands it a [`Watchdog`],
//! a period and a function to call.
//!
//! A *completed turn* is a due-jobs pass that succeeded, or a turn of a paused or stopped
//! scheduler (which runs no pass but whose loop still turns: it is idle by an operator's
//! decision, not stalled, and restarting the daemon would not change it). A failed pass (the
//! store away) is not one: readiness then says so, while the watchdog is still petted (the
//! loop is alive; a restart would not bring the database back).
//!
//! Ages are read on the monotonic clock ([`Instant`]), not the scheduler's [`Clock`]
//! (crate::clock::Clock): a wall clock set back must not make a live loop look stalled.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A turn's age beyond this many times the driver's longest sleep means the loop stalled.
const BOUND_FACTOR: u32 = 3;

/// The least bound, whatever the longest sleep: a pass over many due jobs on a slow database
/// may take seconds.
const MIN_BOUND: Duration = Duration::from_secs(10);

/// What the driver pets, and how often at least.
#[derive(Clone)]
pub struct Watchdog {
    /// The longest time between two pets (half of systemd's `WATCHDOG_USEC`): the driver
    /// sleeps no longer than this.
    pub every: Duration,
    /// Sends the sign of life.
    pub pet: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// The driver loop's health, as readiness reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverHealth {
    /// Time since the last completed turn; `None` before the first.
    pub last_pass_age: Option<Duration>,
    /// The age beyond which the loop counts as stalled.
    pub bound: Duration,
}

impl DriverHealth {
    /// Whether the loop completed a turn within its bound.
    pub fn is_fresh(&self) -> bool {
        self.last_pass_age.is_some_and(|age| age <= self.bound)
    }
}

/// Kept in the scheduler; written by the driver only.
#[derive(Debug, Default)]
pub(super) struct Liveness {
    /// std Mutex: a copy in and out, never held across `.await`.
    last_pass: Mutex<Option<Instant>>,
    last_pet: Mutex<Option<Instant>>,
    watchdog: OnceLock<Watchdog>,
}

impl Liveness {
    /// Sets the watchdog; only the first one set counts.
    pub(super) fn set_watchdog(&self, watchdog: Watchdog) -> bool {
        self.watchdog.set(watchdog).is_ok()
    }

    /// The driver's longest sleep: `max_wait`, or the watchdog's period when shorter.
    pub(super) fn max_wait(&self, max_wait: Duration) -> Duration {
        match self.watchdog.get() {
            Some(watchdog) => max_wait.min(watchdog.every),
            None => max_wait,
        }
    }

    /// One turn of the loop ended at `now`: its time is kept if it `completed`, and the
    /// watchdog is petted (at most every half period, so a busy loop does not flood systemd).
    pub(super) fn turned(&self, completed: bool, now: Instant) {
        if completed {
            *self.last_pass.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        }
        let Some(watchdog) = self.watchdog.get() else {
            return;
        };
        let due = {
            let mut last = self.last_pet.lock().unwrap_or_else(|e| e.into_inner());
            let due =
                last.is_none_or(|last| now.saturating_duration_since(last) >= watchdog.every / 2);
            if due {
                *last = Some(now);
            }
            due
        };
        if due {
            (watchdog.pet)();
        }
    }

    /// The loop's health at `now`, for a driver whose longest sleep is `max_wait`.
    pub(super) fn health(&self, max_wait: Duration, now: Instant) -> DriverHealth {
        let last = *self.last_pass.lock().unwrap_or_else(|e| e.into_inner());
        DriverHealth {
            last_pass_age: last.map(|last| now.saturating_duration_since(last)),
            bound: (self.max_wait(max_wait) * BOUND_FACTOR).max(MIN_BOUND),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn a_turn_is_fresh_within_its_bound_and_stale_after() {
        let liveness = Liveness::default();
        let start = Instant::now();
        let wait = Duration::from_secs(60);
        assert_eq!(liveness.health(wait, start).last_pass_age, None);
        assert!(!liveness.health(wait, start).is_fresh());
        liveness.turned(true, start);
        let health = liveness.health(wait, start + Duration::from_secs(180));
        assert_eq!(health.bound, Duration::from_secs(180));
        assert!(health.is_fresh());
        assert!(
            !liveness
                .health(wait, start + Duration::from_secs(181))
                .is_fresh()
        );
        // A failed pass is not a completed one.
        liveness.turned(false, start + Duration::from_secs(100));
        assert_eq!(
            liveness
                .health(wait, start + Duration::from_secs(100))
                .last_pass_age,
            Some(Duration::from_secs(100))
        );
        // A short sleep still gets the least bound.
        assert_eq!(
            liveness.health(Duration::from_secs(1), start).bound,
            MIN_BOUND
        );
    }

    #[test]
    fn the_watchdog_shortens_the_sleep_and_is_petted_at_most_twice_a_period() {
        let liveness = Liveness::default();
        let pets = Arc::new(AtomicU32::new(0));
        let counted = pets.clone();
        assert!(liveness.set_watchdog(Watchdog {
            every: Duration::from_millis(200),
            pet: Arc::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
        }));
        assert_eq!(
            liveness.max_wait(Duration::from_secs(60)),
            Duration::from_millis(200)
        );
        let start = Instant::now();
        liveness.turned(false, start); // petted even when the pass failed
        liveness.turned(true, start + Duration::from_millis(50)); // too soon
        liveness.turned(true, start + Duration::from_millis(100));
        assert_eq!(pets.load(Ordering::SeqCst), 2);
    }
}
