//! The dates a trigger was given, Python's `isoformat()`, and zone names. The date strings
//! themselves are read in `datestring`.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Timelike};
use chrono_tz::Tz;

use super::error::TriggerError;
use super::zone::{self, Wall};

/// A date string as read: with its own offset, or naive (to be localised in the trigger zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParsedDate {
    Naive(NaiveDateTime),
    Aware(DateTime<FixedOffset>),
}

impl ParsedDate {
    /// APScheduler's `convert_to_datetime(value, zone)`: an offset given is kept, a naive time
    /// is localised in the trigger zone.
    pub(crate) fn resolve(self, tz: Tz) -> TriggerDate {
        match self {
            ParsedDate::Aware(time) => TriggerDate {
                time,
                in_zone: false,
            },
            ParsedDate::Naive(naive) => TriggerDate {
                time: zone::localize(tz, naive),
                in_zone: true,
            },
        }
    }
}

/// A `start_date`, `end_date` or `run_date` as APScheduler holds it: an aware datetime whose
/// `tzinfo` is either the trigger's zone (`in_zone`, from a naive input) or a fixed offset.
///
/// The distinction matters beyond display: Python compares two datetimes that share a
/// `tzinfo` by wall clock, ignoring `fold`, and everything else by instant. APScheduler's
/// `next_date > end_date` check inherits that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TriggerDate {
    pub time: DateTime<FixedOffset>,
    pub in_zone: bool,
}

impl TriggerDate {
    /// Python's `wall > self` for a datetime `wall` in the trigger zone.
    pub(crate) fn is_before(&self, tz: Tz, wall: Wall) -> bool {
        if self.in_zone {
            wall.naive > self.time.naive_local()
        } else {
            zone::instant(tz, wall) > self.time
        }
    }
}

/// Renders a time as Python's `datetime.isoformat()`: `2030-01-02T03:04:05+05:30`, the
/// fraction only when non-zero, never `Z`, offset seconds only when non-zero.
pub(crate) fn isoformat(time: &DateTime<FixedOffset>) -> String {
    use std::fmt::Write;
    let local = time.naive_local();
    let date = local.date();
    let mut out = String::with_capacity(32);
    // Years 0-9999 (all of Python's) written directly: chrono's `format` parses its pattern
    // on every call, and every job view renders a time. Others keep chrono's `%Y` (`+10000`).
    if (0..=9999).contains(&date.year()) {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}",
            date.year(),
            date.month(),
            date.day()
        );
    } else {
        let _ = write!(out, "{}", date.format("%Y-%m-%d"));
    }
    let _ = write!(
        out,
        "T{:02}:{:02}:{:02}",
        local.hour(),
        local.minute(),
        local.second()
    );
    let micro = local.nanosecond() / 1000;
    if micro != 0 {
        let _ = write!(out, ".{micro:06}");
    }
    let offset = time.offset().local_minus_utc();
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    let _ = write!(out, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60);
    if !abs.is_multiple_of(60) {
        let _ = write!(out, ":{:02}", abs % 60);
    }
    out
}

/// Parses an IANA zone name as `zoneinfo.ZoneInfo` does (case-sensitive; `UTC` included).
pub(crate) fn parse_timezone(name: &str) -> Result<Tz, TriggerError> {
    name.parse::<Tz>()
        .map_err(|_| TriggerError::unknown_zone(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn isoformat_is_pythons() {
        let t = DateTime::parse_from_rfc3339("2030-01-02T03:04:05+05:30").unwrap();
        assert_eq!(isoformat(&t), "2030-01-02T03:04:05+05:30");
        let t = DateTime::parse_from_rfc3339("2030-01-02T03:04:05.000001Z").unwrap();
        assert_eq!(isoformat(&t), "2030-01-02T03:04:05.000001+00:00");
        let t = DateTime::parse_from_rfc3339("2030-01-02T03:04:05.5-02:30").unwrap();
        assert_eq!(isoformat(&t), "2030-01-02T03:04:05.500000-02:30");
        let lmt = zone::to_fixed(t.naive_local(), 3208);
        assert_eq!(isoformat(&lmt), "2030-01-02T03:04:05.500000+00:53:28");
        let early = zone::to_fixed(
            NaiveDate::from_ymd_opt(33, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            0,
        );
        assert_eq!(isoformat(&early), "0033-01-01T00:00:00+00:00");
        let far = zone::to_fixed(
            NaiveDate::from_ymd_opt(10000, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            0,
        );
        assert_eq!(isoformat(&far), "+10000-01-01T00:00:00+00:00");
    }

    #[test]
    fn zones_are_named_as_zoneinfo_names_them() {
        assert_eq!(parse_timezone("UTC").unwrap(), Tz::UTC);
        assert_eq!(
            parse_timezone("Europe/Berlin").unwrap(),
            chrono_tz::Europe::Berlin
        );
        assert_eq!(
            parse_timezone("Mars/Olympus").unwrap_err().0,
            "'No time zone found with key Mars/Olympus'"
        );
    }
}
