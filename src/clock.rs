//! The wall clock, injected so scheduling tests set time instead of sleeping.

use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, Utc};

/// Where "now" comes from. Only the scheduler's driver and its run tasks read it; everything
/// below them takes time as an argument.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock, read to the microsecond as Python's `datetime.now()` is. APScheduler
/// computes fire times from such a time; from one with nanoseconds, a cron job's fire times
/// carried them (`ceil` to the second drops microseconds only: 20:18:26.000000396), which no
/// Python time can hold and which the logs showed.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that moves only when told to. Tests set it and call `Scheduler::tick` themselves,
/// so no test sleeps to reach a fire time.
#[derive(Debug)]
pub struct ManualClock {
    /// std Mutex: held for a copy, never across `.await`.
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Puts the clock at `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::TimeDelta) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ManualClock {
    /// The clock's time (the trait's `now`, callable without importing `Clock`).
    pub fn now_utc(&self) -> DateTime<Utc> {
        self.now()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::{Clock, SystemClock};

    #[test]
    fn the_system_clock_reads_whole_microseconds() {
        for _ in 0..100 {
            assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
        }
    }
}
