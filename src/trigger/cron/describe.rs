//! A cron trigger in plain words ([`CronTrigger::describe`]): the common forms read as a
//! person would say them (`at 09:30, Monday to Friday, Asia/Shanghai`, `every 5 minutes`,
//! `at 00:00 on day 1 of every month`), anything else field by field in its own cron text, so
//! the words are never wrong even when they are plain. Always ends with the zone.
//!
//! Built from the compiled fields after APScheduler's defaults rule, so what is described is
//! what fires: `month='jan'` alone reads `at 00:00 on day 1 of January`, as it fires.
//!
//! - Time of day: a few fixed times are listed (`at 09:00 and 17:30`); otherwise the finest
//!   field that is not 0 leads and each coarser one follows (`at second 0,30 of every minute`,
//!   `every minute of hours 9-17`), a `*` after an "every ..." left out as implied. A step
//!   reads "every n units" only when it divides the field's cycle (`*/7` minutes is not every
//!   7 minutes at the top of the hour, so it stays `minute */7`).
//! - Date: the day (`on day 1`, `on the last day`, `on the 3rd Wednesday`) of the month or
//!   months; weekdays (`Monday to Friday`; with a day too, `when it falls on ...`, as the two
//!   are ANDed); ISO weeks; years.
//! - When more than one field needs its raw cron text, the whole spec is listed instead,
//!   each given field as `name text` (`minute 0,30; hour 9-17; day_of_week mon-fri`).

use super::CronTrigger;
use super::expr::Expr;
use super::field::{Field, FieldKind};
use crate::trigger::describe::plain_time;

const WEEKDAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const POSITION_WORDS: [&str; 6] = ["1st", "2nd", "3rd", "4th", "5th", "last"];

/// The most fixed times of day listed one by one.
const MAX_LISTED_TIMES: usize = 6;

impl CronTrigger {
    /// The trigger in plain words (see the module doc).
    pub(crate) fn describe(&self) -> String {
        let mut words = Words::default();
        let mut text = self.schedule(&mut words);
        if words.raw > 1 {
            text = self.listing();
        }
        if let Some(start) = &self.start_date {
            text.push_str(&format!(", from {}", plain_time(&start.time)));
        }
        if let Some(end) = &self.end_date {
            text.push_str(&format!(", until {}", plain_time(&end.time)));
        }
        text.push_str(", ");
        text.push_str(self.timezone.name());
        text
    }

    fn field(&self, kind: FieldKind) -> &Field {
        // The fields are compiled in `FieldKind::ALL`'s order, all eight.
        &self.fields[FieldKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default()]
    }

    /// The faithful form: every field given that is not `*`, as cron text (the fields the
    /// defaults rule filled in read as cron reads them: finer ones 0).
    fn listing(&self) -> String {
        let mut parts: Vec<String> = self
            .fields
            .iter()
            .rev()
            .filter(|f| !f.is_default && !is_star(f))
            .map(|f| format!("{} {f}", f.kind.name()))
            .collect();
        if parts.is_empty() {
            parts.push("every second".to_owned());
        }
        parts.join("; ")
    }

    /// Time of day, then the date restrictions.
    fn schedule(&self, words: &mut Words) -> String {
        let mut text = self.time_of_day(words);
        let (day, weekday, month) = (
            self.field(FieldKind::Day),
            self.field(FieldKind::DayOfWeek),
            self.field(FieldKind::Month),
        );
        if !is_star(day) {
            text.push_str(" on ");
            text.push_str(&days(day, words));
            text.push_str(" of ");
            if is_star(month) {
                text.push_str("every month");
            } else {
                text.push_str(&months(month, words));
            }
            if !is_star(weekday) {
                text.push_str(", when it falls on ");
                text.push_str(&weekdays(weekday, words));
            }
        } else {
            if !is_star(weekday) {
                let single_range = matches!(
                    weekday.expressions.as_slice(),
                    [Expr::WeekdayRange { first, last }
                        | Expr::Range { first, last: Some(last), step: None }] if first != last
                );
                text.push_str(if single_range { ", " } else { ", on " });
                text.push_str(&weekdays(weekday, words));
            }
            if !is_star(month) {
                text.push_str(", in ");
                text.push_str(&months(month, words));
            }
        }
        let week = self.field(FieldKind::Week);
        if !is_star(week) {
            text.push_str(&match single(week) {
                Some(n) => format!(", in ISO week {n}"),
                None => format!(", in ISO weeks {week}"),
            });
        }
        let year = self.field(FieldKind::Year);
        if !is_star(year) {
            text.push_str(&match single(year) {
                Some(n) => format!(", in {n}"),
                None => format!(", in years {year}"),
            });
        }
        text
    }

    /// `at 09:30`, `every 5 minutes`, `at second 0,30 of every minute`, ...
    fn time_of_day(&self, words: &mut Words) -> String {
        let (hour, minute, second) = (
            self.field(FieldKind::Hour),
            self.field(FieldKind::Minute),
            self.field(FieldKind::Second),
        );
        if let (Some(hours), Some(minutes), Some(seconds)) =
            (values(hour), values(minute), values(second))
            && hours.len() * minutes.len() * seconds.len() <= MAX_LISTED_TIMES
        {
            let with_seconds = seconds.iter().any(|s| *s != 0);
            let mut times = Vec::new();
            for h in &hours {
                for m in &minutes {
                    for s in &seconds {
                        times.push(if with_seconds {
                            format!("{h:02}:{m:02}:{s:02}")
                        } else {
                            format!("{h:02}:{m:02}")
                        });
                    }
                }
            }
            return format!("at {}", join_and(&times));
        }
        let finest_to_coarsest = [
            (second, "second", 60),
            (minute, "minute", 60),
            (hour, "hour", 24),
        ];
        let start = finest_to_coarsest
            .iter()
            .position(|(field, _, _)| !is_zero(field))
            .unwrap_or(2);
        let mut text = String::new();
        let mut implied = false;
        for (i, (field, unit, cycle)) in finest_to_coarsest.iter().enumerate().skip(start) {
            let (phrase, every) = unit_phrase(field, unit, *cycle, words);
            if i == start {
                if start == 2 && !every {
                    // Minute and second are 0: hours alone.
                    text = format!("at minute 0 of {phrase}");
                } else if every {
                    text = phrase;
                } else {
                    text = format!("at {phrase}");
                }
            } else if is_star(field) && implied {
                continue;
            } else {
                text.push_str(" of ");
                text.push_str(&phrase);
            }
            implied = every;
        }
        text
    }
}

/// Counts the fragments written as raw cron text.
#[derive(Default)]
struct Words {
    raw: u32,
}

/// `every minute`, `every 5 minutes` (an every-form: true), or `minute 5`, `minutes 0-30/7`.
fn unit_phrase(field: &Field, unit: &str, cycle: u64, words: &mut Words) -> (String, bool) {
    match field.expressions.as_slice() {
        [Expr::All { step: None }] => (format!("every {unit}"), true),
        [Expr::All { step: Some(1) }] => (format!("every {unit}"), true),
        [Expr::All { step: Some(n) }] if cycle.is_multiple_of(*n) => {
            (format!("every {n} {unit}s"), true)
        }
        _ => {
            let ranged = field.expressions.iter().any(|e| single_value(e).is_none());
            if ranged {
                words.raw += 1;
                (format!("{unit}s {field}"), false)
            } else {
                (format!("{unit} {field}"), false)
            }
        }
    }
}

/// The day field: `day 1`, `days 1 and 15`, `the last day`, `the 3rd Wednesday`, ...
fn days(field: &Field, words: &mut Words) -> String {
    if let Some(numbers) = values(field) {
        let numbers: Vec<String> = numbers.iter().map(u32::to_string).collect();
        let noun = if numbers.len() == 1 { "day" } else { "days" };
        return format!("{noun} {}", join_and(&numbers));
    }
    let items: Vec<String> = field
        .expressions
        .iter()
        .map(|e| match e {
            Expr::LastDayOfMonth => "the last day".to_owned(),
            Expr::WeekdayPosition { position, weekday } => format!(
                "the {} {}",
                POSITION_WORDS.get(usize::from(*position)).unwrap_or(&"?"),
                WEEKDAY_NAMES.get(*weekday as usize).unwrap_or(&"?")
            ),
            other => match single_value(other) {
                Some(n) => format!("day {n}"),
                None => {
                    words.raw += 1;
                    format!("days {other}")
                }
            },
        })
        .collect();
    join_and(&items)
}

/// `Monday`, `Monday to Friday`, `Monday and Wednesday`.
fn weekdays(field: &Field, words: &mut Words) -> String {
    let name = |i: u64| WEEKDAY_NAMES.get(i as usize).copied().unwrap_or("?");
    named(field, words, name, "day_of_week")
}

/// `January`, `January to March`, `months */3`.
fn months(field: &Field, words: &mut Words) -> String {
    let name = |i: u64| {
        MONTH_NAMES
            .get((i as usize).wrapping_sub(1))
            .copied()
            .unwrap_or("?")
    };
    named(field, words, name, "month")
}

/// A month or weekday field in names: each item a name or `A to B`; an item with a step
/// stays cron text.
fn named(
    field: &Field,
    words: &mut Words,
    name: impl Fn(u64) -> &'static str,
    raw: &str,
) -> String {
    let items: Vec<String> = field
        .expressions
        .iter()
        .map(|e| match *e {
            Expr::MonthRange { first, last } | Expr::WeekdayRange { first, last } => {
                if first == last {
                    name(first).to_owned()
                } else {
                    format!("{} to {}", name(first), name(last))
                }
            }
            Expr::Range {
                first,
                last: Some(last),
                step: None,
            } => {
                if first == last {
                    name(first).to_owned()
                } else {
                    format!("{} to {}", name(first), name(last))
                }
            }
            ref other => {
                words.raw += 1;
                format!("{raw} {other}")
            }
        })
        .collect();
    join_and(&items)
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn is_star(field: &Field) -> bool {
    matches!(field.expressions.as_slice(), [Expr::All { step: None }])
}

fn is_zero(field: &Field) -> bool {
    values(field).is_some_and(|v| v == [0])
}

/// The one value an item allows, if it allows one.
fn single_value(expr: &Expr) -> Option<u32> {
    match *expr {
        Expr::Range {
            first,
            last: Some(last),
            step: None,
        } if first == last => u32::try_from(first).ok(),
        _ => None,
    }
}

/// The field's values when each item is one number, sorted and without repeats.
fn values(field: &Field) -> Option<Vec<u32>> {
    let mut values: Vec<u32> = field
        .expressions
        .iter()
        .map(single_value)
        .collect::<Option<_>>()?;
    values.sort_unstable();
    values.dedup();
    Some(values)
}

/// The field's one value, if it has exactly one.
fn single(field: &Field) -> Option<u32> {
    match values(field)?.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use chrono_tz::Tz;
    use serde_json::{Map, Value, json};

    use crate::trigger::Trigger;

    fn describe(args: Value) -> String {
        let args: Map<String, Value> = args.as_object().unwrap().clone();
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        Trigger::from_args("cron", &args, Tz::UTC, now)
            .unwrap()
            .describe()
    }

    #[test]
    fn cron_in_words() {
        let table = [
            (
                json!({"hour": "9", "minute": "30", "day_of_week": "mon-fri", "timezone": "Asia/Shanghai"}),
                "at 09:30, Monday to Friday, Asia/Shanghai",
            ),
            (json!({"minute": "*/5"}), "every 5 minutes, UTC"),
            (json!({"minute": "*"}), "every minute, UTC"),
            (json!({}), "every second, UTC"),
            (json!({"second": "*/10"}), "every 10 seconds, UTC"),
            (
                json!({"minute": "*", "hour": "9-17"}),
                "every minute of hours 9-17, UTC",
            ),
            (
                json!({"minute": "*/15", "hour": "9-17", "day_of_week": "mon-fri"}),
                "every 15 minutes of hours 9-17, Monday to Friday, UTC",
            ),
            (json!({"day": "1"}), "at 00:00 on day 1 of every month, UTC"),
            (
                json!({"day": "last", "hour": 12}),
                "at 12:00 on the last day of every month, UTC",
            ),
            (
                json!({"second": "0,30"}),
                "at second 0,30 of every minute, UTC",
            ),
            (json!({"hour": "*"}), "every hour, UTC"),
            (json!({"hour": "*/6"}), "every 6 hours, UTC"),
            (json!({"hour": "*/5"}), "at minute 0 of hours */5, UTC"),
            (
                json!({"minute": "*/7"}),
                "at minutes */7 of every hour, UTC",
            ),
            (json!({"minute": 15}), "at minute 15 of every hour, UTC"),
            (json!({"hour": "9,17"}), "at 09:00 and 17:00, UTC"),
            (
                json!({"hour": "9,17", "minute": "0,30"}),
                "at 09:00, 09:30, 17:00 and 17:30, UTC",
            ),
            (
                json!({"hour": 8, "minute": 5, "second": 7}),
                "at 08:05:07, UTC",
            ),
            (json!({"month": "jan"}), "at 00:00 on day 1 of January, UTC"),
            (
                json!({"month": "jan-mar", "day": "1,15", "hour": 6}),
                "at 06:00 on days 1 and 15 of January to March, UTC",
            ),
            (
                json!({"day": "3rd wed", "hour": 10}),
                "at 10:00 on the 3rd Wednesday of every month, UTC",
            ),
            (
                json!({"day": "last fri,15", "hour": 10}),
                "at 10:00 on the last Friday and day 15 of every month, UTC",
            ),
            (
                json!({"day": "13", "day_of_week": "fri"}),
                "at 00:00 on day 13 of every month, when it falls on Friday, UTC",
            ),
            (
                json!({"day_of_week": "mon,wed", "hour": 7}),
                "at 07:00, on Monday and Wednesday, UTC",
            ),
            (
                json!({"day_of_week": "0-4", "hour": 7}),
                "at 07:00, Monday to Friday, UTC",
            ),
            (json!({"week": "11"}), "at 00:00, in ISO week 11, UTC"),
            (
                json!({"year": "2035", "month": 6, "day": 1}),
                "at 00:00 on day 1 of June, in 2035, UTC",
            ),
            (
                json!({"year": "2038-2043", "month": "*", "hour": 0}),
                "at 00:00, in years 2038-2043, UTC",
            ),
            (
                json!({"hour": 3, "start_date": "2030-01-02", "end_date": "2031-01-01 12:00:00"}),
                "at 03:00, from 2030-01-02 00:00:00+00:00, until 2031-01-01 12:00:00+00:00, UTC",
            ),
            // Exotic: listed field by field, in cron's own text.
            (
                json!({"minute": "0-30/7", "hour": "9-17", "day_of_week": "mon-fri"}),
                "minute 0-30/7; hour 9-17; day_of_week mon-fri, UTC",
            ),
            (
                json!({"month": "*/2", "day": "1-7", "hour": 4}),
                "hour 4; day 1-7; month */2, UTC",
            ),
        ];
        for (args, want) in table {
            assert_eq!(describe(args.clone()), want, "{args}");
        }
    }
}
