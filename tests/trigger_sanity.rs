//! `reference/apscheduler.md` §10: real outputs of APScheduler 3.11.3, chained as a running
//! scheduler chains them (`f1 = next(None, start)`, `f(k+1) = next(fk, fk)`). Rows 31–34 are
//! the spring-forward skips; tickd gives the fixed answers (CONTRACT §3): no day is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tickd::trigger::{Trigger, isoformat, parse_next_run_time, parse_timezone};

/// A wall time (`YYYY-MM-DD HH:MM:SS[.f]`, first pass if repeated) in `tz`, as an instant.
fn at(tz: &str, wall: &str) -> DateTime<Utc> {
    parse_next_run_time(wall, parse_timezone(tz).unwrap())
        .unwrap()
        .to_utc()
}

/// The first `n` fire times from `start`, in `isoformat()`.
fn chain(spec: Value, tz: &str, start: &str, n: usize) -> Vec<String> {
    let args = spec.as_object().unwrap().clone();
    let zone = parse_timezone(tz).unwrap();
    let now = at(tz, start);
    let trigger = Trigger::from_args("cron", &args, zone, now).unwrap();
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

fn check(row: u32, spec: Value, tz: &str, start: &str, want: &[&str]) {
    let got = chain(spec, tz, start, want.len());
    assert_eq!(got, want, "§10 row {row}");
}

#[test]
fn special_days() {
    let utc = "UTC";
    check(
        1,
        json!({"day": "last fri"}),
        utc,
        "2024-01-01 00:00:00",
        &[
            "2024-01-26T00:00:00+00:00",
            "2024-02-23T00:00:00+00:00",
            "2024-03-29T00:00:00+00:00",
        ],
    );
    check(
        2,
        json!({"day": "3rd mon"}),
        utc,
        "2024-01-16 00:00:00",
        &[
            "2024-02-19T00:00:00+00:00",
            "2024-03-18T00:00:00+00:00",
            "2024-04-15T00:00:00+00:00",
        ],
    );
    check(
        3,
        json!({"day": "last"}),
        utc,
        "2024-01-31 00:00:01",
        &[
            "2024-02-29T00:00:00+00:00",
            "2024-03-31T00:00:00+00:00",
            "2024-04-30T00:00:00+00:00",
        ],
    );
    check(
        4,
        json!({"day": "5th fri"}),
        utc,
        "2024-01-01 00:00:00",
        &[
            "2024-03-29T00:00:00+00:00",
            "2024-05-31T00:00:00+00:00",
            "2024-08-30T00:00:00+00:00",
        ],
    );
    check(
        8,
        json!({"month": 2, "day": 29}),
        utc,
        "2024-03-01 00:00:00",
        &[
            "2028-02-29T00:00:00+00:00",
            "2032-02-29T00:00:00+00:00",
            "2036-02-29T00:00:00+00:00",
        ],
    );
    check(
        9,
        json!({"day": "*/10"}),
        utc,
        "2024-01-25 00:00:00",
        &[
            "2024-01-31T00:00:00+00:00",
            "2024-02-01T00:00:00+00:00",
            "2024-02-11T00:00:00+00:00",
        ],
    );
    check(
        10,
        json!({"day": "1-7", "day_of_week": "mon"}),
        utc,
        "2024-01-02 00:00:00",
        &[
            "2024-02-05T00:00:00+00:00",
            "2024-03-04T00:00:00+00:00",
            "2024-04-01T00:00:00+00:00",
        ],
    );
    check(
        26,
        json!({"day": 31}),
        utc,
        "2024-01-31 12:00:00",
        &[
            "2024-03-31T00:00:00+00:00",
            "2024-05-31T00:00:00+00:00",
            "2024-07-31T00:00:00+00:00",
        ],
    );
    check(
        27,
        json!({"month": 2, "day": 30}),
        utc,
        "2024-01-01 00:00:00",
        &[],
    );
}

#[test]
fn weeks() {
    let utc = "UTC";
    check(
        5,
        json!({"week": "*/2"}),
        utc,
        "2024-01-06 00:00:00",
        &[
            "2024-01-06T00:00:00+00:00",
            "2024-01-07T00:00:00+00:00",
            "2024-01-15T00:00:00+00:00",
        ],
    );
    check(
        6,
        json!({"week": "*/2", "day_of_week": "mon"}),
        utc,
        "2020-12-20 00:00:00",
        &[
            "2020-12-28T00:00:00+00:00",
            "2021-01-04T00:00:00+00:00",
            "2021-01-18T00:00:00+00:00",
        ],
    );
    check(
        30,
        json!({"week": 53, "day_of_week": "fri"}),
        utc,
        "2025-01-01 00:00:00",
        &[
            "2027-01-01T00:00:00+00:00",
            "2032-12-31T00:00:00+00:00",
            "2038-01-01T00:00:00+00:00",
        ],
    );
}

#[test]
fn steps_ranges_and_years() {
    let utc = "UTC";
    check(
        7,
        json!({"day_of_week": "mon-fri", "hour": "9-17/2"}),
        utc,
        "2024-01-05 16:00:00",
        &[
            "2024-01-05T17:00:00+00:00",
            "2024-01-08T09:00:00+00:00",
            "2024-01-08T11:00:00+00:00",
        ],
    );
    check(
        11,
        json!({"hour": "*/5"}),
        utc,
        "2024-01-01 19:00:00",
        &[
            "2024-01-01T20:00:00+00:00",
            "2024-01-02T00:00:00+00:00",
            "2024-01-02T05:00:00+00:00",
        ],
    );
    check(
        12,
        json!({"minute": "5/15"}),
        utc,
        "2024-01-01 00:36:00",
        &[
            "2024-01-01T00:50:00+00:00",
            "2024-01-01T01:05:00+00:00",
            "2024-01-01T01:20:00+00:00",
        ],
    );
    check(
        13,
        json!({"year": "2025-2027"}),
        utc,
        "2024-06-01 00:00:00",
        &[
            "2025-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00+00:00",
            "2027-01-01T00:00:00+00:00",
        ],
    );
    assert_eq!(
        chain(json!({"year": "2025-2027"}), utc, "2024-06-01 00:00:00", 9).len(),
        3
    );
    check(
        14,
        json!({"year": "*/2", "month": 1, "day": 1}),
        utc,
        "2024-06-01 00:00:00",
        &[
            "2026-01-01T00:00:00+00:00",
            "2028-01-01T00:00:00+00:00",
            "2030-01-01T00:00:00+00:00",
        ],
    );
    // Rows 15 and 16: `from_crontab` gives every one of its five fields, `*` included.
    let crontab = |m: &str, h: &str, dom: &str, mon: &str, dow: &str| json!({"minute": m, "hour": h, "day": dom, "month": mon, "day_of_week": dow});
    check(
        15,
        crontab("0", "9", "*", "*", "1-5"),
        utc,
        "2024-01-01 00:00:00",
        &[
            "2024-01-02T09:00:00+00:00",
            "2024-01-03T09:00:00+00:00",
            "2024-01-04T09:00:00+00:00",
        ],
    );
    check(
        16,
        crontab("*/15", "*", "*", "*", "*"),
        utc,
        "2024-01-01 00:07:30",
        &[
            "2024-01-01T00:15:00+00:00",
            "2024-01-01T00:30:00+00:00",
            "2024-01-01T00:45:00+00:00",
        ],
    );
    check(
        28,
        json!({"hour": 9}),
        utc,
        "2024-01-01 09:00:00",
        &[
            "2024-01-01T09:00:00+00:00",
            "2024-01-02T09:00:00+00:00",
            "2024-01-03T09:00:00+00:00",
        ],
    );
    check(
        29,
        json!({"hour": 9}),
        utc,
        "2024-01-01 09:00:00.000001",
        &[
            "2024-01-02T09:00:00+00:00",
            "2024-01-03T09:00:00+00:00",
            "2024-01-04T09:00:00+00:00",
        ],
    );
}

#[test]
fn daylight_saving_time() {
    let berlin = "Europe/Berlin";
    let ny = "America/New_York";
    check(
        17,
        json!({"hour": 2, "minute": 30}),
        berlin,
        "2024-03-30 03:00:00",
        &[
            "2024-03-31T02:30:00+01:00",
            "2024-04-01T02:30:00+02:00",
            "2024-04-02T02:30:00+02:00",
        ],
    );
    check(
        18,
        json!({"hour": 2, "minute": 30}),
        berlin,
        "2024-10-26 03:00:00",
        &[
            "2024-10-27T02:30:00+02:00",
            "2024-10-27T02:30:00+01:00",
            "2024-10-28T02:30:00+01:00",
        ],
    );
    check(
        19,
        json!({"minute": "*/30"}),
        berlin,
        "2024-10-27 01:45:00",
        &[
            "2024-10-27T02:00:00+02:00",
            "2024-10-27T02:30:00+02:00",
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T02:30:00+01:00",
            "2024-10-27T03:00:00+01:00",
        ],
    );
    check(
        20,
        json!({"minute": "*/30"}),
        berlin,
        "2024-03-31 01:15:00",
        &[
            "2024-03-31T01:30:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-03-31T03:30:00+02:00",
        ],
    );
    check(
        21,
        json!({"month": "mar", "day": "last sun", "hour": 2}),
        berlin,
        "2024-01-01 00:00:00",
        &[
            "2024-03-31T02:00:00+01:00",
            "2025-03-30T02:00:00+01:00",
            "2026-03-29T02:00:00+01:00",
        ],
    );
    check(
        22,
        json!({"minute": "*/30"}),
        ny,
        "2024-03-10 01:15:00",
        &[
            "2024-03-10T01:30:00-05:00",
            "2024-03-10T03:00:00-04:00",
            "2024-03-10T03:30:00-04:00",
        ],
    );
    check(
        23,
        json!({"hour": 1, "minute": 30}),
        ny,
        "2024-11-02 12:00:00",
        &[
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:30:00-05:00",
            "2024-11-04T01:30:00-05:00",
        ],
    );
    check(
        24,
        json!({"minute": 0}),
        ny,
        "2024-11-03 00:30:00",
        &[
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T02:00:00-05:00",
        ],
    );
    check(
        25,
        json!({"hour": 2, "minute": 30}),
        ny,
        "2024-03-09 12:00:00",
        &[
            "2024-03-10T02:30:00-05:00",
            "2024-03-11T02:30:00-04:00",
            "2024-03-12T02:30:00-04:00",
        ],
    );
}

/// Rows 31–34: APScheduler skips the occurrence after spring-forward; tickd does not.
#[test]
fn spring_forward_skips_nothing() {
    check(
        31,
        json!({"hour": 0, "minute": 0}),
        "Europe/Berlin",
        "2024-03-30 12:00:00",
        &[
            "2024-03-31T00:00:00+01:00",
            "2024-04-01T00:00:00+02:00",
            "2024-04-02T00:00:00+02:00",
        ],
    );
    check(
        32,
        json!({"day": 1}),
        "Europe/Berlin",
        "2024-02-29 12:00:00",
        &[
            "2024-03-01T00:00:00+01:00",
            "2024-04-01T00:00:00+02:00",
            "2024-05-01T00:00:00+02:00",
        ],
    );
    check(
        32,
        json!({"day": 1, "hour": 0}),
        "Europe/Berlin",
        "2024-02-29 12:00:00",
        &[
            "2024-03-01T00:00:00+01:00",
            "2024-04-01T00:00:00+02:00",
            "2024-05-01T00:00:00+02:00",
        ],
    );
    for tz in ["Europe/London", "America/New_York"] {
        let got = chain(json!({"day": 1}), tz, "2025-02-15 00:00:00", 3);
        assert!(got[1].starts_with("2025-04-01T00:00:00"), "{tz}: {got:?}");
    }
    let sydney = chain(
        json!({"day": 1}),
        "Australia/Sydney",
        "2025-09-15 00:00:00",
        3,
    );
    assert_eq!(
        sydney,
        [
            "2025-10-01T00:00:00+10:00",
            "2025-11-01T00:00:00+11:00",
            "2025-12-01T00:00:00+11:00"
        ]
    );
    check(
        33,
        json!({"day_of_week": "mon", "hour": 0}),
        "America/New_York",
        "2024-03-04 00:00:00",
        &[
            "2024-03-04T00:00:00-05:00",
            "2024-03-11T00:00:00-04:00",
            "2024-03-18T00:00:00-04:00",
        ],
    );
    check(
        34,
        json!({"day_of_week": "0-4", "hour": 0, "minute": 0}),
        "America/Chicago",
        "2021-03-12 00:00:00.000001",
        &[
            "2021-03-15T00:00:00-05:00",
            "2021-03-16T00:00:00-05:00",
            "2021-03-17T00:00:00-05:00",
        ],
    );
    // São Paulo 2018: DST began at midnight, so no hour-0 time existed on 11-04. The carry's
    // target is itself in the gap, where the fix keeps APScheduler's answer (the README's rule:
    // `wall` and `new` are the same instant): 11-05, as APScheduler gives.
    let sao_paulo = chain(
        json!({"hour": 0}),
        "America/Sao_Paulo",
        "2018-11-03 12:00:00",
        2,
    );
    assert_eq!(
        sao_paulo,
        ["2018-11-05T00:00:00-02:00", "2018-11-06T00:00:00-02:00"]
    );
}

/// §1.2: the defaults rule table's fire times, from 2024-05-15 10:20:30 UTC.
#[test]
fn defaults_rule_fire_times() {
    let start = "2024-05-15 10:20:30";
    let two = |spec: Value| chain(spec, "UTC", start, 2);
    assert_eq!(
        two(json!({})),
        ["2024-05-15T10:20:30+00:00", "2024-05-15T10:20:31+00:00"]
    );
    assert_eq!(
        two(json!({"second": 30})),
        ["2024-05-15T10:20:30+00:00", "2024-05-15T10:21:30+00:00"]
    );
    assert_eq!(
        two(json!({"hour": 9})),
        ["2024-05-16T09:00:00+00:00", "2024-05-17T09:00:00+00:00"]
    );
    assert_eq!(
        two(json!({"day_of_week": "mon"})),
        ["2024-05-20T00:00:00+00:00", "2024-05-27T00:00:00+00:00"]
    );
    assert_eq!(
        two(json!({"week": 2})),
        ["2025-01-06T00:00:00+00:00", "2025-01-07T00:00:00+00:00"]
    );
    assert_eq!(
        two(json!({"month": 6})),
        ["2024-06-01T00:00:00+00:00", "2025-06-01T00:00:00+00:00"]
    );
    assert_eq!(
        two(json!({"month": "6", "hour": 12})),
        ["2024-06-01T12:00:00+00:00", "2024-06-02T12:00:00+00:00"]
    );
    assert_eq!(
        chain(json!({"year": 2025}), "UTC", start, 5),
        ["2025-01-01T00:00:00+00:00"]
    );
    assert_eq!(
        two(json!({"day": 1, "minute": 20})),
        ["2024-06-01T00:20:00+00:00", "2024-06-01T01:20:00+00:00"]
    );
    assert_eq!(
        two(json!({"day_of_week": "fri", "second": 5})),
        ["2024-05-17T00:00:05+00:00", "2024-05-17T00:01:05+00:00"]
    );
}
