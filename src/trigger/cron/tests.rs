//! Unit tests of the cron trigger's parts: expressions (`reference/apscheduler.md` §1.4, §8.2),
//! error texts (§1.5), normalised field strings (Flask-APScheduler §2.1) and the defaults rule
//! (§1.2).

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use super::CronTrigger;
use super::field::{Field, FieldKind};

fn at(y: i32, mo: u32, d: u32, h: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_opt(h, 0, 0))
        .unwrap()
}

fn next(kind: FieldKind, text: &str, t: NaiveDateTime) -> Option<u32> {
    Field::compile(kind, text, false).unwrap().next_value(&t)
}

fn error(kind: FieldKind, text: &str) -> String {
    Field::compile(kind, text, false).unwrap_err().0
}

fn shown(kind: FieldKind, text: &str) -> String {
    Field::compile(kind, text, false).unwrap().to_string()
}

/// `test_expressions.py`, as listed in §8.2.
#[test]
fn expressions_give_apschedulers_next_values() {
    use FieldKind::*;
    assert_eq!(next(Day, "*", at(2009, 7, 1, 0)), Some(1));
    assert_eq!(next(Day, "*", at(2009, 7, 10, 0)), Some(10));
    assert_eq!(next(Day, "*", at(2009, 7, 30, 0)), Some(30));
    assert_eq!(next(Hour, "*/3", at(2009, 7, 1, 0)), Some(0));
    assert_eq!(next(Hour, "*/3", at(2009, 7, 1, 2)), Some(3));
    assert_eq!(next(Hour, "*/3", at(2009, 7, 1, 7)), Some(9));
    assert_eq!(next(Day, "2-9", at(2009, 7, 1, 0)), Some(2));
    assert_eq!(next(Day, "2-9", at(2009, 7, 10, 0)), None);
    assert_eq!(next(Day, "2-9", at(2009, 7, 5, 0)), Some(5));
    assert_eq!(next(Day, "2-9/3", at(2009, 7, 1, 0)), Some(2));
    assert_eq!(next(Day, "2-9/3", at(2009, 7, 3, 0)), Some(5));
    assert_eq!(next(Day, "2-9/3", at(2009, 7, 9, 0)), None);
    assert_eq!(next(Day, "9", at(2009, 7, 1, 0)), Some(9));
    assert_eq!(next(Day, "9", at(2009, 7, 9, 0)), Some(9));
    assert_eq!(next(Day, "9", at(2009, 7, 10, 0)), None);
    assert_eq!(next(DayOfWeek, "WED", at(2008, 2, 4, 0)), Some(2));
    assert_eq!(next(DayOfWeek, "TUE-SAT", at(2008, 2, 7, 0)), Some(3));
    assert_eq!(next(Day, "1st fri", at(2008, 2, 1, 0)), Some(1));
    assert_eq!(next(Day, "2nd wed", at(2008, 2, 1, 0)), Some(13));
    assert_eq!(next(Day, "last fri", at(2008, 2, 1, 0)), Some(29));
    assert_eq!(next(Day, "last", at(2012, 2, 1, 0)), Some(29));
}

/// The worked examples of §1.4.
#[test]
fn steps_are_anchored_as_in_apscheduler() {
    use FieldKind::*;
    let minute = |text: &str, m: u32| {
        let t = at(2024, 1, 1, 0) + chrono::Duration::minutes(i64::from(m));
        next(Minute, text, t)
    };
    assert_eq!(minute("*/15", 7), Some(15));
    assert_eq!(minute("*/15", 15), Some(15));
    assert_eq!(minute("*/15", 46), None);
    assert_eq!(minute("5-50/20", 26), Some(45));
    assert_eq!(minute("5-50/20", 46), None);
    assert_eq!(minute("5/15", 36), Some(50));
    assert_eq!(minute("0-0/5", 3), None);
    assert_eq!(next(Day, "*/10", at(2024, 1, 25, 0)), Some(31));
    assert_eq!(next(Year, "*/2", at(2025, 6, 1, 0)), Some(2026));
    assert_eq!(next(Day, "3rd mon", at(2024, 2, 1, 0)), Some(19));
    assert_eq!(next(Day, "last fri", at(2024, 2, 1, 0)), Some(23));
    assert_eq!(next(Day, "5th fri", at(2024, 2, 1, 0)), None);
    assert_eq!(next(Day, "31", at(2024, 4, 1, 0)), None);
    assert_eq!(next(Day, "1,15,last", at(2024, 4, 16, 0)), Some(30));
}

/// §1.5, every row, with the exact text.
#[test]
fn invalid_expressions_get_apschedulers_text() {
    use FieldKind::*;
    use Says::*;
    /// What a refusal says of the expression it names.
    #[derive(Clone, Copy)]
    enum Says {
        /// `Error validating expression '<expression>': the first value (a) is lower than the
        /// minimum value (b)`.
        First(i64, i64),
        /// The same, `the last value (a) is higher than the maximum value (b)`.
        Last(i64, i64),
        /// The same, `the step value (a) is higher than the total range of the expression (b)`.
        Step(i64, i64),
        /// `Unrecognized expression "<expression>" for field "<field>"`.
        Unrecognized(&'static str),
        /// `Invalid weekday name "<name>"`.
        Weekday(&'static str),
        /// `Invalid month name "<name>"`.
        MonthName(&'static str),
        /// This text.
        Exactly(&'static str),
    }
    let min_max = Exactly("The minimum value in a range must not be higher than the maximum");
    let cases = [
        (Minute, "60", Last(60, 59)),
        (Hour, "0-24", Last(24, 23)),
        (Day, "0", First(0, 1)),
        (Day, "0-3", First(0, 1)),
        (Day, "*/31", Step(31, 30)),
        (Day, "4-6/3", Step(3, 2)),
        (Minute, "50/15", Step(15, 9)),
        (Minute, "*/60", Step(60, 59)),
        (Minute, "*/0", Exactly("Increment must be higher than 0")),
        (Hour, "9-17/0", Exactly("Increment must be higher than 0")),
        (Hour, "5-3", min_max),
        (DayOfWeek, "sun-mon", min_max),
        (DayOfWeek, "7", Last(7, 6)),
        (DayOfWeek, "monday", Weekday("monday")),
        (DayOfWeek, "moh-fri", Weekday("moh")),
        (DayOfWeek, "mon-fre", Weekday("fre")),
        (Month, "jan-foo", MonthName("foo")),
        (Day, "6th fri", Unrecognized("day")),
        (Minute, "a", Unrecognized("minute")),
        (Second, "-1", Unrecognized("second")),
        (Hour, "?", Unrecognized("hour")),
        (Day, "L", Unrecognized("day")),
        (Year, "2009-fault", Unrecognized("year")),
        (Hour, "*/", Unrecognized("hour")),
        (Hour, "1-2-3", Unrecognized("hour")),
        (Hour, "", Unrecognized("hour")),
        (Hour, "5.0", Unrecognized("hour")),
        (Day, "1st funday", Weekday("funday")),
        (Day, "1st moh", Weekday("moh")),
        (Day, "2nd 3", Weekday("3")),
        (Year, "1969", First(1969, 1970)),
        (Year, "10000", Last(10000, 9999)),
        (Week, "0", First(0, 1)),
        (Week, "54", Last(54, 53)),
        // `a/s` has no last value, so its range is measured to the maximum, even below zero.
        (Minute, "70/5", Step(5, -11)),
    ];
    for (kind, expr, says) in cases {
        let validating = |why: String| format!("Error validating expression '{expr}': {why}");
        let text = match says {
            First(a, b) => validating(format!(
                "the first value ({a}) is lower than the minimum value ({b})"
            )),
            Last(a, b) => validating(format!(
                "the last value ({a}) is higher than the maximum value ({b})"
            )),
            Step(a, b) => validating(format!(
                "the step value ({a}) is higher than the total range of the expression ({b})"
            )),
            Unrecognized(field) => {
                format!("Unrecognized expression \"{expr}\" for field \"{field}\"")
            }
            Weekday(name) => format!("Invalid weekday name \"{name}\""),
            MonthName(name) => format!("Invalid month name \"{name}\""),
            Exactly(text) => text.to_owned(),
        };
        assert_eq!(error(kind, expr), text);
    }
    assert!(Field::compile(Minute, "*/59", false).is_ok());
}

/// Flask-APScheduler §2.1's table and APScheduler's parser quirks (§1.4): (field, given,
/// shown).
#[test]
fn fields_render_as_apschedulers_str() {
    use FieldKind::*;
    let cases = [
        (Minute, "30", "30"),
        (DayOfWeek, "MON", "mon"),
        (Month, "JAN-mar", "jan-mar"),
        (Hour, "5-5", "5"),
        (Hour, "1, 2", "1,2"),
        (Hour, "1,2, 3", "1,2,3"),
        (Hour, " 5 ", "5"),
        (Day, "1-2, 4-7", "1-2,4-7"),
        (Minute, "*/1", "*/1"),
        (Minute, "0-59/5", "0-59/5"),
        (Minute, "7,3,5", "7,3,5"),
        (Minute, "*", "*"),
        (Day, "1st mon", "1st mon"),
        (Day, "LAST  FRI", "last fri"),
        (Day, "last", "last"),
        (Day, "lastx", "last"),
        (DayOfWeek, "mon-fri/2", "mon-fri"),
        (DayOfWeek, "TUE-SAT", "tue-sat"),
        (Month, "jan/2", "jan"),
        (Minute, "0-0/5", "0/5"),
        (Minute, "05", "5"),
        (Day, "1st fri-sat", "1st fri"),
    ];
    for (kind, given, rendered) in cases {
        assert_eq!(shown(kind, given), rendered, "{kind:?} {given:?}");
    }
}

/// A trigger with the given fields (by index in APScheduler's order), in `tz`.
fn trigger_in(given: &[(usize, &str)], tz: Tz) -> CronTrigger {
    let mut fields: [Option<String>; 8] = Default::default();
    for (i, text) in given {
        fields[*i] = Some((*text).to_owned());
    }
    CronTrigger::new(fields, None, None, tz, None).unwrap()
}

fn trigger(given: &[(usize, &str)]) -> CronTrigger {
    trigger_in(given, Tz::UTC)
}

/// The compiled field texts in order, `!` marking a given one (§1.2's notation).
fn layout(t: &CronTrigger) -> String {
    t.fields
        .iter()
        .map(|f| format!("{}{}", f, if f.is_default { "" } else { "!" }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// §1.2's table: finer fields than the finest given take their minimum, coarser ones `*`,
/// `week` and `day_of_week` always `*`.
#[test]
fn defaults_rule_matches_the_reference_table() {
    const YEAR: usize = 0;
    const MONTH: usize = 1;
    const DAY: usize = 2;
    const WEEK: usize = 3;
    const DOW: usize = 4;
    const HOUR: usize = 5;
    const MINUTE: usize = 6;
    const SECOND: usize = 7;
    assert_eq!(layout(&trigger(&[])), "* * * * * * * *");
    assert_eq!(layout(&trigger(&[(SECOND, "30")])), "* * * * * * * 30!");
    assert_eq!(layout(&trigger(&[(HOUR, "9")])), "* * * * * 9! 0 0");
    assert_eq!(layout(&trigger(&[(DOW, "mon")])), "* * * * mon! 0 0 0");
    assert_eq!(layout(&trigger(&[(WEEK, "2")])), "* * * 2! * 0 0 0");
    assert_eq!(layout(&trigger(&[(MONTH, "6")])), "* 6! 1 * * 0 0 0");
    assert_eq!(
        layout(&trigger(&[(MONTH, "6"), (HOUR, "12")])),
        "* 6! * * * 12! 0 0"
    );
    assert_eq!(layout(&trigger(&[(YEAR, "2025")])), "2025! 1 1 * * 0 0 0");
    assert_eq!(
        layout(&trigger(&[(DAY, "1"), (MINUTE, "20")])),
        "* * 1! * * * 20! 0"
    );
    assert_eq!(
        layout(&trigger(&[(DOW, "fri"), (SECOND, "5")])),
        "* * * * fri! * * 5!"
    );
}

/// The known-empty-year shortcut never changes an answer: sparse specs, in zones with and
/// without DST, give the same chains with and without it.
#[test]
fn skipping_empty_years_gives_the_crawls_answers() {
    let specs: [&[(usize, &str)]; 9] = [
        &[(1, "2"), (2, "29")],
        &[(1, "feb"), (2, "5th sat")],
        &[(3, "53"), (4, "fri")],
        &[(3, "1"), (4, "sun"), (5, "3")],
        &[(1, "2,11"), (2, "30")],
        &[(0, "*/3"), (1, "2"), (2, "29"), (5, "2"), (6, "30")],
        &[(2, "31"), (4, "sun")],
        &[(1, "3"), (2, "last sun"), (5, "2"), (6, "30")],
        &[(1, "10"), (2, "5th sun"), (5, "1"), (6, "30")],
    ];
    let zones = [
        Tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::America::Sao_Paulo,
    ];
    for spec in specs {
        for tz in zones {
            let trigger = trigger_in(spec, tz);
            let mut now: chrono::DateTime<chrono::Utc> = "2024-05-17T16:20:30Z".parse().unwrap();
            let (mut fast_prev, mut slow_prev) = (None, None);
            for _ in 0..6 {
                let fast = trigger.next_fire_time(fast_prev, now);
                let slow = trigger.next_fire_time_with(slow_prev, now, false);
                assert_eq!(fast, slow, "{spec:?} in {tz}");
                let Some(t) = fast else { break };
                (fast_prev, slow_prev) = (Some(t), Some(t));
                now = t.to_utc() + chrono::Duration::microseconds(1);
            }
        }
    }
}
