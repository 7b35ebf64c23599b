//! The `interval` trigger: APScheduler 3.11's `IntervalTrigger`.
//!
//! Fire times sit on the grid `start_date + k·interval` in *absolute* time (a `days=1` job moves
//! by an hour in wall-clock terms across DST), computed on float epoch seconds exactly as 3.11
//! does, so microsecond results match. CONTRACT §2.4: a negative total is refused (the
//! reference would hang); a total of 0 means one second, as in the reference.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::datetime::{TriggerDate, isoformat};
use super::error::TriggerError;
use super::timedelta::{self, TimeDelta};
use super::zone::{self, Wall};

/// The units a client may give, in the order the job JSON shows them.
pub(crate) const UNITS: [&str; 5] = ["weeks", "days", "hours", "minutes", "seconds"];

/// The longest interval accepted, in days: the span of Python's dates (years 1 to 9999), so a
/// longer one could never fire twice. Python itself takes up to 999,999,999 days, which no
/// date arithmetic could add to any date.
pub const MAX_INTERVAL_DAYS: i64 = 3_652_059;

const MAX_INTERVAL_MICROS: i128 = MAX_INTERVAL_DAYS as i128 * 86_400_000_000;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IntervalTrigger {
    pub interval: TimeDelta,
    pub start_date: TriggerDate,
    pub end_date: Option<TriggerDate>,
    pub timezone: Tz,
    pub jitter: Option<f64>,
}

impl IntervalTrigger {
    /// `IntervalTrigger(weeks=..., seconds=..., start_date=..., end_date=..., timezone=...,
    /// jitter=...)` with the units already read from JSON. `start_date` `None` means "now +
    /// interval", added on the wall clock as Python's `datetime.now(zone) + interval` does.
    ///
    /// # Errors
    /// A negative total interval (CONTRACT §2.4); a default start date past year 9999
    /// (Python's `OverflowError`); an interval longer than [`MAX_INTERVAL_DAYS`].
    pub(crate) fn new(
        interval: TimeDelta,
        start_date: Option<TriggerDate>,
        end_date: Option<TriggerDate>,
        timezone: Tz,
        jitter: Option<f64>,
        now: DateTime<Utc>,
    ) -> Result<Self, TriggerError> {
        if interval.micros() < 0 {
            return Err(TriggerError(format!(
                "The interval must not be negative (it totals {} seconds)",
                super::pyvalue::float_repr(interval.total_seconds())
            )));
        }
        let interval = if interval.micros() == 0 {
            TimeDelta::from_micros(1_000_000)
        } else {
            interval
        };
        let start_date = match start_date {
            Some(date) => date,
            None => default_start(interval, timezone, now)?,
        };
        if interval.micros() > MAX_INTERVAL_MICROS {
            return Err(TriggerError(format!(
                "The interval (weeks, days, hours, minutes and seconds together) must not be \
                 longer than {MAX_INTERVAL_DAYS} days, the span of the years 1 to 9999 (it \
                 totals {} seconds)",
                super::pyvalue::float_repr(interval.total_seconds())
            )));
        }
        Ok(IntervalTrigger {
            interval,
            start_date,
            end_date,
            timezone,
            jitter,
        })
    }

    /// APScheduler's `IntervalTrigger.get_next_fire_time`.
    pub(crate) fn next_fire_time(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<FixedOffset>> {
        let length = self.interval.total_seconds();
        let start = timedelta::timestamp(self.start_date.time.to_utc());
        let mut next = match previous {
            Some(previous) => timedelta::timestamp(previous.to_utc()) + length,
            None if self.start_date.time > now => start,
            None => {
                let diff = timedelta::timestamp(now) - start;
                let k = (diff / length).ceil();
                start + length * k
            }
        };
        if let Some(jitter) = self.jitter {
            next += jitter * rand::random::<f64>();
        }
        if let Some(end) = &self.end_date
            && next > timedelta::timestamp(end.time.to_utc())
        {
            return None;
        }
        let instant = timedelta::from_timestamp(next)?;
        Some(zone::in_zone(instant, self.timezone))
    }

    /// The latest fire time at or before `until` (and the end date) on the grid
    /// `from + k·interval`, with its `k`: the walk from `from` adds the interval at each step,
    /// exactly in whole microseconds (the float round trip of [`Self::next_fire_time`] lands
    /// on the microsecond for any date before 2106), so k steps are one multiplication.
    /// Jitter is left out. `None` when `from` is past `until` or the end date.
    pub(crate) fn latest_fire_time(
        &self,
        from: DateTime<FixedOffset>,
        until: DateTime<Utc>,
    ) -> Option<(DateTime<FixedOffset>, u64)> {
        let step = self.interval.micros();
        let mut bound = i128::from(until.timestamp_micros());
        if let Some(end) = &self.end_date {
            bound = bound.min(i128::from(end.time.timestamp_micros()));
        }
        let start = i128::from(from.timestamp_micros());
        if step <= 0 || start > bound {
            return None;
        }
        let k = (bound - start) / step;
        let latest = self.at_micros(start.checked_add(k.checked_mul(step)?)?)?;
        Some((latest, u64::try_from(k).ok()?))
    }

    /// The grid point one interval before `time`.
    pub(crate) fn step_back(&self, time: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
        self.at_micros(i128::from(time.timestamp_micros()).checked_sub(self.interval.micros())?)
    }

    /// The instant `micros` after the epoch, shown in the trigger's zone as a fire time is.
    fn at_micros(&self, micros: i128) -> Option<DateTime<FixedOffset>> {
        let instant = DateTime::from_timestamp_micros(i64::try_from(micros).ok()?)?;
        Some(zone::in_zone(instant, self.timezone))
    }

    /// `start_date`, `end_date` (if set), then each unit > 0, re-expressed from the total as
    /// Flask-APScheduler's `extract_timedelta` does (sub-second parts are not shown).
    pub(crate) fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(
            "start_date".into(),
            Value::String(isoformat(&self.start_date.time)),
        );
        if let Some(end) = &self.end_date {
            map.insert("end_date".into(), Value::String(isoformat(&end.time)));
        }
        let (days, seconds) = self.interval.days_seconds();
        let values = [
            days / 7,
            days % 7,
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
        ];
        for (unit, value) in UNITS.iter().zip(values) {
            if value > 0 {
                map.insert((*unit).into(), Value::from(value as i64));
            }
        }
        map
    }
}

/// `datetime.now(zone) + interval`: a wall-clock addition (the sum has `fold = 0`), so the
/// result may be a gap time shown with its pre-transition offset, as the reference shows it.
fn default_start(
    interval: TimeDelta,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<TriggerDate, TriggerError> {
    let wall = zone::wall_at(tz, now);
    let micros = i64::try_from(interval.micros()).ok();
    let naive = micros
        .and_then(|us| wall.naive.checked_add_signed(Duration::microseconds(us)))
        .filter(|n| n.and_utc().timestamp() < 253_402_300_800)
        .ok_or_else(|| TriggerError::new("date value out of range"))?;
    Ok(TriggerDate {
        time: zone::fixed(tz, Wall::new(naive, false)),
        in_zone: true,
    })
}
