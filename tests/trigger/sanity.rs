//! `reference/apscheduler.md` §10: real outputs of APScheduler 3.11.3, chained as a running
//! scheduler chains them (`f1 = next(None, start)`, `f(k+1) = next(fk, fk)`). Rows 31–34 are
//! APScheduler's spring-forward skips; tickd gives the fixed answers (CONTRACT §3): nothing
//! is skipped. Also §1.2's defaults-rule fire times.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tickd::trigger::{Trigger, isoformat, parse_next_run_time, parse_timezone};

/// A wall time (`YYYY-MM-DD HH:MM:SS[.f]`, first pass if repeated) in `tz`, as an instant.
fn at(tz: &str, wall: &str) -> DateTime<Utc> {
    parse_next_run_time(wall, parse_timezone(tz).unwrap())
        .unwrap()
        .to_utc()
}

/// The first `n` fire times of a cron spec (JSON text) from `start`, in `isoformat()`.
fn chain(spec: &str, tz: &str, start: &str, n: usize) -> Vec<String> {
    let spec: Value = serde_json::from_str(spec).unwrap();
    let zone = parse_timezone(tz).unwrap();
    let now = at(tz, start);
    let trigger = Trigger::from_args("cron", spec.as_object().unwrap(), zone, now).unwrap();
    let mut out = Vec::new();
    let mut previous = trigger.next_fire_time(None, now);
    while let Some(fire) = previous {
        out.push(isoformat(&fire));
        if out.len() == n {
            break;
        }
        previous = trigger.next_fire_time(Some(fire), fire.to_utc());
    }
    out
}

/// (row, spec, zone, start, first fire times). Rows 15 and 16 are `from_crontab`, which gives
/// all five of its fields, `*` included.
#[rustfmt::skip]
const ROWS: &[(u32, &str, &str, &str, &[&str])] = &[
    (1, r#"{"day": "last fri"}"#, "UTC", "2024-01-01 00:00:00",
        &["2024-01-26T00:00:00+00:00", "2024-02-23T00:00:00+00:00", "2024-03-29T00:00:00+00:00"]),
    (2, r#"{"day": "3rd mon"}"#, "UTC", "2024-01-16 00:00:00",
        &["2024-02-19T00:00:00+00:00", "2024-03-18T00:00:00+00:00", "2024-04-15T00:00:00+00:00"]),
    (3, r#"{"day": "last"}"#, "UTC", "2024-01-31 00:00:01",
        &["2024-02-29T00:00:00+00:00", "2024-03-31T00:00:00+00:00", "2024-04-30T00:00:00+00:00"]),
    (4, r#"{"day": "5th fri"}"#, "UTC", "2024-01-01 00:00:00",
        &["2024-03-29T00:00:00+00:00", "2024-05-31T00:00:00+00:00", "2024-08-30T00:00:00+00:00"]),
    (5, r#"{"week": "*/2"}"#, "UTC", "2024-01-06 00:00:00",
        &["2024-01-06T00:00:00+00:00", "2024-01-07T00:00:00+00:00", "2024-01-15T00:00:00+00:00"]),
    (6, r#"{"week": "*/2", "day_of_week": "mon"}"#, "UTC", "2020-12-20 00:00:00",
        &["2020-12-28T00:00:00+00:00", "2021-01-04T00:00:00+00:00", "2021-01-18T00:00:00+00:00"]),
    (7, r#"{"day_of_week": "mon-fri", "hour": "9-17/2"}"#, "UTC", "2024-01-05 16:00:00",
        &["2024-01-05T17:00:00+00:00", "2024-01-08T09:00:00+00:00", "2024-01-08T11:00:00+00:00"]),
    (8, r#"{"month": 2, "day": 29}"#, "UTC", "2024-03-01 00:00:00",
        &["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00", "2036-02-29T00:00:00+00:00"]),
    (9, r#"{"day": "*/10"}"#, "UTC", "2024-01-25 00:00:00",
        &["2024-01-31T00:00:00+00:00", "2024-02-01T00:00:00+00:00", "2024-02-11T00:00:00+00:00"]),
    (10, r#"{"day": "1-7", "day_of_week": "mon"}"#, "UTC", "2024-01-02 00:00:00",
        &["2024-02-05T00:00:00+00:00", "2024-03-04T00:00:00+00:00", "2024-04-01T00:00:00+00:00"]),
    (11, r#"{"hour": "*/5"}"#, "UTC", "2024-01-01 19:00:00",
        &["2024-01-01T20:00:00+00:00", "2024-01-02T00:00:00+00:00", "2024-01-02T05:00:00+00:00"]),
    (12, r#"{"minute": "5/15"}"#, "UTC", "2024-01-01 00:36:00",
        &["2024-01-01T00:50:00+00:00", "2024-01-01T01:05:00+00:00", "2024-01-01T01:20:00+00:00"]),
    (13, r#"{"year": "2025-2027"}"#, "UTC", "2024-06-01 00:00:00",
        &["2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"]),
    (14, r#"{"year": "*/2", "month": 1, "day": 1}"#, "UTC", "2024-06-01 00:00:00",
        &["2026-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00", "2030-01-01T00:00:00+00:00"]),
    (15, r#"{"minute": "0", "hour": "9", "day": "*", "month": "*", "day_of_week": "1-5"}"#, "UTC", "2024-01-01 00:00:00",
        &["2024-01-02T09:00:00+00:00", "2024-01-03T09:00:00+00:00", "2024-01-04T09:00:00+00:00"]),
    (16, r#"{"minute": "*/15", "hour": "*", "day": "*", "month": "*", "day_of_week": "*"}"#, "UTC", "2024-01-01 00:07:30",
        &["2024-01-01T00:15:00+00:00", "2024-01-01T00:30:00+00:00", "2024-01-01T00:45:00+00:00"]),
    (17, r#"{"hour": 2, "minute": 30}"#, "Europe/Berlin", "2024-03-30 03:00:00",
        &["2024-03-31T02:30:00+01:00", "2024-04-01T02:30:00+02:00", "2024-04-02T02:30:00+02:00"]),
    (18, r#"{"hour": 2, "minute": 30}"#, "Europe/Berlin", "2024-10-26 03:00:00",
        &["2024-10-27T02:30:00+02:00", "2024-10-27T02:30:00+01:00", "2024-10-28T02:30:00+01:00"]),
    (19, r#"{"minute": "*/30"}"#, "Europe/Berlin", "2024-10-27 01:45:00",
        &["2024-10-27T02:00:00+02:00", "2024-10-27T02:30:00+02:00", "2024-10-27T02:00:00+01:00",
          "2024-10-27T02:30:00+01:00", "2024-10-27T03:00:00+01:00"]),
    (20, r#"{"minute": "*/30"}"#, "Europe/Berlin", "2024-03-31 01:15:00",
        &["2024-03-31T01:30:00+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00"]),
    (21, r#"{"month": "mar", "day": "last sun", "hour": 2}"#, "Europe/Berlin", "2024-01-01 00:00:00",
        &["2024-03-31T02:00:00+01:00", "2025-03-30T02:00:00+01:00", "2026-03-29T02:00:00+01:00"]),
    (22, r#"{"minute": "*/30"}"#, "America/New_York", "2024-03-10 01:15:00",
        &["2024-03-10T01:30:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T03:30:00-04:00"]),
    (23, r#"{"hour": 1, "minute": 30}"#, "America/New_York", "2024-11-02 12:00:00",
        &["2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00", "2024-11-04T01:30:00-05:00"]),
    (24, r#"{"minute": 0}"#, "America/New_York", "2024-11-03 00:30:00",
        &["2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"]),
    (25, r#"{"hour": 2, "minute": 30}"#, "America/New_York", "2024-03-09 12:00:00",
        &["2024-03-10T02:30:00-05:00", "2024-03-11T02:30:00-04:00", "2024-03-12T02:30:00-04:00"]),
    (26, r#"{"day": 31}"#, "UTC", "2024-01-31 12:00:00",
        &["2024-03-31T00:00:00+00:00", "2024-05-31T00:00:00+00:00", "2024-07-31T00:00:00+00:00"]),
    (27, r#"{"month": 2, "day": 30}"#, "UTC", "2024-01-01 00:00:00", &[]),
    (28, r#"{"hour": 9}"#, "UTC", "2024-01-01 09:00:00",
        &["2024-01-01T09:00:00+00:00", "2024-01-02T09:00:00+00:00", "2024-01-03T09:00:00+00:00"]),
    (29, r#"{"hour": 9}"#, "UTC", "2024-01-01 09:00:00.000001",
        &["2024-01-02T09:00:00+00:00", "2024-01-03T09:00:00+00:00", "2024-01-04T09:00:00+00:00"]),
    (30, r#"{"week": 53, "day_of_week": "fri"}"#, "UTC", "2025-01-01 00:00:00",
        &["2027-01-01T00:00:00+00:00", "2032-12-31T00:00:00+00:00", "2038-01-01T00:00:00+00:00"]),
    // APScheduler: 03-31, then 04-02 (skips April 1).
    (31, r#"{"hour": 0, "minute": 0}"#, "Europe/Berlin", "2024-03-30 12:00:00",
        &["2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00", "2024-04-02T00:00:00+02:00"]),
    // APScheduler: 03-01, then 05-01 (skips April).
    (32, r#"{"day": 1}"#, "Europe/Berlin", "2024-02-29 12:00:00",
        &["2024-03-01T00:00:00+01:00", "2024-04-01T00:00:00+02:00", "2024-05-01T00:00:00+02:00"]),
    (32, r#"{"day": 1, "hour": 0}"#, "Europe/Berlin", "2024-02-29 12:00:00",
        &["2024-03-01T00:00:00+01:00", "2024-04-01T00:00:00+02:00", "2024-05-01T00:00:00+02:00"]),
    (32, r#"{"day": 1}"#, "Australia/Sydney", "2025-09-15 00:00:00",
        &["2025-10-01T00:00:00+10:00", "2025-11-01T00:00:00+11:00", "2025-12-01T00:00:00+11:00"]),
    // APScheduler: 03-04, then 03-18 (skips March 11).
    (33, r#"{"day_of_week": "mon", "hour": 0}"#, "America/New_York", "2024-03-04 00:00:00",
        &["2024-03-04T00:00:00-05:00", "2024-03-11T00:00:00-04:00", "2024-03-18T00:00:00-04:00"]),
    // Issue #529. APScheduler: 03-16 first.
    (34, r#"{"day_of_week": "0-4", "hour": 0, "minute": 0}"#, "America/Chicago", "2021-03-12 00:00:00.000001",
        &["2021-03-15T00:00:00-05:00", "2021-03-16T00:00:00-05:00", "2021-03-17T00:00:00-05:00"]),
];

#[test]
fn sanity_table() {
    let mut failures = Vec::new();
    for &(row, spec, tz, start, want) in ROWS {
        let got = chain(spec, tz, start, want.len().max(1));
        if got != want {
            failures.push(format!(
                "row {row} {spec} in {tz} from {start}\n  want {want:?}\n  got  {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_year_range_ends() {
    assert_eq!(
        chain(r#"{"year": "2025-2027"}"#, "UTC", "2024-06-01 00:00:00", 9).len(),
        3
    );
}

#[test]
fn monthly_midnight_never_skips_april() {
    for tz in ["Europe/Berlin", "Europe/London", "America/New_York"] {
        for year in [2025, 2026] {
            let got = chain(r#"{"day": 1}"#, tz, &format!("{year}-02-15 00:00:00"), 3);
            assert!(
                got[1].starts_with(&format!("{year}-04-01T00:00:00")),
                "{tz}: {got:?}"
            );
        }
    }
}

/// Found by the property test with the carry fix switched off: `week='*/2'` (every day of odd
/// ISO weeks) in Sydney from 2024-10-06 01:59:59 local, just before spring-forward. APScheduler
/// lands at 01:00 on the 7th after the carry and skips to the 8th.
#[test]
fn every_day_of_odd_weeks_keeps_the_day_after_spring_forward() {
    let got = chain(
        r#"{"week": "*/2"}"#,
        "Australia/Sydney",
        "2024-10-06 01:59:59",
        3,
    );
    assert_eq!(
        got,
        [
            "2024-10-07T00:00:00+11:00",
            "2024-10-08T00:00:00+11:00",
            "2024-10-09T00:00:00+11:00"
        ]
    );
}

/// São Paulo 2018: DST began at midnight, so no hour-0 time existed on 11-04. The carry's
/// target is itself in the gap, where the fix keeps APScheduler's answer (conformance README:
/// `wall` and `new` are the same instant), 11-05, as APScheduler gives.
#[test]
fn a_missing_midnight_is_not_invented() {
    let got = chain(
        r#"{"hour": 0}"#,
        "America/Sao_Paulo",
        "2018-11-03 12:00:00",
        2,
    );
    assert_eq!(
        got,
        ["2018-11-05T00:00:00-02:00", "2018-11-06T00:00:00-02:00"]
    );
}

/// §1.2's table: the next two fire times from 2024-05-15 10:20:30 UTC.
#[rustfmt::skip]
const DEFAULTS: &[(&str, &[&str])] = &[
    (r#"{}"#, &["2024-05-15T10:20:30+00:00", "2024-05-15T10:20:31+00:00"]),
    (r#"{"second": 30}"#, &["2024-05-15T10:20:30+00:00", "2024-05-15T10:21:30+00:00"]),
    (r#"{"hour": 9}"#, &["2024-05-16T09:00:00+00:00", "2024-05-17T09:00:00+00:00"]),
    (r#"{"day_of_week": "mon"}"#, &["2024-05-20T00:00:00+00:00", "2024-05-27T00:00:00+00:00"]),
    (r#"{"week": 2}"#, &["2025-01-06T00:00:00+00:00", "2025-01-07T00:00:00+00:00"]),
    (r#"{"month": 6}"#, &["2024-06-01T00:00:00+00:00", "2025-06-01T00:00:00+00:00"]),
    (r#"{"month": "6", "hour": 12}"#, &["2024-06-01T12:00:00+00:00", "2024-06-02T12:00:00+00:00"]),
    (r#"{"year": 2025}"#, &["2025-01-01T00:00:00+00:00"]),
    (r#"{"day": 1, "minute": 20}"#, &["2024-06-01T00:20:00+00:00", "2024-06-01T01:20:00+00:00"]),
    (r#"{"day_of_week": "fri", "second": 5}"#, &["2024-05-17T00:00:05+00:00", "2024-05-17T00:01:05+00:00"]),
];

#[test]
fn defaults_rule_fire_times() {
    for &(spec, want) in DEFAULTS {
        assert_eq!(chain(spec, "UTC", "2024-05-15 10:20:30", 2), want, "{spec}");
    }
}
