//! Date strings. Two parsers, because the reference has two (CONTRACT §1):
//! - `start_date`, `end_date`, `run_date` went through python-dateutil in Flask-APScheduler.
//!   tickd reads exactly the ISO-8601 family of CONTRACT §2.8 the way dateutil reads it, and
//!   refuses dateutil's free-text forms with a message naming what is accepted.
//! - `next_run_time` went through APScheduler's own strict `convert_to_datetime`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use super::datetime::ParsedDate;
use super::error::TriggerError;
use super::zone;

/// Parses the ISO-8601 family of CONTRACT §2.8: `YYYY-MM-DD`, `YYYY-MM-DD[ T]HH:MM[:SS[.f]]`
/// with 1–6 fraction digits, optionally followed by `Z`, `±HH:MM` or `±HHMM`.
///
/// # Errors
/// A string outside the family names the accepted forms; a well-formed string whose values are
/// out of range gets dateutil's text (`month must be in 1..12: 2031-00-10`).
pub(crate) fn parse_date_string(text: &str) -> Result<ParsedDate, TriggerError> {
    let format_error = || TriggerError::date_format(text);
    let (parts, offset) = Grammar::ISO_FAMILY.scan(text).ok_or_else(format_error)?;
    let naive = build(parts).map_err(|e| TriggerError(format!("{e}: {text}")))?;
    match offset {
        None => Ok(ParsedDate::Naive(naive)),
        Some(seconds) => FixedOffset::east_opt(seconds)
            .map(|o| ParsedDate::Aware(zone::to_fixed(naive, o.local_minus_utc())))
            .ok_or_else(format_error),
    }
}

/// Parses a job's `next_run_time` as APScheduler's `convert_to_datetime` does:
/// `YYYY-M[M]-D[D]`, optionally `[ T]H[H]:M[M]:S[S][.f{1,6}][Z|±HH:MM]`; a naive time is
/// localised in `tz`. The fraction is read as a fraction (`.25` = 250 ms), not as
/// APScheduler's integer count of microseconds.
///
/// # Errors
/// `Invalid date string` for anything else; CPython's text for out-of-range values.
pub(crate) fn parse_strict(text: &str, tz: Tz) -> Result<DateTime<FixedOffset>, TriggerError> {
    let (parts, offset) = Grammar::STRICT
        .scan(text)
        .ok_or_else(|| TriggerError::new("Invalid date string"))?;
    let naive = build(parts).map_err(TriggerError::new)?;
    match offset {
        None => Ok(zone::localize(tz, naive)),
        Some(seconds) => FixedOffset::east_opt(seconds)
            .map(|o| zone::to_fixed(naive, o.local_minus_utc()))
            .ok_or_else(|| {
                TriggerError::new(
                    "offset must be a timedelta strictly between -timedelta(hours=24) and \
                     timedelta(hours=24)",
                )
            }),
    }
}

/// Where the two parsers' forms differ; both read `YYYY-MM-DD`, then optionally `[ T]`, a time,
/// a fraction after the seconds and an offset, and nothing more.
struct Grammar {
    /// Month, day, hour, minute and second take one or two digits (APScheduler's `\d{1,2}`),
    /// not exactly two.
    short_fields: bool,
    /// The seconds may be left out (`HH:MM`).
    seconds_optional: bool,
    /// `±HHMM` is read besides `Z` and `±HH:MM`.
    compact_offset: bool,
}

impl Grammar {
    /// dateutil's reading of CONTRACT §2.8's family.
    const ISO_FAMILY: Grammar = Grammar {
        short_fields: false,
        seconds_optional: true,
        compact_offset: true,
    };

    /// APScheduler's `convert_to_datetime` regular expression.
    const STRICT: Grammar = Grammar {
        short_fields: true,
        seconds_optional: false,
        compact_offset: false,
    };

    /// The date and time fields, and the offset in seconds east of UTC if one is given; `None`
    /// when `text` is not of this grammar.
    fn scan(&self, text: &str) -> Option<(Parts, Option<i32>)> {
        let mut s = Scanner::new(text);
        let field = |s: &mut Scanner<'_>| {
            if self.short_fields {
                s.short_digits()
            } else {
                s.fixed_digits(2)
            }
        };
        let mut parts = Parts {
            year: s.fixed_digits(4)?,
            ..Parts::default()
        };
        s.expect(b'-')?;
        parts.month = field(&mut s)?;
        s.expect(b'-')?;
        parts.day = field(&mut s)?;
        if s.done() {
            return Some((parts, None));
        }
        s.expect_any(b" T")?;
        parts.hour = field(&mut s)?;
        s.expect(b':')?;
        parts.minute = field(&mut s)?;
        if !self.seconds_optional || s.peek() == Some(b':') {
            s.expect(b':')?;
            parts.second = field(&mut s)?;
            if s.expect(b'.').is_some() {
                parts.micro = s.fraction()?;
            }
        }
        let offset = if s.done() {
            None
        } else {
            Some(s.offset(self.compact_offset)?)
        };
        s.done().then_some((parts, offset))
    }
}

/// The fields of a date string, not yet checked against the calendar.
#[derive(Default, Clone, Copy)]
struct Parts {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micro: u32,
}

/// CPython's `datetime(...)` validation, in its order and with its texts.
fn build(p: Parts) -> Result<NaiveDateTime, String> {
    if !(1..=9999).contains(&p.year) {
        return Err(format!("year {} is out of range", p.year));
    }
    if !(1..=12).contains(&p.month) {
        return Err("month must be in 1..12".to_owned());
    }
    let date = NaiveDate::from_ymd_opt(p.year as i32, p.month, p.day)
        .filter(|_| p.day >= 1)
        .ok_or_else(|| "day is out of range for month".to_owned())?;
    if p.hour > 23 {
        return Err("hour must be in 0..23".to_owned());
    }
    if p.minute > 59 {
        return Err("minute must be in 0..59".to_owned());
    }
    if p.second > 59 {
        return Err("second must be in 0..59".to_owned());
    }
    date.and_hms_micro_opt(p.hour, p.minute, p.second, p.micro)
        .ok_or_else(|| "microsecond must be in 0..999999".to_owned())
}

/// A byte cursor over an ASCII date string (any other byte fails a match).
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    fn expect_any(&mut self, set: &[u8]) -> Option<()> {
        let b = self.peek()?;
        set.contains(&b).then(|| self.pos += 1)
    }

    fn run_of_digits(&self) -> usize {
        self.bytes[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    }

    fn take_number(&mut self, len: usize) -> u32 {
        let value = self.bytes[self.pos..self.pos + len]
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
        self.pos += len;
        value
    }

    /// Exactly `n` digits, not followed by another digit.
    fn fixed_digits(&mut self, n: usize) -> Option<u32> {
        (self.run_of_digits() == n).then(|| self.take_number(n))
    }

    /// One or two digits (APScheduler's `\d{1,2}`).
    fn short_digits(&mut self) -> Option<u32> {
        let run = self.run_of_digits();
        (1..=2).contains(&run).then(|| self.take_number(run))
    }

    /// 1–6 fraction digits, as microseconds.
    fn fraction(&mut self) -> Option<u32> {
        let run = self.run_of_digits();
        if !(1..=6).contains(&run) {
            return None;
        }
        let value = self.take_number(run);
        Some(value * 10u32.pow(6 - run as u32))
    }

    /// `Z`, `±HH:MM`, or (when `compact` is allowed) `±HHMM`, as seconds east of UTC.
    fn offset(&mut self, compact: bool) -> Option<i32> {
        if self.expect(b'Z').is_some() {
            return Some(0);
        }
        let sign = match self.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.pos += 1;
        let hours = self.fixed_digits(2).or_else(|| {
            // `±HHMM`: four digits in a row.
            (compact && self.run_of_digits() == 4).then(|| self.take_number(2))
        })?;
        let minutes = if self.expect(b':').is_some() {
            self.fixed_digits(2)?
        } else if compact && self.run_of_digits() == 2 {
            self.take_number(2)
        } else {
            return None;
        };
        Some(sign * (hours as i32 * 3600 + minutes as i32 * 60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::datetime::isoformat;

    fn iso(p: ParsedDate) -> String {
        match p {
            ParsedDate::Naive(n) => n.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            ParsedDate::Aware(a) => isoformat(&a),
        }
    }
    #[test]
    fn the_iso_family_is_read_as_dateutil_reads_it() {
        for (text, read) in [
            ("2035-02-26", "2035-02-26 00:00:00.000000"),
            ("2038-08-14 06:15", "2038-08-14 06:15:00.000000"),
            ("2035-08-02T05:00:00", "2035-08-02 05:00:00.000000"),
            ("2035-08-05 18:18:00.000001", "2035-08-05 18:18:00.000001"),
            ("2035-08-05 18:18:00.25", "2035-08-05 18:18:00.250000"),
            ("2035-02-06T20:45:27Z", "2035-02-06T20:45:27+00:00"),
            ("2038-12-18T18:55:00-0800", "2038-12-18T18:55:00-08:00"),
            ("2038-08-15T05:26:13-05:00", "2038-08-15T05:26:13-05:00"),
            ("2038-08-15 05:26+05:30", "2038-08-15T05:26:00+05:30"),
        ] {
            assert_eq!(iso(parse_date_string(text).unwrap()), read, "{text}");
        }
    }

    #[test]
    fn dateutil_only_forms_are_refused_naming_the_accepted_forms() {
        for text in [
            "Fri, 07 May 2038 01:00:00 GMT",
            "20350804T000000",
            "2035/04/01 16:23:03",
            "March 30, 2031 2:00 PM",
            "30 Mar 2035 14:00",
            "2035-3-23 23:00:00",
            "2035-03-23 23:00:00.1234567",
            "2035-03-23 23",
            " 2035-03-23",
            "",
        ] {
            let err = parse_date_string(text).unwrap_err().0;
            assert!(
                err.starts_with(&format!(
                    "Invalid date string '{text}': expected YYYY-MM-DD"
                )),
                "{err}"
            );
            assert!(err.contains("±HH:MM or ±HHMM"), "{err}");
        }
    }

    #[test]
    fn out_of_range_values_get_dateutils_text() {
        let err = |s: &str| parse_date_string(s).unwrap_err().0;
        assert_eq!(err("2031-00-10"), "month must be in 1..12: 2031-00-10");
        assert_eq!(err("2030-13-45"), "month must be in 1..12: 2030-13-45");
        assert_eq!(
            err("2031-04-31"),
            "day is out of range for month: 2031-04-31"
        );
        assert_eq!(
            err("2031-01-01 25:00:00"),
            "hour must be in 0..23: 2031-01-01 25:00:00"
        );
        assert_eq!(
            err("2031-01-01 20:60:00"),
            "minute must be in 0..59: 2031-01-01 20:60:00"
        );
    }

    #[test]
    fn strict_parser_is_apschedulers() {
        let utc = Tz::UTC;
        for (text, read) in [
            ("2030-01-02", "2030-01-02T00:00:00+00:00"),
            ("2030-1-2 3:04:05", "2030-01-02T03:04:05+00:00"),
            ("2030-01-02T03:04:05.5Z", "2030-01-02T03:04:05.500000+00:00"),
            ("2030-01-02T03:04:05+05:30", "2030-01-02T03:04:05+05:30"),
        ] {
            assert_eq!(isoformat(&parse_strict(text, utc).unwrap()), read, "{text}");
        }
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            isoformat(&parse_strict("2024-03-31 02:30:00", berlin).unwrap()),
            "2024-03-31T03:30:00+02:00"
        );
        for bad in [
            "May 5 2030",
            "2024-01-05 10:00",
            "05/01/2024",
            "2030-01-02T03:04:05+0530",
            "2030-01-02 03:04:05.1234567",
        ] {
            assert_eq!(
                parse_strict(bad, utc).unwrap_err().0,
                "Invalid date string",
                "{bad}"
            );
        }
        assert_eq!(
            parse_strict("2030-13-01", utc).unwrap_err().0,
            "month must be in 1..12"
        );
    }
}
