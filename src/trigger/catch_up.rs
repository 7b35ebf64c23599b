//! Catching up on a trigger without visiting every fire time in between.
//!
//! APScheduler finds the fire times a job missed by stepping from one to the next
//! (`Job._get_run_times`); a `seconds: 0.000001` interval a day behind has 86.4 billion of
//! them, and a `second='*'` cron 1,000 days behind 86.4 million. A scheduler that walks them
//! never answers again. [`Trigger::catch_up`] answers what a far-behind job needs — its latest
//! fire time due, the one before it, and how many came before it when that can be known —
//! with a bounded amount of work whatever the distance:
//! - `interval`: arithmetic on the grid `from + k·interval` (O(1));
//! - `cron`: a bisection of forward searches (about 50 of them, the log₂ of the span in µs);
//! - `date`: nothing to skip (one fire time).

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};

use super::{Kind, Trigger};

/// How many fire times a span holds, as well as it can be known without visiting them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireCount {
    /// Computed exactly (an interval's grid).
    Exact(u64),
    /// The grid's count, which random jitter would only lower.
    About(u64),
    /// A lower bound (a cron span: only the fire times visited are known).
    AtLeast(u64),
}

impl FireCount {
    /// The same kind of count, `n` more.
    pub fn plus(self, n: u64) -> FireCount {
        match self {
            FireCount::Exact(c) => FireCount::Exact(c.saturating_add(n)),
            FireCount::About(c) => FireCount::About(c.saturating_add(n)),
            FireCount::AtLeast(c) => FireCount::AtLeast(c.saturating_add(n)),
        }
    }

    /// The number itself (exact, approximate or the lower bound).
    pub fn value(self) -> u64 {
        match self {
            FireCount::Exact(c) | FireCount::About(c) | FireCount::AtLeast(c) => c,
        }
    }
}

/// `86400`, `about 86400`, `at least 1000`.
impl fmt::Display for FireCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FireCount::Exact(c) => write!(f, "{c}"),
            FireCount::About(c) => write!(f, "about {c}"),
            FireCount::AtLeast(c) => write!(f, "at least {c}"),
        }
    }
}

/// The fire times from a known one up to a moment, summarised ([`Trigger::catch_up`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// The latest fire time at or before the moment (the known one when no other is).
    pub latest: DateTime<FixedOffset>,
    /// The fire time before `latest`, if `latest` is not the known one.
    pub previous: Option<DateTime<FixedOffset>>,
    /// How many fire times come before `latest`, the known one included, when computable.
    pub before_latest: Option<FireCount>,
}

impl Trigger {
    /// The fire times from `from` — a fire time the job has (its `next_run_time`, or one
    /// stepped to from it), at or before `until` — up to `until`, summarised in bounded work:
    /// the latest, the one before it, and how many precede it (interval only; for a cron
    /// span that count is not known without visiting it). Jitter is left out of the
    /// computation: it delays each step at random, so a walk with it has no fixed answer.
    ///
    /// Stepping with [`Trigger::next_fire_time`] from `from` reaches the same `latest` (the
    /// interval steps are exact whole microseconds, checked against the step-by-step walk in
    /// the tests).
    pub fn catch_up(&self, from: DateTime<FixedOffset>, until: DateTime<Utc>) -> CatchUp {
        let only = CatchUp {
            latest: from,
            previous: None,
            before_latest: Some(FireCount::Exact(0)),
        };
        match &self.kind {
            Kind::Date(_) => only,
            Kind::Interval(t) => match t.latest_fire_time(from, until) {
                Some((latest, steps)) if steps > 0 => {
                    let count = if t.jitter.is_some_and(|j| j > 0.0) {
                        FireCount::About(steps)
                    } else {
                        FireCount::Exact(steps)
                    };
                    CatchUp {
                        latest,
                        previous: t.step_back(latest),
                        before_latest: Some(count),
                    }
                }
                _ => only,
            },
            Kind::Cron(t) => {
                let latest = t.latest_fire_time(from, until);
                if latest == from {
                    return only;
                }
                let previous = latest
                    .to_utc()
                    .checked_sub_signed(chrono::TimeDelta::microseconds(1))
                    .map(|before| t.latest_fire_time(from, before));
                CatchUp {
                    latest,
                    previous,
                    before_latest: None,
                }
            }
        }
    }
}
