//! A trigger in plain words, for people reading a schedule (the console, a preview): never
//! parsed back, but never wrong either. Times are written as Python's `str(datetime)`
//! (`2030-01-02 03:04:05+08:00`), the form APScheduler's own `__str__` uses.
//!
//! - date: `once at 2030-01-02 03:04:05+08:00`;
//! - interval: `every 90 seconds from 2030-01-02 03:04:05+08:00`, `every 1 day 2 hours from
//!   ... until ...` (below two minutes in seconds, as people count them; then weeks, days,
//!   hours, minutes and seconds, the zero ones left out);
//! - cron: see `cron/describe.rs`; it always ends with the zone, the one thing its wall
//!   times do not carry.

use super::datetime::isoformat;
use super::timedelta::TimeDelta;
use super::{Kind, Trigger};
use chrono::{DateTime, FixedOffset};

/// [`Trigger::describe`].
pub(super) fn describe(trigger: &Trigger) -> String {
    match &trigger.kind {
        Kind::Date(t) => format!("once at {}", plain_time(&t.run_date.time)),
        Kind::Interval(t) => {
            let mut text = format!(
                "every {} from {}",
                interval_words(t.interval),
                plain_time(&t.start_date.time)
            );
            if let Some(end) = &t.end_date {
                text.push_str(&format!(" until {}", plain_time(&end.time)));
            }
            text
        }
        Kind::Cron(t) => t.describe(),
    }
}

/// Python's `str(datetime)`: `isoformat()` with a space between date and time.
pub(crate) fn plain_time(time: &DateTime<FixedOffset>) -> String {
    isoformat(time).replacen('T', " ", 1)
}

/// `count unit` with the unit singular or plural.
pub(crate) fn counted(count: u64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

const MICROS_PER_SECOND: i128 = 1_000_000;

/// An interval's length: `90 seconds`, `hour`, `1 day 2 hours`, `0.5 seconds`.
fn interval_words(interval: TimeDelta) -> String {
    let micros = interval.micros();
    if micros == 3_600 * MICROS_PER_SECOND {
        return "hour".to_owned();
    }
    if micros == 60 * MICROS_PER_SECOND {
        return "minute".to_owned();
    }
    if micros == 86_400 * MICROS_PER_SECOND {
        return "day".to_owned();
    }
    if micros < 120 * MICROS_PER_SECOND {
        return seconds_words(micros);
    }
    let whole = micros / MICROS_PER_SECOND;
    let fraction = micros % MICROS_PER_SECOND;
    let units: [(&str, i128); 4] = [
        ("week", 7 * 86_400),
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
    ];
    let mut rest = whole;
    let mut parts = Vec::new();
    for (unit, seconds) in units {
        let count = rest / seconds;
        rest %= seconds;
        if count > 0 {
            parts.push(counted(u64::try_from(count).unwrap_or(u64::MAX), unit));
        }
    }
    if rest > 0 || fraction > 0 {
        parts.push(seconds_words(rest * MICROS_PER_SECOND + fraction));
    }
    parts.join(" ")
}

/// `90 seconds`, `1 second`, `0.000001 seconds`.
fn seconds_words(micros: i128) -> String {
    let whole = micros / MICROS_PER_SECOND;
    let fraction = micros % MICROS_PER_SECOND;
    if fraction == 0 {
        return counted(u64::try_from(whole).unwrap_or(u64::MAX), "second");
    }
    let digits = format!("{fraction:06}");
    format!("{whole}.{} seconds", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use chrono_tz::Tz;
    use serde_json::{Map, Value, json};

    use crate::trigger::Trigger;

    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    fn trigger(kind: &str, args: Value) -> Trigger {
        let args: Map<String, Value> = args.as_object().unwrap().clone();
        Trigger::from_args(kind, &args, Tz::UTC, now()).unwrap()
    }

    #[test]
    fn date_and_interval_in_words() {
        let table = [
            (
                "date",
                json!({"run_date": "2030-01-02 03:04:05", "timezone": "Asia/Shanghai"}),
                "once at 2030-01-02 03:04:05+08:00",
            ),
            (
                "date",
                json!({"run_date": "2030-01-02T03:04:05.250000-05:00"}),
                "once at 2030-01-02 03:04:05.250000-05:00",
            ),
            (
                "interval",
                json!({"seconds": 90, "start_date": "2030-01-02 03:04:05", "timezone": "Asia/Shanghai"}),
                "every 90 seconds from 2030-01-02 03:04:05+08:00",
            ),
            (
                "interval",
                json!({"days": 1, "hours": 2, "start_date": "2030-01-02 03:04:05"}),
                "every 1 day 2 hours from 2030-01-02 03:04:05+00:00",
            ),
            (
                "interval",
                json!({"hours": 1, "start_date": "2030-01-02", "end_date": "2030-02-01"}),
                "every hour from 2030-01-02 00:00:00+00:00 until 2030-02-01 00:00:00+00:00",
            ),
            (
                "interval",
                json!({"seconds": 1, "start_date": "2030-01-02"}),
                "every 1 second from 2030-01-02 00:00:00+00:00",
            ),
            (
                "interval",
                json!({"seconds": 0.5, "start_date": "2030-01-02"}),
                "every 0.5 seconds from 2030-01-02 00:00:00+00:00",
            ),
            (
                "interval",
                json!({"weeks": 2, "minutes": 1, "seconds": 30.25, "start_date": "2030-01-02"}),
                "every 2 weeks 1 minute 30.25 seconds from 2030-01-02 00:00:00+00:00",
            ),
            (
                "interval",
                json!({"minutes": 5, "start_date": "2030-01-02"}),
                "every 5 minutes from 2030-01-02 00:00:00+00:00",
            ),
            (
                "interval",
                json!({"days": 1, "start_date": "2030-01-02"}),
                "every day from 2030-01-02 00:00:00+00:00",
            ),
            (
                "interval",
                json!({"hours": 36, "start_date": "2030-01-02"}),
                "every 1 day 12 hours from 2030-01-02 00:00:00+00:00",
            ),
        ];
        for (kind, args, want) in table {
            assert_eq!(trigger(kind, args.clone()).describe(), want, "{args}");
        }
    }
}
