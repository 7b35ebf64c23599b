//! CPython's `timedelta` construction and float timestamps, reproduced bit for bit.
//!
//! APScheduler 3.11's interval trigger computes on float epoch seconds
//! (`previous.timestamp() + interval.total_seconds()`, then `datetime.fromtimestamp`), so a
//! fire time with microseconds depends on how CPython rounds. Everything here follows
//! CPython 3.11's C code (`delta_new`/`accum`, `delta_total_seconds`,
//! `_PyTime_DoubleToDenominator`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::TriggerError;
use super::pyvalue;

const US_PER_SECOND: i128 = 1_000_000;
const US_PER_DAY: i128 = 86_400 * US_PER_SECOND;
const MAX_DELTA_DAYS: i128 = 999_999_999;

/// A `datetime.timedelta`, held as its total microseconds (CPython keeps days, seconds and
/// microseconds, which this determines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeDelta {
    micros: i128,
}

impl TimeDelta {
    pub(crate) fn from_micros(micros: i128) -> Self {
        TimeDelta { micros }
    }

    pub(crate) fn micros(self) -> i128 {
        self.micros
    }

    /// `timedelta(weeks=, days=, hours=, minutes=, seconds=)` from JSON numbers, accumulated in
    /// CPython's order (seconds first) so the first bad component is the one reported. Every
    /// sum saturates: a component beyond i128's microseconds (`1e300` seconds) is far past the
    /// day limit anyway, and is refused by it rather than overflowing into a panic (a 500) or,
    /// in a release build, into a wrapped value that might pass.
    ///
    /// # Errors
    /// `unsupported type for timedelta hours component: str` (bools count as ints, as in
    /// Python); `days=1000000000; must have magnitude <= 999999999`.
    pub(crate) fn from_components(parts: &[(&str, &Value)]) -> Result<Self, TriggerError> {
        let mut whole: i128 = 0;
        let mut leftover: f64 = 0.0;
        for unit in ["seconds", "minutes", "hours", "days", "weeks"] {
            let Some((_, value)) = parts.iter().find(|(name, _)| *name == unit) else {
                continue;
            };
            let factor = unit_micros(unit);
            match value {
                Value::Bool(b) => whole = whole.saturating_add(i128::from(*b) * factor),
                Value::Number(n) if !n.is_f64() => {
                    let int = n
                        .as_i64()
                        .map(i128::from)
                        .or_else(|| n.as_u64().map(i128::from))
                        .unwrap_or(0);
                    whole = whole.saturating_add(int.saturating_mul(factor));
                }
                Value::Number(n) => {
                    let float = n.as_f64().unwrap_or(0.0);
                    let int_part = float.trunc();
                    let frac = float - int_part;
                    whole = whole.saturating_add((int_part as i128).saturating_mul(factor));
                    if frac != 0.0 {
                        let scaled = factor as f64 * frac;
                        let scaled_int = scaled.trunc();
                        whole = whole.saturating_add(scaled_int as i128);
                        leftover += scaled - scaled_int;
                    }
                }
                other => {
                    return Err(TriggerError(format!(
                        "unsupported type for timedelta {unit} component: {}",
                        pyvalue::type_name(other)
                    )));
                }
            }
        }
        if leftover != 0.0 {
            let mut whole_us = leftover.round();
            if (whole_us - leftover).abs() == 0.5 {
                // Halfway: round to even, judged on the integer part accumulated so far.
                let odd = (whole.rem_euclid(2)) as f64;
                whole_us = 2.0 * ((leftover + odd) * 0.5).round() - odd;
            }
            whole = whole.saturating_add(whole_us as i128);
        }
        let days = whole.div_euclid(US_PER_DAY);
        if days.abs() > MAX_DELTA_DAYS {
            return Err(TriggerError(format!(
                "days={days}; must have magnitude <= 999999999"
            )));
        }
        Ok(TimeDelta { micros: whole })
    }

    /// `total_seconds()`: the microseconds divided by 10⁶, correctly rounded (Python's
    /// int / int true division).
    pub(crate) fn total_seconds(self) -> f64 {
        micros_to_seconds(self.micros)
    }

    /// `(days, seconds)` as CPython normalises them (`0 <= seconds < 86400`).
    pub(crate) fn days_seconds(self) -> (i128, i128) {
        let days = self.micros.div_euclid(US_PER_DAY);
        let seconds = self.micros.rem_euclid(US_PER_DAY) / US_PER_SECOND;
        (days, seconds)
    }
}

fn unit_micros(unit: &str) -> i128 {
    match unit {
        "weeks" => 7 * US_PER_DAY,
        "days" => US_PER_DAY,
        "hours" => 3_600 * US_PER_SECOND,
        "minutes" => 60 * US_PER_SECOND,
        _ => US_PER_SECOND,
    }
}

/// Python's `datetime.timestamp()` for an aware datetime: exact microseconds / 10⁶, correctly
/// rounded.
pub(crate) fn timestamp(time: DateTime<Utc>) -> f64 {
    micros_to_seconds(i128::from(time.timestamp_micros()))
}

/// `datetime.fromtimestamp(ts, tz)`'s instant: the fraction is rounded half-even to whole
/// microseconds. `None` outside Python's years 1..9999.
pub(crate) fn from_timestamp(ts: f64) -> Option<DateTime<Utc>> {
    if !ts.is_finite() {
        return None;
    }
    let mut int_part = ts.trunc();
    let mut frac = ((ts - int_part) * 1e6).round_ties_even();
    if frac >= 1e6 {
        frac -= 1e6;
        int_part += 1.0;
    } else if frac < 0.0 {
        frac += 1e6;
        int_part -= 1.0;
    }
    // Years 1..=9999 in epoch seconds.
    if !(-62_135_596_800.0..253_402_300_800.0).contains(&int_part) {
        return None;
    }
    DateTime::from_timestamp_micros(int_part as i64 * 1_000_000 + frac as i64)
}

/// `n / 10⁶` rounded to the nearest double (ties to even), as Python's true division of ints.
fn micros_to_seconds(n: i128) -> f64 {
    const EXACT: i128 = 1 << 53;
    if n.abs() <= EXACT {
        return n as f64 / 1e6;
    }
    // Both operands are no longer exact doubles: pick the nearest of the neighbours of the
    // estimate by comparing exactly in integers.
    let estimate = n as f64 / 1e6;
    let candidates = [estimate.next_down(), estimate, estimate.next_up()];
    let mut best = estimate;
    let mut best_err: Option<(i128, i128)> = None;
    for c in candidates {
        let Some((num, den)) = exact_times_million(c) else {
            continue;
        };
        // |c·10⁶ − n| as num/den − n = (num − n·den)/den; compare numerators on a common den.
        let err = (num - n * den).abs();
        let better = match best_err {
            None => true,
            Some((e, d)) => {
                let lhs = err * d;
                let rhs = e * den;
                lhs < rhs || (lhs == rhs && mantissa_is_even(c))
            }
        };
        if better {
            best = c;
            best_err = Some((err, den));
        }
    }
    best
}

/// `c · 10⁶` as an exact fraction `num / den` with `den` a power of two, when it fits.
fn exact_times_million(c: f64) -> Option<(i128, i128)> {
    let bits = c.to_bits();
    let negative = bits >> 63 == 1;
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    let frac_bits = (bits & ((1 << 52) - 1)) as i128;
    let (mantissa, exp) = if exp_bits == 0 {
        (frac_bits, -1074)
    } else {
        (frac_bits | (1 << 52), exp_bits - 1075)
    };
    let signed = if negative { -mantissa } else { mantissa };
    let scaled = signed.checked_mul(1_000_000)?;
    if exp >= 0 {
        Some((scaled.checked_shl(exp as u32)?, 1))
    } else if exp > -100 {
        Some((scaled, 1i128 << (-exp) as u32))
    } else {
        None
    }
}

fn mantissa_is_even(c: f64) -> bool {
    c.to_bits() & 1 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn td(parts: &[(&str, Value)]) -> Result<TimeDelta, TriggerError> {
        let refs: Vec<(&str, &Value)> = parts.iter().map(|(k, v)| (*k, v)).collect();
        TimeDelta::from_components(&refs)
    }

    /// Found by schemathesis (`.ci/fuzz-api`): a component beyond i128's microseconds, then a
    /// fraction or a bool, overflowed the sum: a panic in a debug build (the API's 500).
    #[test]
    fn components_past_any_limit_are_refused_not_overflowed() {
        for parts in [
            vec![("seconds", json!(-2.5e203)), ("minutes", json!(-0.99999))],
            vec![("seconds", json!(2.5e203)), ("minutes", json!(0.99999))],
            vec![("seconds", json!(1e300)), ("weeks", json!(true))],
            vec![("seconds", json!(1.7e308)), ("days", json!(1.5))],
        ] {
            let err = td(&parts).unwrap_err();
            assert!(
                err.to_string()
                    .ends_with("; must have magnitude <= 999999999"),
                "{parts:?}: {err}"
            );
        }
    }

    #[test]
    fn components_add_up_like_cpython() {
        assert_eq!(
            td(&[("minutes", json!(90))]).unwrap().micros(),
            5_400_000_000
        );
        assert_eq!(
            td(&[("hours", json!(2.25))]).unwrap().micros(),
            8_100_000_000
        );
        assert_eq!(td(&[("seconds", json!(1e-6))]).unwrap().micros(), 1);
        assert_eq!(td(&[("seconds", json!(0.5))]).unwrap().micros(), 500_000);
        assert_eq!(
            td(&[("days", json!(1)), ("hours", json!(-1))])
                .unwrap()
                .micros(),
            82_800_000_000
        );
        assert_eq!(
            td(&[("hours", json!(true))]).unwrap().micros(),
            3_600_000_000
        );
    }

    #[test]
    fn bad_components_get_cpythons_text() {
        assert_eq!(
            td(&[("hours", json!("1"))]).unwrap_err().0,
            "unsupported type for timedelta hours component: str"
        );
        assert_eq!(
            td(&[("hours", json!("1")), ("seconds", json!("*/5"))])
                .unwrap_err()
                .0,
            "unsupported type for timedelta seconds component: str"
        );
        assert_eq!(
            td(&[("days", json!(1_000_000_000))]).unwrap_err().0,
            "days=1000000000; must have magnitude <= 999999999"
        );
        assert_eq!(
            td(&[("days", json!(-1_000_000_000))]).unwrap_err().0,
            "days=-1000000000; must have magnitude <= 999999999"
        );
    }

    #[test]
    fn timestamps_round_trip_like_cpython() {
        let t = DateTime::parse_from_rfc3339("2035-06-14T13:33:13.000001Z")
            .unwrap()
            .to_utc();
        let ts = timestamp(t) + 8100.0;
        let back = from_timestamp(ts).unwrap();
        assert_eq!(back.to_rfc3339(), "2035-06-14T15:48:13.000001+00:00");
        assert_eq!(
            micros_to_seconds(86_400_000_000_000_000_000),
            86_400_000_000_000.0
        );
    }
}
