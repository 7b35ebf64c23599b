//! Triggers: when a job fires. A port of APScheduler 3.11's `date`, `interval` and `cron`
//! triggers (CONTRACT §3), with one deliberate fix (no occurrence skipped after spring-forward).
//!
//! This module is a leaf: it imports nothing else of tickd. Time comes in as an argument, so
//! every function here is pure and testable without a runtime or a clock (jitter aside, which
//! is random by definition).
//!
//! # Layout
//! - `args`: a POST body's trigger arguments → a trigger, in the reference's order of checks.
//! - `date`, `interval`, `cron/`: the three triggers.
//! - `catch_up`: the fire times a far-behind job missed, summarised in bounded work.
//! - `datestring`: the ISO date-string family (start/end/run dates) and the strict
//!   `next_run_time` parser.
//! - `describe`: a trigger in plain words, for people (`Trigger::describe`).
//! - `dst`: where a DST change moves or repeats a fire time (`dst_mark`).
//! - `datetime`: the dates a trigger was given, `isoformat()`, zone names.
//! - `zone`: Python's wall-clock-plus-`fold` view of a zone, which the cron search needs.
//! - `timedelta`: CPython's timedelta and float-timestamp arithmetic, for interval.
//! - `pyvalue`: how Python names and prints a JSON value, for the reference's messages.
//! - `state`: the persisted JSON form.

mod args;

pub use args::{MAX_JITTER_SECONDS, accepted_arguments};
mod catch_up;
mod cron;
mod date;
mod datestring;
mod datetime;
mod describe;
mod dst;
mod error;
mod interval;
mod pyvalue;
mod state;
mod timedelta;
mod zone;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

pub use self::catch_up::{CatchUp, FireCount};
pub use self::dst::{DstMark, dst_mark};
pub use self::error::TriggerError;
pub use self::interval::MAX_INTERVAL_DAYS;
pub use self::pyvalue::truthy;

use self::cron::CronTrigger;
use self::date::DateTrigger;
use self::interval::IntervalTrigger;

/// A validated trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Date(DateTrigger),
    Interval(IntervalTrigger),
    Cron(CronTrigger),
}

impl Trigger {
    /// Builds a trigger from its name (`date`, `interval`, `cron`) and its arguments: every key
    /// of a `POST /scheduler/jobs` body that is not a job option (`timezone`, `start_date`,
    /// `hour`, `seconds`, `jitter`, ...). `default_tz` is the scheduler's zone, used when no
    /// `timezone` is given; `now` feeds the defaults `run_date = now` and
    /// `start_date = now + interval`.
    ///
    /// # Errors
    /// Unknown trigger name (`No trigger by the name "weekly" was found`), unknown argument,
    /// bad expression, bad date string, unknown zone — each with the reference's text.
    pub fn from_args(
        kind: &str,
        args: &Map<String, Value>,
        default_tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<Trigger, TriggerError> {
        args::build(kind, args, default_tz, now)
    }

    /// `date`, `interval` or `cron`.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            Kind::Date(_) => "date",
            Kind::Interval(_) => "interval",
            Kind::Cron(_) => "cron",
        }
    }

    /// The trigger's zone: its fire times are shown in it.
    pub fn timezone(&self) -> Tz {
        match &self.kind {
            Kind::Date(t) => t.timezone,
            Kind::Interval(t) => t.timezone,
            Kind::Cron(t) => t.timezone,
        }
    }

    /// The most seconds each fire time is delayed at random (`jitter`), if any.
    pub fn jitter(&self) -> Option<f64> {
        match &self.kind {
            Kind::Date(_) => None,
            Kind::Interval(t) => t.jitter,
            Kind::Cron(t) => t.jitter,
        }
        .filter(|jitter| *jitter > 0.0)
    }

    /// The same trigger without its jitter: the fire times it would have with none, which a
    /// preview shows (jitter is random by definition).
    pub fn without_jitter(&self) -> Trigger {
        let mut trigger = self.clone();
        match &mut trigger.kind {
            Kind::Date(_) => {}
            Kind::Interval(t) => t.jitter = None,
            Kind::Cron(t) => t.jitter = None,
        }
        trigger
    }

    /// The trigger in plain words: `once at 2030-01-02 03:04:05+08:00`, `every 90 seconds
    /// from ...`, `at 09:30, Monday to Friday, Asia/Shanghai` (see `describe.rs`).
    pub fn describe(&self) -> String {
        describe::describe(self)
    }

    /// APScheduler's `get_next_fire_time(previous_fire_time, now)`: the next fire time strictly
    /// after `previous` (or at/after `now`/`start_date` when there is none), or `None` when the
    /// trigger is exhausted. The result carries the offset the job JSON shows (a time in a
    /// spring-forward gap keeps the pre-transition offset, as APScheduler 3.11 does).
    pub fn next_fire_time(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<FixedOffset>> {
        match &self.kind {
            Kind::Date(t) => t.next_fire_time(previous),
            Kind::Interval(t) => t.next_fire_time(previous, now),
            Kind::Cron(t) => t.next_fire_time(previous, now),
        }
    }

    /// The trigger's fields as the job JSON shows them (CONTRACT §1): `run_date`; or
    /// `start_date`, `end_date` (if set) and the re-expressed interval units; or
    /// `start_date`/`end_date` (if set) and the given cron fields as normalised strings.
    pub fn fields(&self) -> Map<String, Value> {
        match &self.kind {
            Kind::Date(t) => t.fields(),
            Kind::Interval(t) => t.fields(),
            Kind::Cron(t) => t.fields(),
        }
    }

    /// The portable persisted form (JSON, never a pickle). `from_state(to_state())` gives back
    /// an equal trigger.
    pub fn to_state(&self) -> Value {
        state::to_state(self)
    }

    /// [`Trigger::to_state`] to serialise in place, without building the `Value`: a job's
    /// state embeds it on every add and change.
    pub fn state(&self) -> impl serde::Serialize + '_ {
        state::State(self)
    }

    /// Reads a trigger back from [`Trigger::to_state`]'s form.
    ///
    /// # Errors
    /// A state that does not describe a valid trigger.
    pub fn from_state(state: &Value) -> Result<Trigger, TriggerError> {
        state::from_state(state)
    }
}

/// Parses an IANA zone name (`UTC`, `Europe/Berlin`).
///
/// # Errors
/// `'No time zone found with key <name>'` (with the quotes, as the reference sends it).
pub fn parse_timezone(name: &str) -> Result<Tz, TriggerError> {
    datetime::parse_timezone(name)
}

/// Parses a job's `next_run_time` string strictly, as APScheduler's `convert_to_datetime`:
/// `YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|±HH:MM]`; a naive time is localised in `tz`.
///
/// # Errors
/// `Invalid date string` for anything else.
pub fn parse_next_run_time(text: &str, tz: Tz) -> Result<DateTime<FixedOffset>, TriggerError> {
    datestring::parse_strict(text, tz)
}

/// Renders a time as Python's `datetime.isoformat()`: `2030-01-02T03:04:05+05:30`, the
/// fraction only when non-zero, never `Z`.
pub fn isoformat(time: &DateTime<FixedOffset>) -> String {
    datetime::isoformat(time)
}

/// Expresses a UTC instant in `tz` with the offset in force there (for `now` in a zone).
pub fn in_zone(time: DateTime<Utc>, tz: Tz) -> DateTime<FixedOffset> {
    zone::in_zone(time, tz)
}
