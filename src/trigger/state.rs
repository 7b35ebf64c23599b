//! The persisted form of a trigger: plain JSON, versioned, never a pickle.
//!
//! It keeps what the trigger was built from rather than derived values: the zone's name, each
//! date as its exact instant plus the offset it shows and whether it belongs to the trigger's
//! zone, the interval as CPython's `(days, seconds, microseconds)`, and the cron fields as the
//! texts the user gave (so a reload compiles exactly the same expressions). An `iso` rendering
//! of each date is included for people reading the store; it is ignored on reading.

use chrono::{DateTime, Datelike};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use super::args::MAX_JITTER_SECONDS;
use super::cron::{CronTrigger, FIELD_NAMES};
use super::date::DateTrigger;
use super::datetime::{self, TriggerDate, isoformat};
use super::error::TriggerError;
use super::interval::{IntervalTrigger, MAX_INTERVAL_DAYS};
use super::timedelta::TimeDelta;
use super::{Kind, Trigger, zone};

const VERSION: u64 = 1;

/// The state as written, serialised straight from the trigger: every job add and change
/// writes it, and building it as a `Value` first cost a map, a hashed key and an owned
/// string per entry. [`to_state`] gives the same JSON as a `Value`.
pub(crate) struct State<'a>(pub(crate) &'a Trigger);

impl Serialize for State<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("version", &VERSION)?;
        match &self.0.kind {
            Kind::Date(t) => {
                map.serialize_entry("trigger", "date")?;
                map.serialize_entry("timezone", t.timezone.name())?;
                map.serialize_entry("run_date", &DateState(Some(&t.run_date)))?;
            }
            Kind::Interval(t) => {
                let micros = t.interval.micros();
                let day = 86_400_000_000i128;
                map.serialize_entry("trigger", "interval")?;
                map.serialize_entry("timezone", t.timezone.name())?;
                map.serialize_entry(
                    "interval",
                    &IntervalState {
                        days: micros.div_euclid(day) as i64,
                        seconds: (micros.rem_euclid(day) / 1_000_000) as i64,
                        microseconds: (micros.rem_euclid(1_000_000)) as i64,
                    },
                )?;
                map.serialize_entry("start_date", &DateState(Some(&t.start_date)))?;
                map.serialize_entry("end_date", &DateState(t.end_date.as_ref()))?;
                map.serialize_entry("jitter", &t.jitter)?;
            }
            Kind::Cron(t) => {
                map.serialize_entry("trigger", "cron")?;
                map.serialize_entry("timezone", t.timezone.name())?;
                map.serialize_entry("fields", &CronFields(t))?;
                map.serialize_entry("start_date", &DateState(t.start_date.as_ref()))?;
                map.serialize_entry("end_date", &DateState(t.end_date.as_ref()))?;
                map.serialize_entry("jitter", &t.jitter)?;
            }
        }
        map.end()
    }
}

pub(super) fn to_state(trigger: &Trigger) -> Value {
    // Serialising plain data under string keys cannot fail.
    serde_json::to_value(State(trigger)).unwrap_or(Value::Null)
}

/// CPython's `timedelta(days, seconds, microseconds)` of an interval.
#[derive(Serialize)]
struct IntervalState {
    days: i64,
    seconds: i64,
    microseconds: i64,
}

/// The cron fields the user gave, by name, as given.
struct CronFields<'a>(&'a CronTrigger);

impl Serialize for CronFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            FIELD_NAMES
                .iter()
                .zip(self.0.given())
                .filter_map(|(name, text)| text.as_deref().map(|text| (*name, text))),
        )
    }
}

/// A date: its instant, the offset it shows, whether it is in the trigger's zone, and an
/// `iso` rendering for people reading the store (ignored on reading); `null` when unset.
struct DateState<'a>(Option<&'a TriggerDate>);

impl Serialize for DateState<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(date) = self.0 else {
            return serializer.serialize_none();
        };
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("iso", &isoformat(&date.time))?;
        map.serialize_entry("timestamp_us", &date.time.timestamp_micros())?;
        map.serialize_entry("utc_offset", &date.time.offset().local_minus_utc())?;
        map.serialize_entry("in_zone", &date.in_zone)?;
        map.end()
    }
}

pub(super) fn from_state(state: &Value) -> Result<Trigger, TriggerError> {
    let bad = |what: &str| TriggerError(format!("Invalid trigger state: {what}"));
    let version = state.get("version").and_then(Value::as_u64);
    if version != Some(VERSION) {
        return Err(bad("unknown version"));
    }
    let timezone = state
        .get("timezone")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing timezone"))?;
    let timezone = datetime::parse_timezone(timezone)?;
    // A jitter outside what the API takes (a store written by hand) is read as its nearest
    // limit: every value in between fires sensibly.
    let jitter = state
        .get("jitter")
        .and_then(Value::as_f64)
        .map(|jitter| jitter.clamp(0.0, MAX_JITTER_SECONDS));
    let kind = match state.get("trigger").and_then(Value::as_str) {
        Some("date") => Kind::Date(DateTrigger {
            run_date: read_date(state.get("run_date"))?.ok_or_else(|| bad("missing run_date"))?,
            timezone,
        }),
        Some("interval") => {
            let interval = state
                .get("interval")
                .ok_or_else(|| bad("missing interval"))?;
            let part = |name: &str| {
                interval
                    .get(name)
                    .and_then(Value::as_i64)
                    .map(i128::from)
                    .ok_or_else(|| bad("bad interval"))
            };
            let micros = part("days")? * 86_400_000_000
                + part("seconds")? * 1_000_000
                + part("microseconds")?;
            // What the API accepts, and nothing else: a negative or zero interval would make
            // a job's fire times stand still or walk backwards.
            if micros <= 0 || micros > i128::from(MAX_INTERVAL_DAYS) * 86_400_000_000 {
                return Err(bad("interval out of range"));
            }
            Kind::Interval(IntervalTrigger {
                interval: TimeDelta::from_micros(micros),
                start_date: read_date(state.get("start_date"))?
                    .ok_or_else(|| bad("missing start_date"))?,
                end_date: read_date(state.get("end_date"))?,
                timezone,
                jitter,
            })
        }
        Some("cron") => {
            let fields = state.get("fields").and_then(Value::as_object);
            let given = FIELD_NAMES.map(|name| {
                fields
                    .and_then(|f| f.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            Kind::Cron(CronTrigger::new(
                given,
                read_date(state.get("start_date"))?,
                read_date(state.get("end_date"))?,
                timezone,
                jitter,
            )?)
        }
        _ => return Err(bad("unknown trigger")),
    };
    Ok(Trigger { kind })
}

fn read_date(value: Option<&Value>) -> Result<Option<TriggerDate>, TriggerError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bad = || TriggerError::new("Invalid trigger state: bad date");
    let micros = value
        .get("timestamp_us")
        .and_then(Value::as_i64)
        .ok_or_else(bad)?;
    let offset = value
        .get("utc_offset")
        .and_then(Value::as_i64)
        .and_then(|o| i32::try_from(o).ok())
        .ok_or_else(bad)?;
    let in_zone = value
        .get("in_zone")
        .and_then(Value::as_bool)
        .ok_or_else(bad)?;
    // An offset of a day or more, or a date outside Python's years 1 to 9999, is no date
    // the API could have written: refused rather than overflowing later arithmetic.
    let local = DateTime::from_timestamp_micros(micros)
        .filter(|_| offset.abs() < 86_400)
        .and_then(|instant| {
            instant
                .naive_utc()
                .checked_add_signed(chrono::TimeDelta::seconds(i64::from(offset)))
        })
        .filter(|local| (1..=9999).contains(&local.year()))
        .ok_or_else(bad)?;
    Ok(Some(TriggerDate {
        time: zone::to_fixed(local, offset),
        in_zone,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// States only a hand-edited store holds: refused, or read within the API's limits, and
    /// never an overflow in the arithmetic that reads them.
    #[test]
    fn impossible_states_are_refused_or_bounded() {
        let date = |timestamp_us: i64, utc_offset: i64| json!({"timestamp_us": timestamp_us, "utc_offset": utc_offset, "in_zone": false});
        let interval = |days: i64, start: Value, jitter: Value| {
            json!({"version": 1, "trigger": "interval", "timezone": "UTC",
                   "interval": {"days": days, "seconds": 0, "microseconds": 0},
                   "start_date": start, "end_date": null, "jitter": jitter})
        };
        let ok = date(0, 0);
        for (state, why) in [
            (
                interval(-1, ok.clone(), Value::Null),
                "interval out of range",
            ),
            (
                interval(0, ok.clone(), Value::Null),
                "interval out of range",
            ),
            (
                interval(3_652_060, ok.clone(), Value::Null),
                "interval out of range",
            ),
            (interval(1, date(i64::MAX, 0), Value::Null), "bad date"),
            (
                interval(1, date(8_210_266_876_799_999_999, 86_399), Value::Null),
                "bad date",
            ),
            (
                interval(1, date(0, i64::from(i32::MAX)), Value::Null),
                "bad date",
            ),
            (
                interval(1, date(253_402_300_800_000_000, 0), Value::Null),
                "bad date",
            ),
        ] {
            let error = Trigger::from_state(&state).unwrap_err().0;
            assert!(error.ends_with(why), "{state}: {error}");
        }
        for (jitter, read) in [(-1e300, 0.0), (1e300, MAX_JITTER_SECONDS), (5.0, 5.0)] {
            let trigger = Trigger::from_state(&interval(1, ok.clone(), json!(jitter))).unwrap();
            let Kind::Interval(interval) = trigger.kind else {
                panic!("an interval trigger")
            };
            assert_eq!(interval.jitter, Some(read));
        }
        // The ends of the years 1 to 9999, with the largest offsets, read back.
        let first = date(-62_135_596_800_000_000 - 50_400_000_000, 50_400);
        let last = date(253_402_300_799_999_999 + 43_200_000_000, -43_200);
        assert!(Trigger::from_state(&interval(1, first, Value::Null)).is_ok());
        assert!(Trigger::from_state(&interval(1, last, Value::Null)).is_ok());
    }
}
