//! Cron field expressions: APScheduler 3.11's `triggers/cron/expressions.py`.
//!
//! Each item of a field (`*/5`, `1-5/2`, `mon-fri`, `3rd fri`, `last`) is tried against the
//! field's compilers in APScheduler's order; the first whose pattern matches wins. The
//! patterns and their quirks are kept: names are matched as a prefix (`mon-fri/2` is
//! `mon-fri`, `lastx` is `last`), and range validation is APScheduler's, texts included.

use std::fmt;

use super::field::FieldKind;
use crate::trigger::error::TriggerError;

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const POSITIONS: [&str; 6] = ["1st", "2nd", "3rd", "4th", "5th", "last"];

/// One compiled item of a cron field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// `*` or `*/step`: every value, or every `step`-th counted from the field's minimum.
    All { step: Option<u64> },
    /// `a`, `a-b`, `a-b/s`, `a/s` (`last` is `None` for `a/s`: up to the field's maximum).
    Range {
        first: u64,
        last: Option<u64>,
        step: Option<u64>,
    },
    /// `jan`, `jan-mar` (month only; never a step).
    MonthRange { first: u64, last: u64 },
    /// `mon`, `mon-fri` (day_of_week only; never a step).
    WeekdayRange { first: u64, last: u64 },
    /// `1st`..`5th` or `last`, then a weekday (day only). `position` 5 is `last`.
    WeekdayPosition { position: u8, weekday: u32 },
    /// `last`: the last day of the month (day only).
    LastDayOfMonth,
}

/// What an expression needs to know about the candidate date.
pub(crate) struct Probe {
    /// The field's current value in the candidate date.
    pub value: u32,
    pub min: u32,
    /// The field's maximum for this date (day: the days in the month).
    pub max: u32,
    /// Weekday (Monday = 0) of the first of the month and the days in the month.
    pub month_start_weekday: u32,
    pub month_days: u32,
}

impl Expr {
    /// The smallest matching value `>= probe.value`, or `None` (APScheduler's
    /// `get_next_value`).
    pub(crate) fn next_value(&self, p: &Probe) -> Option<u32> {
        match *self {
            Expr::All { step } => {
                let start = p.value.max(p.min);
                let next = match step {
                    None => u64::from(start),
                    Some(s) => stepped(u64::from(start), u64::from(p.min), s),
                };
                (next <= u64::from(p.max)).then_some(next as u32)
            }
            Expr::Range { first, last, step } => range_next(p, first, last, step),
            Expr::MonthRange { first, last } | Expr::WeekdayRange { first, last } => {
                range_next(p, first, Some(last), None)
            }
            Expr::WeekdayPosition { position, weekday } => {
                let mut first_hit = weekday as i64 - i64::from(p.month_start_weekday) + 1;
                if first_hit <= 0 {
                    first_hit += 7;
                }
                let last_day = i64::from(p.month_days);
                let target = if position < 5 {
                    first_hit + i64::from(position) * 7
                } else {
                    first_hit + (last_day - first_hit).div_euclid(7) * 7
                };
                (target <= last_day && target >= i64::from(p.value)).then_some(target as u32)
            }
            Expr::LastDayOfMonth => Some(p.month_days),
        }
    }
}

/// `start + ((step - (start - base)) mod step)`: the first value `>= start` on the grid
/// anchored at `base`.
fn stepped(start: u64, base: u64, step: u64) -> u64 {
    let step = step as i128;
    let distance = (step - (start as i128 - base as i128)).rem_euclid(step);
    (start as i128 + distance) as u64
}

fn range_next(p: &Probe, first: u64, last: Option<u64>, step: Option<u64>) -> Option<u32> {
    let minval = u64::from(p.min).max(first);
    let maxval = match last {
        Some(last) => u64::from(p.max).min(last),
        None => u64::from(p.max),
    };
    let mut next = minval.max(u64::from(p.value));
    if let Some(step) = step {
        next = stepped(next, minval, step);
    }
    (next <= maxval).then_some(next as u32)
}

impl fmt::Display for Expr {
    /// APScheduler's `str(expression)`: the canonical text the job JSON shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Expr::All { step: None } => f.write_str("*"),
            Expr::All { step: Some(s) } => write!(f, "*/{s}"),
            Expr::Range { first, last, step } => {
                match last {
                    Some(last) if last != first => write!(f, "{first}-{last}")?,
                    _ => write!(f, "{first}")?,
                }
                match step {
                    Some(s) => write!(f, "/{s}"),
                    None => Ok(()),
                }
            }
            Expr::MonthRange { first, last } => name_range(f, &MONTHS, first - 1, last - 1),
            Expr::WeekdayRange { first, last } => name_range(f, &WEEKDAYS, first, last),
            Expr::WeekdayPosition { position, weekday } => write!(
                f,
                "{} {}",
                POSITIONS[position as usize], WEEKDAYS[weekday as usize]
            ),
            Expr::LastDayOfMonth => f.write_str("last"),
        }
    }
}

fn name_range(f: &mut fmt::Formatter<'_>, names: &[&str], first: u64, last: u64) -> fmt::Result {
    let name = |i: u64| names.get(i as usize).copied().unwrap_or("?");
    if first == last {
        f.write_str(name(first))
    } else {
        write!(f, "{}-{}", name(first), name(last))
    }
}

/// Compiles one item of a field, trying the field's compilers in APScheduler's order.
///
/// # Errors
/// APScheduler's texts: `Unrecognized expression "x" for field "hour"`, `Increment must be
/// higher than 0`, `Error validating expression '61': ...`, `Invalid weekday name "x"`, ...
pub(crate) fn compile(kind: FieldKind, item: &str) -> Result<Expr, TriggerError> {
    if let Some(step) = match_all(item) {
        let expr = Expr::All {
            step: step.map(|s| s.value),
        };
        check_step_nonzero(step)?;
        validate(kind, item, None, None, step)?;
        return Ok(expr);
    }
    if let Some((first, last, step)) = match_range(item) {
        check_step_nonzero(step)?;
        let last = match (last, step) {
            (None, None) => Some(first),
            (last, _) => last,
        };
        if let Some(last) = &last
            && first.value > last.value
        {
            return Err(TriggerError::new(
                "The minimum value in a range must not be higher than the maximum",
            ));
        }
        validate(kind, item, Some(&first), last.as_ref(), step)?;
        return Ok(Expr::Range {
            first: first.value,
            last: last.map(|l| l.value),
            step: step.map(|s| s.value),
        });
    }
    match kind {
        FieldKind::Month => {
            if let Some((first, last)) = match_names(item) {
                let (first, last) = name_range_values(&MONTHS, first, last, "month", 1)?;
                return Ok(Expr::MonthRange { first, last });
            }
        }
        FieldKind::DayOfWeek => {
            if let Some((first, last)) = match_names(item) {
                let (first, last) = name_range_values(&WEEKDAYS, first, last, "weekday", 0)?;
                return Ok(Expr::WeekdayRange { first, last });
            }
        }
        FieldKind::Day => {
            if let Some((position, name)) = match_position(item) {
                let weekday = index_of(&WEEKDAYS, name)
                    .ok_or_else(|| TriggerError(format!("Invalid weekday name \"{name}\"")))?;
                return Ok(Expr::WeekdayPosition {
                    position,
                    weekday: weekday as u32,
                });
            }
            if starts_with_ignore_case(item, "last") {
                return Ok(Expr::LastDayOfMonth);
            }
        }
        _ => {}
    }
    Err(TriggerError(format!(
        "Unrecognized expression \"{item}\" for field \"{}\"",
        kind.name()
    )))
}

/// A run of digits: its value (saturating, beyond any valid value anyway) and Python's
/// `str(int(digits))` for messages.
#[derive(Debug, Clone, Copy)]
struct Number<'a> {
    value: u64,
    digits: &'a str,
}

impl fmt::Display for Number<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trimmed = self.digits.trim_start_matches('0');
        f.write_str(if trimmed.is_empty() { "0" } else { trimmed })
    }
}

fn number(digits: &str) -> Number<'_> {
    let value = digits.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    Number { value, digits }
}

/// Splits a leading run of ASCII digits off `text`.
fn digits_prefix(text: &str) -> (&str, &str) {
    let end = text.bytes().take_while(u8::is_ascii_digit).count();
    text.split_at(end)
}

/// `\d+` at the start of `text`: its number and what follows.
fn leading_number(text: &str) -> Option<(Number<'_>, &str)> {
    let (digits, rest) = digits_prefix(text);
    (!digits.is_empty()).then(|| (number(digits), rest))
}

/// `(?:<sep>\d+)?` at the start of `text`: the number, if `sep` leads, and what follows; `None`
/// when `sep` leads without digits after it.
fn tagged_number(text: &str, sep: char) -> Option<(Option<Number<'_>>, &str)> {
    match text.strip_prefix(sep) {
        None => Some((None, text)),
        Some(after) => leading_number(after).map(|(n, rest)| (Some(n), rest)),
    }
}

/// `\*(?:/(?P<step>\d+))?$` → `Some(step)`.
fn match_all(item: &str) -> Option<Option<Number<'_>>> {
    let (step, rest) = tagged_number(item.strip_prefix('*')?, '/')?;
    rest.is_empty().then_some(step)
}

type RangeParts<'a> = (Number<'a>, Option<Number<'a>>, Option<Number<'a>>);

/// `(?P<first>\d+)(?:-(?P<last>\d+))?(?:/(?P<step>\d+))?$`.
fn match_range(item: &str) -> Option<RangeParts<'_>> {
    let (first, rest) = leading_number(item)?;
    let (last, rest) = tagged_number(rest, '-')?;
    let (step, rest) = tagged_number(rest, '/')?;
    rest.is_empty().then_some((first, last, step))
}

/// `(?P<first>[a-z]+)(?:-(?P<last>[a-z]+))?`, case-insensitive, anchored at the start only.
fn match_names(item: &str) -> Option<(&str, Option<&str>)> {
    let letters = |s: &str| s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let n = letters(item);
    if n == 0 {
        return None;
    }
    let (first, rest) = item.split_at(n);
    let last = rest.strip_prefix('-').and_then(|after| {
        let m = letters(after);
        (m > 0).then(|| &after[..m])
    });
    Some((first, last))
}

/// `(1st|2nd|3rd|4th|5th|last) +(\d+|\w+)`, case-insensitive, anchored at the start only.
fn match_position(item: &str) -> Option<(u8, &str)> {
    let position = POSITIONS
        .iter()
        .position(|p| starts_with_ignore_case(item, p))?;
    let rest = &item[POSITIONS[position].len()..];
    let after_spaces = rest.trim_start_matches(' ');
    if after_spaces.len() == rest.len() {
        return None;
    }
    let (digits, _) = digits_prefix(after_spaces);
    let name = if digits.is_empty() {
        let end = after_spaces
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(after_spaces.len(), |(i, _)| i);
        &after_spaces[..end]
    } else {
        digits
    };
    (!name.is_empty()).then_some((position as u8, name))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn index_of(names: &[&str], name: &str) -> Option<usize> {
    names.iter().position(|n| n.eq_ignore_ascii_case(name))
}

/// Month or weekday names → numbers (`offset` 1 for months), with APScheduler's checks.
fn name_range_values(
    names: &[&str],
    first: &str,
    last: Option<&str>,
    what: &str,
    offset: u64,
) -> Result<(u64, u64), TriggerError> {
    let lookup = |name: &str| {
        index_of(names, name)
            .map(|i| i as u64 + offset)
            .ok_or_else(|| TriggerError(format!("Invalid {what} name \"{name}\"")))
    };
    let first = lookup(first)?;
    let last = match last {
        Some(name) => lookup(name)?,
        None => first,
    };
    if first > last {
        return Err(TriggerError::new(
            "The minimum value in a range must not be higher than the maximum",
        ));
    }
    Ok((first, last))
}

fn check_step_nonzero(step: Option<Number<'_>>) -> Result<(), TriggerError> {
    match step {
        Some(s) if s.value == 0 => Err(TriggerError::new("Increment must be higher than 0")),
        _ => Ok(()),
    }
}

/// `validate_range` of `AllExpression` and `RangeExpression`, wrapped as
/// `Error validating expression '<item>': ...`.
fn validate(
    kind: FieldKind,
    item: &str,
    first: Option<&Number<'_>>,
    last: Option<&Number<'_>>,
    step: Option<Number<'_>>,
) -> Result<(), TriggerError> {
    let (min, max) = (i128::from(kind.min()), i128::from(kind.max()));
    let fail =
        |reason: String| TriggerError(format!("Error validating expression '{item}': {reason}"));
    let step_too_big = |s: &Number<'_>, range: i128| {
        fail(format!(
            "the step value ({s}) is higher than the total range of the expression ({range})"
        ))
    };
    if let Some(s) = &step
        && i128::from(s.value) > max - min
    {
        return Err(step_too_big(s, max - min));
    }
    let Some(first) = first else {
        return Ok(());
    };
    if i128::from(first.value) < min {
        return Err(fail(format!(
            "the first value ({first}) is lower than the minimum value ({min})"
        )));
    }
    if let Some(last) = last
        && i128::from(last.value) > max
    {
        return Err(fail(format!(
            "the last value ({last}) is higher than the maximum value ({max})"
        )));
    }
    // `(self.last or MAX) - self.first`: a last value of 0 counts as absent.
    let top = match last {
        Some(l) if l.value != 0 => i128::from(l.value),
        _ => max,
    };
    let range = top - i128::from(first.value);
    if let Some(s) = &step
        && i128::from(s.value) > range
    {
        return Err(step_too_big(s, range));
    }
    Ok(())
}
