//! The `cron` trigger: APScheduler 3.11's `CronTrigger` (construction and the defaults rule
//! here; the fire-time search in [`search`]).

mod describe;
mod expr;
mod field;
mod search;

use chrono_tz::Tz;
use serde_json::{Map, Value};

use self::field::{Field, FieldKind};
use super::datetime::{TriggerDate, isoformat};
use super::error::TriggerError;

/// The cron field names, in APScheduler's order.
pub(crate) const FIELD_NAMES: [&str; 8] = [
    "year",
    "month",
    "day",
    "week",
    "day_of_week",
    "hour",
    "minute",
    "second",
];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CronTrigger {
    fields: Vec<Field>,
    /// What the user gave for each field (Python's `str()` of the value), kept for the
    /// persisted state so a reload compiles exactly the same expressions.
    given: [Option<String>; 8],
    pub start_date: Option<TriggerDate>,
    pub end_date: Option<TriggerDate>,
    pub timezone: Tz,
    pub jitter: Option<f64>,
    empty_years: search::EmptyYears,
}

impl CronTrigger {
    /// `CronTrigger(year=..., ..., second=..., start_date=, end_date=, timezone=, jitter=)`
    /// with the fields given as text, applying the defaults rule: fields coarser than the finest
    /// given one become `*`, finer ones their minimum (`week` and `day_of_week` stay `*`); with
    /// no field given, all are `*`.
    ///
    /// # Errors
    /// The first bad field's error, in field order, with APScheduler's text.
    pub(crate) fn new(
        given: [Option<String>; 8],
        start_date: Option<TriggerDate>,
        end_date: Option<TriggerDate>,
        timezone: Tz,
        jitter: Option<f64>,
    ) -> Result<Self, TriggerError> {
        let mut remaining = given.iter().filter(|g| g.is_some()).count();
        let mut assign_defaults = false;
        let mut fields = Vec::with_capacity(8);
        for (kind, value) in FieldKind::ALL.into_iter().zip(&given) {
            let field = match value {
                Some(text) => {
                    remaining -= 1;
                    assign_defaults = remaining == 0;
                    Field::compile(kind, text, false)?
                }
                None if assign_defaults => Field::compile(kind, kind.default_expression(), true)?,
                None => Field::compile(kind, "*", true)?,
            };
            fields.push(field);
        }
        Ok(CronTrigger {
            fields,
            given,
            start_date,
            end_date,
            timezone,
            jitter,
            empty_years: search::EmptyYears::default(),
        })
    }

    /// The given fields' texts, for the persisted state.
    pub(crate) fn given(&self) -> &[Option<String>; 8] {
        &self.given
    }

    /// `start_date`/`end_date` if set, then the fields the user gave, as APScheduler's
    /// normalised strings (`"MON"` → `"mon"`, `"1, 2"` → `"1,2"`, `30` → `"30"`).
    pub(crate) fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if let Some(start) = &self.start_date {
            map.insert("start_date".into(), Value::String(isoformat(&start.time)));
        }
        if let Some(end) = &self.end_date {
            map.insert("end_date".into(), Value::String(isoformat(&end.time)));
        }
        for field in self.fields.iter().filter(|f| !f.is_default) {
            map.insert(field.kind.name().into(), Value::String(field.to_string()));
        }
        map
    }
}

#[cfg(test)]
mod tests;
