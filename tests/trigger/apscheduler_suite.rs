//! APScheduler 3.11's own trigger tests (`tests/triggers/test_cron.py`, `test_interval.py`,
//! `test_date.py`), ported from the listing in `reference/apscheduler.md` §8. Unless noted the
//! zone is Europe/Berlin and times are Berlin wall times (first pass).

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde_json::{Value, json};
use tickd::trigger::{Trigger, isoformat, parse_next_run_time, parse_timezone};

const BERLIN: &str = "Europe/Berlin";

fn local(tz: &str, wall: &str) -> DateTime<FixedOffset> {
    parse_next_run_time(wall, parse_timezone(tz).unwrap()).unwrap()
}

fn utc(tz: &str, wall: &str) -> DateTime<Utc> {
    local(tz, wall).to_utc()
}

fn fixed(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap()
}

fn build(kind: &str, spec: Value, tz: &str) -> Trigger {
    build_at(kind, spec, tz, "2030-01-01 00:00:00")
}

fn build_at(kind: &str, spec: Value, tz: &str, now: &str) -> Trigger {
    let args = spec.as_object().unwrap().clone();
    Trigger::from_args(kind, &args, parse_timezone(tz).unwrap(), utc(tz, now)).unwrap()
}

fn refuse(kind: &str, spec: Value) -> String {
    let args = spec.as_object().unwrap().clone();
    Trigger::from_args(kind, &args, chrono_tz::Tz::UTC, Utc::now())
        .unwrap_err()
        .0
}

/// `next_fire_time(None, now)` for a cron spec in Berlin, shown as `isoformat()`.
fn first(spec: Value, now: &str) -> Option<String> {
    build("cron", spec, BERLIN)
        .next_fire_time(None, utc(BERLIN, now))
        .map(|t| isoformat(&t))
}

#[test]
fn cron_basics() {
    let spec = json!({"year": "2009/2", "month": "1/3", "day": "5-13"});
    assert_eq!(
        first(spec.clone(), "2008-12-01 00:00:00").unwrap(),
        "2009-01-05T00:00:00+01:00"
    );
    assert_eq!(
        first(spec, "2009-10-14 00:00:00").unwrap(),
        "2011-01-05T00:00:00+01:00"
    );
    let spec = json!({"year": "2009", "month": "feb-dec", "hour": "8-10"});
    assert_eq!(
        first(spec, "2009-01-01 00:00:00").unwrap(),
        "2009-02-01T08:00:00+01:00"
    );
    let spec = json!({"year": "2012", "month": "2", "day": "last"});
    assert_eq!(
        first(spec, "2012-02-01 00:00:00").unwrap(),
        "2012-02-29T00:00:00+01:00"
    );
    assert_eq!(
        first(json!({"year": "2009,2008"}), "2009-01-01 00:00:00").unwrap(),
        "2009-01-01T00:00:00+01:00"
    );
    let spec =
        json!({"year": "2009", "month": "2", "hour": "8-10", "start_date": "2009-02-03 11:00:00"});
    assert_eq!(
        first(spec, "2009-01-01 00:00:00").unwrap(),
        "2009-02-04T08:00:00+01:00"
    );
    assert_eq!(
        first(json!({"day": "6,8"}), "2009-12-31 00:00:00").unwrap(),
        "2010-01-06T00:00:00+01:00"
    );
    assert_eq!(
        first(json!({"hour": "5-6"}), "2009-09-25 07:00:00").unwrap(),
        "2009-09-26T05:00:00+02:00"
    );
    assert_eq!(
        first(json!({"day": 30}), "2016-02-01 00:00:00").unwrap(),
        "2016-03-30T00:00:00+02:00"
    );
}

#[test]
fn cron_weekdays_and_weeks() {
    let on_2009 = "2009-01-01 00:00:00";
    let spec = json!({"year": 2009, "month": 1, "day": "6-10", "day_of_week": "2-4"});
    assert_eq!(first(spec, on_2009).unwrap(), "2009-01-07T00:00:00+01:00");
    let spec = json!({"year": 2009, "month": 1, "day": "6-10", "day_of_week": "0,6"});
    assert_eq!(first(spec, on_2009), None);
    let spec = json!({"year": 2009, "month": 1, "day": "4th wed"});
    assert_eq!(first(spec, on_2009).unwrap(), "2009-01-28T00:00:00+01:00");
    let spec = json!({"year": 2009, "month": 2, "week": 8});
    assert_eq!(first(spec, on_2009).unwrap(), "2009-02-16T00:00:00+01:00");
    let spec = json!({"year": 2009, "week": 15, "day_of_week": 2});
    assert_eq!(
        first(spec.clone(), on_2009).unwrap(),
        "2009-04-08T00:00:00+02:00"
    );
    // different_tz: `now` given at UTC−10:00.
    let now = fixed("2008-12-31T22:00:00-10:00").to_utc();
    let got = build("cron", spec, BERLIN)
        .next_fire_time(None, now)
        .unwrap();
    assert_eq!(isoformat(&got), "2009-04-08T00:00:00+02:00");
}

#[test]
fn cron_previous_fire_time() {
    let trigger = build("cron", json!({"day": "*"}), BERLIN);
    let next = |prev: &str, now: &str| {
        let got = trigger.next_fire_time(Some(local(BERLIN, prev)), utc(BERLIN, now));
        isoformat(&got.unwrap())
    };
    assert_eq!(
        next("2015-11-23 00:00:00", "2015-11-26 00:00:00"),
        "2015-11-24T00:00:00+01:00"
    );
    // The clock went back: the search restarts from `now`.
    assert_eq!(
        next("2015-11-23 00:00:00", "2015-11-22 00:00:00"),
        "2015-11-22T00:00:00+01:00"
    );
    assert_eq!(
        next("2016-04-25 00:00:00", "2016-04-25 00:00:00"),
        "2016-04-26T00:00:00+02:00"
    );
}

#[test]
fn cron_end_date() {
    let trigger = build(
        "cron",
        json!({"year": 2014, "hour": 4, "end_date": "2014-04-13 03:00:00"}),
        BERLIN,
    );
    let got = trigger.next_fire_time(None, utc(BERLIN, "2014-04-12 02:30:00"));
    assert_eq!(isoformat(&got.unwrap()), "2014-04-12T04:00:00+02:00");
    assert_eq!(
        trigger.next_fire_time(None, utc(BERLIN, "2014-04-13 02:30:00")),
        None
    );
}

#[test]
fn cron_timezone_change() {
    // timezone_change: trigger at UTC−05:00 (Etc/GMT+5), `now` at UTC−06:00.
    let trigger = build("cron", json!({"hour": 11, "minute": "*/5"}), "Etc/GMT+5");
    let got = trigger.next_fire_time(None, fixed("2009-09-26T10:16:00-06:00").to_utc());
    assert_eq!(isoformat(&got.unwrap()), "2009-09-26T11:20:00-05:00");
}

/// `dst_change` (US/Eastern) and `dst_change_2` (Helsinki); each asserted for `(None, start)`,
/// `(start, start)` and `(start, expected)`, as the original does.
#[test]
fn cron_dst_changes() {
    let cases = [
        (
            json!({"hour": 8}),
            "2013-03-09T12:00:00-05:00",
            "2013-03-10T08:00:00-04:00",
        ),
        (
            json!({"hour": 8}),
            "2013-11-02T12:00:00-04:00",
            "2013-11-03T08:00:00-05:00",
        ),
        (
            json!({"hour": 1, "minute": 30}),
            "2013-11-03T00:30:00-04:00",
            "2013-11-03T01:30:00-04:00",
        ),
        (
            json!({"hour": 1, "minute": 30}),
            "2013-11-03T01:30:05-04:00",
            "2013-11-03T01:30:00-05:00",
        ),
        (
            json!({"hour": 1, "minute": 30}),
            "2013-11-03T01:30:05-05:00",
            "2013-11-04T01:30:00-05:00",
        ),
        (
            json!({"minute": "*/30"}),
            "2013-03-10T01:35:00-05:00",
            "2013-03-10T03:00:00-04:00",
        ),
        (
            json!({"minute": "*/30"}),
            "2013-11-03T01:35:00-04:00",
            "2013-11-03T01:00:00-05:00",
        ),
    ];
    for (spec, start, want) in cases {
        let trigger = build("cron", spec.clone(), "America/New_York");
        let start = fixed(start);
        let want_time = fixed(want);
        for (prev, now) in [
            (None, start),
            (Some(start), start),
            (Some(start), want_time),
        ] {
            let got = trigger
                .next_fire_time(prev, now.to_utc())
                .map(|t| isoformat(&t));
            assert_eq!(
                got.as_deref(),
                Some(want),
                "{spec} from {start} (prev {prev:?})"
            );
        }
    }
    let helsinki = build("cron", json!({"minute": 30}), "Europe/Helsinki");
    let start = fixed("2017-10-29T03:30:00.000005+02:00");
    let got = helsinki
        .next_fire_time(Some(start), start.to_utc())
        .unwrap();
    assert_eq!(isoformat(&got), "2017-10-29T04:30:00+02:00");
}

#[test]
fn cron_jitter() {
    let now = utc(BERLIN, "2017-11-12 06:55:30");
    let trigger = build("cron", json!({"minute": "*", "jitter": 5}), BERLIN);
    let results: Vec<i64> = (0..20)
        .map(|_| {
            (trigger.next_fire_time(None, now).unwrap().to_utc() - now)
                .num_microseconds()
                .unwrap()
        })
        .collect();
    assert!(
        results
            .iter()
            .all(|us| (30_000_000..=35_000_000).contains(us)),
        "{results:?}"
    );
    assert!(
        results.iter().any(|us| *us != results[0]),
        "jitter gave no variation"
    );
    let bounded = build(
        "cron",
        json!({"minute": "*", "jitter": 5, "end_date": "2017-11-12 06:56:00"}),
        BERLIN,
    );
    for _ in 0..20 {
        let got = bounded.next_fire_time(None, now).unwrap();
        assert!(got <= local(BERLIN, "2017-11-12 06:56:00"), "{got}");
    }
}

#[test]
fn cron_arguments() {
    assert_eq!(
        refuse("cron", json!({"second": 0, "third": 1})),
        "CronTrigger.__init__() got an unexpected keyword argument 'third'"
    );
    assert_eq!(
        refuse("cron", json!({"year": "2009-fault"})),
        "Unrecognized expression \"2009-fault\" for field \"year\""
    );
    let trigger = build(
        "cron",
        json!({"start_date": "2016-11-05 05:06:53", "end_date": "2017-11-05 05:11:32"}),
        BERLIN,
    );
    let fields = trigger.fields();
    assert_eq!(fields["start_date"], "2016-11-05T05:06:53+01:00");
    assert_eq!(fields["end_date"], "2017-11-05T05:11:32+01:00");
    let fields = build("cron", json!({"year": 2009, "month": 2, "hour": 0}), BERLIN).fields();
    assert_eq!(
        Value::Object(fields),
        json!({"year": "2009", "month": "2", "hour": "0"})
    );
    let fields = build("cron", json!({"day": "1-2, 4-7"}), BERLIN).fields();
    assert_eq!(fields["day"], "1-2,4-7");
}

#[test]
fn interval() {
    let fixture = build(
        "interval",
        json!({"seconds": 1, "start_date": "2009-08-04 00:00:02"}),
        BERLIN,
    );
    let start = local(BERLIN, "2009-08-04 00:00:02");
    let next = |now: DateTime<Utc>| fixture.next_fire_time(None, now).unwrap();
    assert_eq!(next(start.to_utc() - Duration::seconds(2)), start);
    assert_eq!(
        next(start.to_utc() + Duration::milliseconds(1)),
        start + Duration::seconds(1)
    );
    let got = next(fixed("2009-08-03T22:00:02.001-01:00").to_utc());
    assert_eq!(isoformat(&got), "2009-08-04T01:00:03+02:00");

    let now = utc(BERLIN, "2024-05-15 10:20:30.5");
    let no_start = build_at(
        "interval",
        json!({"seconds": 2}),
        BERLIN,
        "2024-05-15 10:20:30.5",
    );
    let first = no_start.next_fire_time(None, now).unwrap();
    assert_eq!(first.to_utc() - now, Duration::seconds(2));

    let ends = build(
        "interval",
        json!({"minutes": 5, "start_date": "2014-05-26 00:00:00", "end_date": "2014-05-26 00:07:00"}),
        BERLIN,
    );
    let at = |wall: &str| {
        ends.next_fire_time(None, utc(BERLIN, wall))
            .map(|t| isoformat(&t))
    };
    assert_eq!(
        at("2014-05-26 00:02:00").unwrap(),
        "2014-05-26T00:05:00+02:00"
    );
    assert_eq!(at("2014-05-26 00:06:00"), None);
    assert_eq!(
        ends.next_fire_time(
            Some(local(BERLIN, "2014-05-26 00:05:00")),
            utc(BERLIN, "2014-05-26 00:05:00")
        ),
        None
    );

    let hourly = build(
        "interval",
        json!({"hours": 1, "start_date": "2013-03-01 00:00:00"}),
        "America/New_York",
    );
    let at = |now: &str| isoformat(&hourly.next_fire_time(None, fixed(now).to_utc()).unwrap());
    assert_eq!(at("2013-03-10T01:05:00-05:00"), "2013-03-10T03:00:00-04:00");
    assert_eq!(at("2013-11-03T01:05:00-04:00"), "2013-11-03T01:00:00-05:00");

    let jittered = build(
        "interval",
        json!({"seconds": 5, "jitter": 5, "end_date": "2017-11-12 06:56:00", "start_date": "2017-11-12 06:00:00"}),
        BERLIN,
    );
    for _ in 0..20 {
        if let Some(t) = jittered.next_fire_time(None, utc(BERLIN, "2017-11-12 06:55:58")) {
            assert!(t <= local(BERLIN, "2017-11-12 06:56:00"));
        }
    }
}

#[test]
fn date() {
    let trigger = build("date", json!({"run_date": "2009-07-06"}), BERLIN);
    let run = local(BERLIN, "2009-07-06 00:00:00");
    for now in [
        "2008-05-04 00:00:00",
        "2009-07-06 00:00:00",
        "2009-09-02 00:00:00",
    ] {
        assert_eq!(trigger.next_fire_time(None, utc(BERLIN, now)), Some(run));
    }
    assert_eq!(trigger.next_fire_time(Some(run), run.to_utc()), None);
    let other_zone = build(
        "date",
        json!({"run_date": "2009-07-05T22:00:00-01:00"}),
        BERLIN,
    );
    assert_eq!(other_zone.next_fire_time(Some(run), run.to_utc()), None);
    // current_time: no run_date means now, in the trigger's zone.
    let now = utc(BERLIN, "2011-04-03 18:40:00");
    let current = Trigger::from_args(
        "date",
        &serde_json::Map::new(),
        parse_timezone(BERLIN).unwrap(),
        now,
    )
    .unwrap();
    assert_eq!(
        isoformat(&current.next_fire_time(None, now).unwrap()),
        "2011-04-03T18:40:00+02:00"
    );
    // `"2009-7-6"` is APScheduler's own format, not the ISO family (CONTRACT §2.8) ...
    assert!(
        refuse("date", json!({"run_date": "2009-7-6"}))
            .starts_with("Invalid date string '2009-7-6'")
    );
    // ... but `next_run_time` uses APScheduler's parser, which takes it.
    assert_eq!(
        isoformat(&local("UTC", "2009-7-6")),
        "2009-07-06T00:00:00+00:00"
    );
}
