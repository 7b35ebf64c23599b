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
    let date = time.naive_local().date();
    // Every add and change renders a job's times (its view and its state, several each), so
    // the digits are written by hand: `core::fmt`'s padded integers cost ~20x as much.
    let mut out = Vec::with_capacity(36);
    match u32::try_from(date.year()) {
        Ok(year) if year <= 9999 => push_digits(&mut out, year, 4),
        // Years Python cannot hold: chrono's `%Y` (`+10000`).
        _ => out.extend_from_slice(date.format("%Y").to_string().as_bytes()),
    }
    out.push(b'-');
    push_digits(&mut out, date.month(), 2);
    out.push(b'-');
    push_digits(&mut out, date.day(), 2);
    out.push(b'T');
    push_time_and_offset(&mut out, time);
    // Only ASCII digits and punctuation were written.
    String::from_utf8(out).unwrap_or_default()
}

/// `HH:MM:SS[.ffffff]±HH:MM[:SS]`.
fn push_time_and_offset(out: &mut Vec<u8>, time: &DateTime<FixedOffset>) {
    let local = time.naive_local();
    push_digits(out, local.hour(), 2);
    out.push(b':');
    push_digits(out, local.minute(), 2);
    out.push(b':');
    // A leap second (nanosecond ≥ 1e9) shows as second 60, as chrono shows it.
    push_digits(out, local.second() + local.nanosecond() / 1_000_000_000, 2);
    let micro = local.nanosecond() % 1_000_000_000 / 1000;
    if micro != 0 {
        out.push(b'.');
        push_digits(out, micro, 6);
    }
    let offset = time.offset().local_minus_utc();
    out.push(if offset < 0 { b'-' } else { b'+' });
    let abs = offset.unsigned_abs();
    push_digits(out, abs / 3600, 2);
    out.push(b':');
    push_digits(out, abs / 60 % 60, 2);
    if !abs.is_multiple_of(60) {
        out.push(b':');
        push_digits(out, abs % 60, 2);
    }
}

/// `value` in decimal, zero-padded to at least `width` digits.
fn push_digits(out: &mut Vec<u8>, mut value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut first = digits.len();
    while value > 0 {
        first -= 1;
        // A remainder below 10 always fits a byte.
        digits[first] = b'0' + u8::try_from(value % 10).unwrap_or(0);
        value /= 10;
    }
    let first = first.min(digits.len().saturating_sub(width));
    out.extend_from_slice(&digits[first..]);
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
        let new_year_utc = |year| {
            let midnight = NaiveDate::from_ymd_opt(year, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
            zone::to_fixed(midnight.unwrap(), 0)
        };
        assert_eq!(isoformat(&new_year_utc(33)), "0033-01-01T00:00:00+00:00");
        assert_eq!(
            isoformat(&new_year_utc(10000)),
            "+10000-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn isoformat_pads_every_field_and_agrees_with_chrono() {
        for text in [
            "0001-02-03T04:05:06+00:00",
            "0999-12-31T23:59:59.999999+14:00",
            "2024-02-29T00:00:00.000100-09:30",
            "9999-12-31T23:59:59-12:00",
        ] {
            let t = DateTime::parse_from_rfc3339(text).unwrap();
            assert_eq!(isoformat(&t), text);
            let python = if t.timestamp_subsec_micros() == 0 {
                t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
            };
            assert_eq!(isoformat(&t), python);
        }
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
