//! The rules for a job's options, one per value, whoever gives it: a `POST`/`PATCH` body and a
//! `[[jobs]]` table (read by `spec.rs`), `[job_defaults]` and `[executor] timeout` in the
//! config or their `TICKD_*` variables (read by `config/value.rs`).
//!
//! What is accepted is decided here alone, so a value the API refuses cannot slip in through
//! the config, nor the other way round. Each source words a refusal in its own way, which
//! clients and operators already rely on: the API with the reference's texts, the config with
//! the key, the value and the range.

use serde_json::{Number, Value};

/// The longest `timeout` and `misfire_grace_time` accepted, in seconds: a year, as for every
/// duration a setting takes. A run that may take longer has no useful timeout, and a run later
/// than a year has no useful grace (`null` says "no limit" for both); bounded, neither can
/// overflow the clock arithmetic they feed.
pub const MAX_OPTION_SECONDS: u64 = 31_536_000;

/// The most runs of one job at once that `max_instances` can say: the largest count the stores
/// keep.
pub const MAX_INSTANCES: u32 = u32::MAX;

/// Which side of its range a refused value is on: the sources word the two differently (the
/// API has one text for "not positive" and another for "more than a year").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfRange {
    /// Zero, negative, or not a number at all.
    TooLow,
    /// Above the largest value.
    TooHigh,
}

/// `max_instances`: at least one run at a time, at most [`MAX_INSTANCES`].
///
/// # Errors
/// 0 is `TooLow`; a count beyond [`MAX_INSTANCES`] is `TooHigh`.
pub fn max_instances(count: u64) -> Result<u32, OutOfRange> {
    match u32::try_from(count) {
        Ok(0) => Err(OutOfRange::TooLow),
        Ok(count) => Ok(count),
        Err(_) => Err(OutOfRange::TooHigh),
    }
}

/// `misfire_grace_time`: whole seconds, 1 to [`MAX_OPTION_SECONDS`]. "No limit" is not a
/// number of seconds, and each source spells it its own way (`null` in JSON, 0 in
/// `[job_defaults]`, where TOML has no null).
///
/// # Errors
/// 0 or less is `TooLow`; more than a year is `TooHigh`.
pub fn misfire_grace_time(secs: i128) -> Result<u64, OutOfRange> {
    match u64::try_from(secs) {
        Ok(secs) if secs > MAX_OPTION_SECONDS => Err(OutOfRange::TooHigh),
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(OutOfRange::TooLow),
    }
}

/// A duration in seconds, fractions allowed: more than 0 (or at least 0 where `zero_allowed`)
/// and at most [`MAX_OPTION_SECONDS`]. A job's `timeout` is one, as is every duration the
/// config takes (`[executor] timeout`, `kill_grace`, `shutdown_grace`, the server's timeouts).
///
/// # Errors
/// Below the range (or NaN) is `TooLow`; beyond a year is `TooHigh`.
pub fn seconds(secs: f64, zero_allowed: bool) -> Result<f64, OutOfRange> {
    let low_ok = if zero_allowed {
        secs >= 0.0
    } else {
        secs > 0.0
    };
    if !low_ok || secs.is_nan() {
        Err(OutOfRange::TooLow)
    } else if secs > MAX_OPTION_SECONDS as f64 {
        Err(OutOfRange::TooHigh)
    } else {
        Ok(secs)
    }
}

/// A number of seconds as JSON: an integer when it is whole (`30`, not `30.0`), as the user
/// most likely wrote it. The job object's `timeout`, and every duration a job policy shows.
pub fn seconds_json(value: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact in f64
    if value.fract() == 0.0 && (0.0..EXACT).contains(&value) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Value::from(value as u64);
    }
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// A job's `timeout`: [`seconds`], more than 0.
///
/// # Errors
/// As [`seconds`].
pub fn timeout(secs: f64) -> Result<f64, OutOfRange> {
    seconds(secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_instances_is_a_positive_count() {
        assert_eq!(max_instances(0), Err(OutOfRange::TooLow));
        assert_eq!(max_instances(1), Ok(1));
        assert_eq!(max_instances(u64::from(u32::MAX)), Ok(u32::MAX));
        assert_eq!(
            max_instances(u64::from(u32::MAX) + 1),
            Err(OutOfRange::TooHigh)
        );
    }

    #[test]
    fn grace_is_whole_seconds_up_to_a_year() {
        assert_eq!(misfire_grace_time(-1), Err(OutOfRange::TooLow));
        assert_eq!(misfire_grace_time(0), Err(OutOfRange::TooLow));
        assert_eq!(misfire_grace_time(1), Ok(1));
        assert_eq!(
            misfire_grace_time(i128::from(MAX_OPTION_SECONDS)),
            Ok(MAX_OPTION_SECONDS)
        );
        assert_eq!(
            misfire_grace_time(i128::from(MAX_OPTION_SECONDS) + 1),
            Err(OutOfRange::TooHigh)
        );
    }

    #[test]
    fn durations_are_bounded_by_a_year_on_both_sides() {
        assert_eq!(timeout(0.0), Err(OutOfRange::TooLow));
        assert_eq!(timeout(f64::NAN), Err(OutOfRange::TooLow));
        assert_eq!(timeout(0.000_001), Ok(0.000_001));
        assert_eq!(seconds(0.0, true), Ok(0.0));
        assert_eq!(seconds(-0.5, true), Err(OutOfRange::TooLow));
        assert_eq!(timeout(31_536_000.0), Ok(31_536_000.0));
        assert_eq!(timeout(31_536_000.5), Err(OutOfRange::TooHigh));
        assert_eq!(seconds(f64::INFINITY, true), Err(OutOfRange::TooHigh));
    }
}
