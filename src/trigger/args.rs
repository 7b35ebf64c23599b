//! From a POST body's trigger arguments to a [`Trigger`], checking in the reference's order so
//! that a body with several faults gets the reference's message:
//!
//! 1. Flask-APScheduler's `fix_job_def` parses `start_date`/`end_date`/`run_date` strings
//!    (tickd: the ISO family only, CONTRACT §2.8);
//! 2. APScheduler looks the trigger up by name;
//! 3. Python refuses a keyword the trigger's constructor does not take;
//! 4. the constructor runs (zone, dates, then fields or units, in each trigger's own order).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::cron::{CronTrigger, FIELD_NAMES};
use super::date::DateTrigger;
use super::datestring;
use super::datetime::{self, ParsedDate, TriggerDate};
use super::error::TriggerError;
use super::interval::{IntervalTrigger, UNITS};
use super::pyvalue::truthy;
use super::timedelta::TimeDelta;
use super::{Kind, Trigger, pyvalue, zone};

const DATE_ARGS: [&str; 3] = ["start_date", "end_date", "run_date"];

/// The largest `jitter` accepted, in seconds: a year, as every other duration a job takes.
pub const MAX_JITTER_SECONDS: f64 = 31_536_000.0;

/// The arguments `DateTrigger` accepts.
const DATE_ARGUMENTS: [&str; 2] = ["run_date", "timezone"];

/// What `IntervalTrigger` and `CronTrigger` take besides their units or fields.
const SCHEDULE_ARGUMENTS: [&str; 4] = ["start_date", "end_date", "timezone", "jitter"];

/// The arguments `IntervalTrigger` accepts.
const INTERVAL_ARGUMENTS: [&str; 9] = joined(UNITS, SCHEDULE_ARGUMENTS);

/// The arguments `CronTrigger` accepts.
const CRON_ARGUMENTS: [&str; 12] = joined(FIELD_NAMES, SCHEDULE_ARGUMENTS);

/// `first` then `then`, so that a unit or field added to its list is accepted without a second
/// edit here; a wrong length `N` stops the build.
const fn joined<const A: usize, const B: usize, const N: usize>(
    first: [&'static str; A],
    then: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "N must be the sum of the two lengths");
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = first[i];
        i += 1;
    }
    while i < N {
        out[i] = then[i - A];
        i += 1;
    }
    out
}

/// The arguments a trigger of this kind accepts, or `None` for an unknown kind.
pub fn accepted_arguments(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "date" => Some(&DATE_ARGUMENTS),
        "interval" => Some(&INTERVAL_ARGUMENTS),
        "cron" => Some(&CRON_ARGUMENTS),
        _ => None,
    }
}

pub(super) fn build(
    kind: &str,
    args: &Map<String, Value>,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Result<Trigger, TriggerError> {
    let mut parsed = HashMap::new();
    for name in DATE_ARGS {
        if let Some(Value::String(text)) = args.get(name) {
            parsed.insert(name, datestring::parse_date_string(text)?);
        }
    }
    let (class, accepted) = match kind {
        "date" => ("DateTrigger", DATE_ARGUMENTS.as_slice()),
        "interval" => ("IntervalTrigger", INTERVAL_ARGUMENTS.as_slice()),
        "cron" => ("CronTrigger", CRON_ARGUMENTS.as_slice()),
        other => return Err(TriggerError::unknown_trigger(other)),
    };
    if let Some(key) = args.keys().find(|k| !accepted.contains(&k.as_str())) {
        return Err(TriggerError::unexpected_argument(class, key));
    }
    let given = Given {
        args,
        parsed,
        default_tz,
        now,
    };
    let kind = match kind {
        "date" => Kind::Date(build_date(&given)?),
        "interval" => Kind::Interval(build_interval(&given)?),
        _ => Kind::Cron(build_cron(&given)?),
    };
    Ok(Trigger { kind })
}

/// What a trigger is built from: the arguments, with the date strings already parsed, and the
/// scheduler's zone and clock, which the defaults come from.
struct Given<'a> {
    args: &'a Map<String, Value>,
    parsed: HashMap<&'static str, ParsedDate>,
    default_tz: Tz,
    now: DateTime<Utc>,
}

impl Given<'_> {
    /// `convert_to_datetime(value, zone, name)`: null or absent → `None`; a parsed string;
    /// any other type → `Unsupported type for <name>: <type>`.
    fn date(&self, name: &'static str, tz: Tz) -> Result<Option<TriggerDate>, TriggerError> {
        if let Some(date) = self.parsed.get(name) {
            return Ok(Some(date.resolve(tz)));
        }
        match self.args.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(other) => Err(TriggerError::unsupported_date_type(
                name,
                pyvalue::type_name(other),
            )),
        }
    }

    /// Cron and interval take `timezone` only `if timezone:`; otherwise the scheduler's zone
    /// (the reference would then look at `start_date`'s own zone, which a JSON client cannot
    /// rely on).
    fn zone_if_truthy(&self) -> Result<Tz, TriggerError> {
        match self.args.get("timezone") {
            Some(value) if truthy(value) => zone_of(value),
            _ => Ok(self.default_tz),
        }
    }
}

fn build_date(given: &Given<'_>) -> Result<DateTrigger, TriggerError> {
    // `astimezone(timezone) or get_localzone()`: only None falls back.
    let timezone = match given.args.get("timezone") {
        None | Some(Value::Null) => given.default_tz,
        Some(value) => zone_of(value)?,
    };
    let run_date = given.date("run_date", timezone)?.unwrap_or(TriggerDate {
        time: zone::in_zone(given.now, timezone),
        in_zone: true,
    });
    Ok(DateTrigger { run_date, timezone })
}

fn build_interval(given: &Given<'_>) -> Result<IntervalTrigger, TriggerError> {
    let units: Vec<(&str, &Value)> = UNITS
        .iter()
        .filter_map(|unit| given.args.get(*unit).map(|v| (*unit, v)))
        .collect();
    let interval = TimeDelta::from_components(&units)?;
    let timezone = given.zone_if_truthy()?;
    // `start_date or (now + interval)`: a falsy non-string means the default.
    let start_date = match given.args.get("start_date") {
        Some(value) if !matches!(value, Value::String(_)) && !truthy(value) => None,
        _ => given.date("start_date", timezone)?,
    };
    let end_date = given.date("end_date", timezone)?;
    let jitter = jitter_of(given.args)?;
    IntervalTrigger::new(interval, start_date, end_date, timezone, jitter, given.now)
}

fn build_cron(given: &Given<'_>) -> Result<CronTrigger, TriggerError> {
    let timezone = given.zone_if_truthy()?;
    let start_date = given.date("start_date", timezone)?;
    let end_date = given.date("end_date", timezone)?;
    let fields = FIELD_NAMES.map(|name| match given.args.get(name) {
        None | Some(Value::Null) => None,
        Some(value) => Some(pyvalue::str_of(value)),
    });
    let jitter = jitter_of(given.args)?;
    CronTrigger::new(fields, start_date, end_date, timezone, jitter)
}

/// APScheduler's `astimezone(obj)`: a name, or `Expected tzinfo, got int instead`.
fn zone_of(value: &Value) -> Result<Tz, TriggerError> {
    match value {
        Value::String(name) => datetime::parse_timezone(name),
        other => Err(TriggerError(format!(
            "Expected tzinfo, got {} instead",
            pyvalue::type_name(other)
        ))),
    }
}

/// `jitter`: a number of seconds (a bool counts as 0 or 1, as in Python), from 0 to
/// [`MAX_JITTER_SECONDS`]. The reference accepts anything and fails at the first fire-time
/// computation; tickd refuses up front, a wrong type with the text Python would have raised
/// then. A negative jitter (which the reference takes, moving fire times earlier) is refused:
/// it can move a fire time before the previous one, and a job's fire times would then walk
/// backwards instead of on.
fn jitter_of(args: &Map<String, Value>) -> Result<Option<f64>, TriggerError> {
    let given = args.get("jitter");
    let jitter = match given {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(other) => {
            return Err(TriggerError(format!(
                "unsupported operand type(s) for -: '{}' and 'int'",
                pyvalue::type_name(other)
            )));
        }
    };
    if (0.0..=MAX_JITTER_SECONDS).contains(&jitter) {
        Ok(Some(jitter))
    } else {
        Err(TriggerError(format!(
            "jitter must be a number of seconds from 0 to {MAX_JITTER_SECONDS} (a year), not {}",
            given.map(pyvalue::str_of).unwrap_or_default()
        )))
    }
}
