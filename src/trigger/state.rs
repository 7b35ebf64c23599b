//! The persisted form of a trigger: plain JSON, versioned, never a pickle.
//!
//! It keeps what the trigger was built from rather than derived values: the zone's name, each
//! date as its exact instant plus the offset it shows and whether it belongs to the trigger's
//! zone, the interval as CPython's `(days, seconds, microseconds)`, and the cron fields as the
//! texts the user gave (so a reload compiles exactly the same expressions). An `iso` rendering
//! of each date is included for people reading the store; it is ignored on reading.

use chrono::DateTime;
use serde_json::{Map, Value, json};

use super::cron::{CronTrigger, FIELD_NAMES};
use super::date::DateTrigger;
use super::datetime::{self, TriggerDate, isoformat};
use super::error::TriggerError;
use super::interval::IntervalTrigger;
use super::timedelta::TimeDelta;
use super::{Kind, Trigger, zone};

const VERSION: u64 = 1;

pub(super) fn to_state(trigger: &Trigger) -> Value {
    match &trigger.kind {
        Kind::Date(t) => json!({
            "version": VERSION,
            "trigger": "date",
            "timezone": t.timezone.name(),
            "run_date": date_state(Some(&t.run_date)),
        }),
        Kind::Interval(t) => {
            let micros = t.interval.micros();
            let day = 86_400_000_000i128;
            json!({
                "version": VERSION,
                "trigger": "interval",
                "timezone": t.timezone.name(),
                "interval": {
                    "days": micros.div_euclid(day) as i64,
                    "seconds": (micros.rem_euclid(day) / 1_000_000) as i64,
                    "microseconds": (micros.rem_euclid(1_000_000)) as i64,
                },
                "start_date": date_state(Some(&t.start_date)),
                "end_date": date_state(t.end_date.as_ref()),
                "jitter": t.jitter,
            })
        }
        Kind::Cron(t) => {
            let fields: Map<String, Value> = FIELD_NAMES
                .iter()
                .zip(t.given())
                .filter_map(|(name, text)| {
                    text.as_ref()
                        .map(|text| ((*name).to_owned(), Value::String(text.clone())))
                })
                .collect();
            json!({
                "version": VERSION,
                "trigger": "cron",
                "timezone": t.timezone.name(),
                "fields": fields,
                "start_date": date_state(t.start_date.as_ref()),
                "end_date": date_state(t.end_date.as_ref()),
                "jitter": t.jitter,
            })
        }
    }
}

fn date_state(date: Option<&TriggerDate>) -> Value {
    match date {
        None => Value::Null,
        Some(d) => json!({
            "iso": isoformat(&d.time),
            "timestamp_us": d.time.timestamp_micros(),
            "utc_offset": d.time.offset().local_minus_utc(),
            "in_zone": d.in_zone,
        }),
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
    let jitter = state.get("jitter").and_then(Value::as_f64);
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
    let instant = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    let local = instant.naive_utc() + chrono::Duration::seconds(i64::from(offset));
    Ok(Some(TriggerDate {
        time: zone::to_fixed(local, offset),
        in_zone,
    }))
}
