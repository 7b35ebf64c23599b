//! The eight cron fields: APScheduler 3.11's `triggers/cron/fields.py`.
//!
//! A field holds its compiled expressions; its next value for a candidate date is the
//! smallest next value of its expressions. `week` and `day_of_week` are *virtual*: they cannot
//! be set directly, so the search moves them forward one day at a time.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use super::expr::{self, Expr, Probe};
use crate::trigger::error::TriggerError;

/// The fields in APScheduler's order, which the search and the defaults rule depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Year,
    Month,
    Day,
    Week,
    DayOfWeek,
    Hour,
    Minute,
    Second,
}

impl FieldKind {
    pub(crate) const ALL: [FieldKind; 8] = [
        FieldKind::Year,
        FieldKind::Month,
        FieldKind::Day,
        FieldKind::Week,
        FieldKind::DayOfWeek,
        FieldKind::Hour,
        FieldKind::Minute,
        FieldKind::Second,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            FieldKind::Year => "year",
            FieldKind::Month => "month",
            FieldKind::Day => "day",
            FieldKind::Week => "week",
            FieldKind::DayOfWeek => "day_of_week",
            FieldKind::Hour => "hour",
            FieldKind::Minute => "minute",
            FieldKind::Second => "second",
        }
    }

    pub(crate) fn min(self) -> u32 {
        match self {
            FieldKind::Year => 1970,
            FieldKind::Month | FieldKind::Day | FieldKind::Week => 1,
            _ => 0,
        }
    }

    /// The bound used for validation (the search uses the days in the month for `day`).
    pub(crate) fn max(self) -> u32 {
        match self {
            FieldKind::Year => 9999,
            FieldKind::Month => 12,
            FieldKind::Day => 31,
            FieldKind::Week => 53,
            FieldKind::DayOfWeek => 6,
            FieldKind::Hour => 23,
            FieldKind::Minute | FieldKind::Second => 59,
        }
    }

    /// Whether the search can set this field directly (`week`, `day_of_week` cannot).
    pub(crate) fn is_real(self) -> bool {
        !matches!(self, FieldKind::Week | FieldKind::DayOfWeek)
    }

    /// The value an unspecified field takes when it is finer than the finest one given.
    pub(crate) fn default_expression(self) -> &'static str {
        match self {
            FieldKind::Year | FieldKind::Week | FieldKind::DayOfWeek => "*",
            FieldKind::Month | FieldKind::Day => "1",
            FieldKind::Hour | FieldKind::Minute | FieldKind::Second => "0",
        }
    }

    /// The field's value in a wall-clock time (`week` is the ISO week, `day_of_week` counts
    /// from Monday = 0).
    pub(crate) fn value(self, t: &NaiveDateTime) -> u32 {
        match self {
            FieldKind::Year => t.year() as u32,
            FieldKind::Month => t.month(),
            FieldKind::Day => t.day(),
            FieldKind::Week => t.iso_week().week(),
            FieldKind::DayOfWeek => t.weekday().num_days_from_monday(),
            FieldKind::Hour => t.hour(),
            FieldKind::Minute => t.minute(),
            FieldKind::Second => t.second(),
        }
    }

    /// The field's maximum for a given date (`get_max`): the month's length for `day`.
    pub(crate) fn max_at(self, t: &NaiveDateTime) -> u32 {
        match self {
            FieldKind::Day => days_in_month(t.year(), t.month()),
            other => other.max(),
        }
    }
}

/// The number of days in a month (`calendar.monthrange(...)[1]`).
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if NaiveDate::from_ymd_opt(year, 2, 29).is_some() => 29,
        2 => 28,
        _ => 31,
    }
}

/// One cron field: its compiled expressions and whether the user gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub kind: FieldKind,
    pub expressions: Vec<Expr>,
    /// Filled in by the defaults rule, so left out of the job JSON.
    pub is_default: bool,
}

impl Field {
    /// Compiles a field value (Python's `str()` of what was given): trimmed, split on commas
    /// with optional spaces around them, each item compiled.
    ///
    /// # Errors
    /// The first item's error, in APScheduler's text.
    pub(crate) fn compile(
        kind: FieldKind,
        text: &str,
        is_default: bool,
    ) -> Result<Self, TriggerError> {
        let trimmed = text.trim();
        let pieces: Vec<&str> = trimmed.split(',').collect();
        let last = pieces.len() - 1;
        let mut expressions = Vec::with_capacity(pieces.len());
        for (i, piece) in pieces.iter().enumerate() {
            // The separator is ` *, *`: spaces next to a comma belong to it.
            let mut item = *piece;
            if i > 0 {
                item = item.trim_start_matches(' ');
            }
            if i < last {
                item = item.trim_end_matches(' ');
            }
            expressions.push(expr::compile(kind, item)?);
        }
        Ok(Field {
            kind,
            expressions,
            is_default,
        })
    }

    /// The smallest value `>=` the field's current value in `t` that some expression allows.
    pub(crate) fn next_value(&self, t: &NaiveDateTime) -> Option<u32> {
        let value = self.kind.value(t);
        let (month_start_weekday, month_days) = if self.kind == FieldKind::Day {
            let first = t.date().with_day(1).unwrap_or(t.date());
            (
                first.weekday().num_days_from_monday(),
                days_in_month(t.year(), t.month()),
            )
        } else {
            (0, 0)
        };
        let probe = Probe {
            value,
            min: self.kind.min(),
            max: self.kind.max_at(t),
            month_start_weekday,
            month_days,
        };
        self.expressions
            .iter()
            .filter_map(|e| e.next_value(&probe))
            .min()
    }
}

impl fmt::Display for Field {
    /// APScheduler's `str(field)`: the items' canonical texts joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.expressions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
