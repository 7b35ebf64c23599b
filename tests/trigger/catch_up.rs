//! Catching up on a far-behind job without walking its fire times (issue 13, item 1), checked
//! against APScheduler's step-by-step walk (`next_fire_time` from one fire time to the next)
//! on spans small enough to walk: the arithmetic jump of an interval (with a start date, an
//! end date, off-grid `next_run_time`s, microsecond lengths and jitter), the bisection of a
//! cron (sparse and dense specs, DST zones, an impossible one), and `Job::due_run_times`,
//! which visits at most `MAX_DUE_RUN_TIMES` and summarises the rest.

use chrono::{DateTime, FixedOffset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use serde_json::{Value, json};
use tickd::job::{FireCount, Job, JobDefaults, JobSpec, MAX_DUE_RUN_TIMES};
use tickd::trigger::{CatchUp, Trigger};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 3, 29, 22, 0, 0).unwrap()
}

fn trigger(kind: &str, args: Value, tz: Tz) -> Trigger {
    Trigger::from_args(kind, args.as_object().unwrap(), tz, t0()).unwrap()
}

/// APScheduler's walk: `from`, then each next fire time, while at or before `until`.
fn walk(
    trigger: &Trigger,
    from: DateTime<FixedOffset>,
    until: DateTime<Utc>,
) -> Vec<DateTime<FixedOffset>> {
    let mut times = vec![from];
    while let Some(next) = trigger.next_fire_time(times.last().copied(), until) {
        if next > until {
            break;
        }
        assert!(times.len() < 200_000, "a span too long to walk in a test");
        times.push(next);
    }
    times
}

/// What the walk says `catch_up` must answer.
fn walked(
    times: &[DateTime<FixedOffset>],
) -> (DateTime<FixedOffset>, Option<DateTime<FixedOffset>>) {
    let latest = *times.last().unwrap();
    let previous = (times.len() > 1).then(|| times[times.len() - 2]);
    (latest, previous)
}

fn same_as_the_walk(trigger: &Trigger, from: DateTime<FixedOffset>, until: DateTime<Utc>) {
    let times = walk(trigger, from, until);
    let (latest, previous) = walked(&times);
    let caught = trigger.catch_up(from, until);
    assert_eq!(caught.latest, latest, "latest, from {from} to {until}");
    // The offset shown matters too (the job JSON shows it).
    assert_eq!(caught.latest.offset(), latest.offset());
    assert_eq!(
        caught.previous, previous,
        "previous, from {from} to {until}"
    );
    if let Some(count) = caught.before_latest {
        assert_eq!(count, FireCount::Exact(times.len() as u64 - 1), "count");
    }
}

fn at(micros: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp_micros(micros)
        .unwrap()
        .fixed_offset()
}

#[test]
fn an_interval_jumps_where_its_walk_goes() {
    let until = t0() + TimeDelta::microseconds(123_457);
    let from = |back: TimeDelta| (t0() - back).fixed_offset();
    for (args, back) in [
        (json!({"seconds": 1}), TimeDelta::hours(3)),
        (json!({"seconds": 0.000001}), TimeDelta::milliseconds(40)),
        (json!({"seconds": 0.1}), TimeDelta::minutes(30)),
        (json!({"seconds": 7.5}), TimeDelta::days(2)),
        (
            json!({"minutes": 13, "seconds": 0.333333}),
            TimeDelta::days(60),
        ),
        (json!({"hours": 1}), TimeDelta::days(400)),
        // A day as 24 h of elapsed time, in a zone that changes its clocks on the way.
        (
            json!({"days": 1, "timezone": "Europe/Berlin"}),
            TimeDelta::days(900),
        ),
        (
            json!({"seconds": 30, "start_date": "2031-01-01T00:00:10.5+00:00"}),
            TimeDelta::days(3),
        ),
    ] {
        let t = trigger("interval", args.clone(), Tz::UTC);
        same_as_the_walk(&t, from(back), until);
        // A next_run_time off the start_date grid (given in the body): the walk steps from
        // it, and so does the jump.
        same_as_the_walk(&t, from(back) + TimeDelta::microseconds(777), until);
        // Exactly on a fire time.
        let on = walk(&t, from(back), until);
        same_as_the_walk(&t, from(back), on.last().unwrap().to_utc());
    }
}

#[test]
fn an_interval_stops_at_its_end_date() {
    let t = trigger(
        "interval",
        json!({"seconds": 10, "start_date": "2031-03-01T00:00:00+00:00",
               "end_date": "2031-03-02T12:00:05+00:00"}),
        Tz::UTC,
    );
    let from = Utc
        .with_ymd_and_hms(2031, 3, 1, 0, 0, 0)
        .unwrap()
        .fixed_offset();
    same_as_the_walk(&t, from, t0());
    let caught = t.catch_up(from, t0());
    assert_eq!(
        caught.latest,
        Utc.with_ymd_and_hms(2031, 3, 2, 12, 0, 0)
            .unwrap()
            .fixed_offset()
    );
    assert_eq!(caught.before_latest, Some(FireCount::Exact(6 * 60 * 36)));
    assert_eq!(
        t.next_fire_time(Some(caught.latest), t0()),
        None,
        "nothing after the end date: the job is removed"
    );
}

#[test]
fn an_interval_with_jitter_jumps_on_its_grid_and_says_about() {
    let t = trigger("interval", json!({"seconds": 2, "jitter": 1}), Tz::UTC);
    let from = (t0() - TimeDelta::hours(1)).fixed_offset();
    let caught = t.catch_up(from, t0());
    assert_eq!(caught.latest, t0().fixed_offset(), "1800 steps of 2 s");
    assert_eq!(
        caught.previous,
        Some((t0() - TimeDelta::seconds(2)).fixed_offset())
    );
    assert_eq!(caught.before_latest, Some(FireCount::About(1800)));
    // Jitter only delays: a walk with it has no more fire times than the grid.
    assert!(walk(&t, from, t0()).len() <= 1801);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any length from a microsecond to a few hours, any offset from the grid, any span the
    /// walk can cover: the jump lands where the walk does.
    #[test]
    fn interval_jumps_match_the_walk(
        length in prop_oneof![1i64..1_000, 1_000i64..10_000_000, 10_000_000i64..20_000_000_000],
        steps in 0i64..5_000,
        extra in 0i64..1_000_000_000,
        from_micros in 1_900_000_000_000_000i64..2_100_000_000_000_000,
    ) {
        let seconds = length as f64 / 1e6;
        let t = trigger("interval", json!({"seconds": seconds}), Tz::UTC);
        let from = at(from_micros);
        let until = DateTime::from_timestamp_micros(from_micros + steps * length + extra % length)
            .unwrap();
        same_as_the_walk(&t, from, until);
    }
}

#[test]
fn a_cron_bisects_to_where_its_walk_goes() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let new_york: Tz = "America/New_York".parse().unwrap();
    // Spans across both of 2031's clock changes in Berlin (30 March, 26 October).
    let spring = Utc.with_ymd_and_hms(2031, 3, 30, 0, 30, 0).unwrap();
    let autumn = Utc.with_ymd_and_hms(2031, 10, 26, 0, 0, 0).unwrap();
    let cases: Vec<(Value, Tz, DateTime<Utc>, TimeDelta)> = vec![
        (json!({"second": "*"}), Tz::UTC, t0(), TimeDelta::hours(5)),
        (json!({"second": "*/7"}), Tz::UTC, t0(), TimeDelta::hours(9)),
        (
            json!({"minute": "*/5"}),
            Tz::UTC,
            t0(),
            TimeDelta::days(100),
        ),
        (
            json!({"day_of_week": "mon-fri", "hour": "9-17", "minute": "*/15"}),
            new_york,
            t0(),
            TimeDelta::days(300),
        ),
        (
            json!({"day": "last", "hour": 23}),
            Tz::UTC,
            t0(),
            TimeDelta::days(3000),
        ),
        (json!({"second": "*"}), berlin, spring, TimeDelta::hours(3)),
        (
            json!({"minute": "*", "hour": "1-3"}),
            berlin,
            spring,
            TimeDelta::days(2),
        ),
        (
            json!({"second": "*/3"}),
            berlin,
            autumn + TimeDelta::hours(2),
            TimeDelta::hours(3),
        ),
        (
            json!({"minute": "*", "hour": "2"}),
            berlin,
            autumn + TimeDelta::hours(3),
            TimeDelta::days(2),
        ),
        // Sparse: 29 February on a Monday, every few decades.
        (
            json!({"month": 2, "day": 29, "day_of_week": "mon", "hour": 12}),
            Tz::UTC,
            Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0).unwrap(),
            TimeDelta::days(365 * 150),
        ),
        (
            json!({"second": "*", "start_date": "2031-03-29T21:00:00+00:00",
                   "end_date": "2031-03-29T21:30:00.5+00:00"}),
            Tz::UTC,
            t0(),
            TimeDelta::hours(2),
        ),
    ];
    for (args, tz, until, back) in cases {
        let t = trigger("cron", args.clone(), tz);
        let first = t
            .next_fire_time(None, until - back)
            .unwrap_or_else(|| panic!("{args}: no fire time"));
        for until in [
            until,
            until + TimeDelta::microseconds(1),
            until - TimeDelta::microseconds(1),
        ] {
            same_as_the_walk(&t, first, until);
        }
        // An off-pattern next_run_time (given in the body) is a fire time all the same.
        same_as_the_walk(&t, first - TimeDelta::microseconds(250_001), until);
    }
}

#[test]
fn an_impossible_cron_has_nothing_to_catch_up() {
    let t = trigger("cron", json!({"month": 2, "day": 30}), Tz::UTC);
    let from = (t0() - TimeDelta::days(3000)).fixed_offset();
    assert_eq!(
        t.catch_up(from, t0()),
        CatchUp {
            latest: from,
            previous: None,
            before_latest: Some(FireCount::Exact(0)),
        },
        "its next_run_time is its only fire time"
    );
}

fn job(body: Value) -> Job {
    JobSpec::parse(&body, &JobDefaults::default(), Tz::UTC, t0())
        .unwrap()
        .job
}

#[test]
fn a_job_not_far_behind_has_every_due_fire_time() {
    let mut j =
        job(json!({"id": "j", "func": "task:success", "trigger": "interval", "seconds": 10}));
    let from = (t0() - TimeDelta::seconds(10 * (MAX_DUE_RUN_TIMES as i64 - 1))).fixed_offset();
    j.next_run_time = Some(from);
    let due = j.due_run_times(t0());
    assert_eq!(due.times, walk(&j.trigger, from, t0()));
    assert_eq!(due.times.len(), MAX_DUE_RUN_TIMES);
    assert_eq!(due.skipped, None);
}

#[test]
fn a_microsecond_interval_a_day_behind_is_one_jump() {
    let mut j = job(
        json!({"id": "usday", "func": "task:success", "trigger": "interval",
                           "seconds": 0.000001}),
    );
    let from = (t0() - TimeDelta::days(1)).fixed_offset();
    j.next_run_time = Some(from);
    let now = t0() + TimeDelta::microseconds(5);
    let due = j.due_run_times(now);
    assert_eq!(
        due.times,
        [now.fixed_offset()],
        "the latest due fire time only"
    );
    let skipped = due.skipped.unwrap();
    assert_eq!(skipped.first, from);
    assert_eq!(
        skipped.last,
        (now - TimeDelta::microseconds(1)).fixed_offset()
    );
    assert_eq!(
        skipped.count,
        FireCount::Exact(86_400_000_000 + 5),
        "one per microsecond, the handled one left out"
    );
    assert_eq!(
        j.trigger.next_fire_time(due.times.last().copied(), now),
        Some((now + TimeDelta::microseconds(1)).fixed_offset()),
        "and the next one is after now"
    );
}

#[test]
fn a_cron_job_a_thousand_days_behind_is_bounded() {
    let mut j = job(json!({"id": "c", "func": "task:success", "trigger": "cron", "second": "*"}));
    let from = (t0() - TimeDelta::days(1000)).fixed_offset();
    j.next_run_time = Some(from);
    let now = t0() + TimeDelta::milliseconds(400);
    let due = j.due_run_times(now);
    assert_eq!(due.times, [t0().fixed_offset()]);
    let skipped = due.skipped.unwrap();
    assert_eq!(
        (skipped.first, skipped.last),
        (from, (t0() - TimeDelta::seconds(1)).fixed_offset())
    );
    assert_eq!(
        skipped.count,
        FireCount::AtLeast(MAX_DUE_RUN_TIMES as u64 + 1),
        "a cron span is not counted without visiting it"
    );
}

#[test]
fn one_past_the_bound_is_far_behind() {
    let mut j =
        job(json!({"id": "j", "func": "task:success", "trigger": "interval", "seconds": 1}));
    let from = (t0() - TimeDelta::seconds(MAX_DUE_RUN_TIMES as i64)).fixed_offset();
    j.next_run_time = Some(from);
    let due = j.due_run_times(t0());
    assert_eq!(due.times, [t0().fixed_offset()]);
    let skipped = due.skipped.unwrap();
    assert_eq!(skipped.count, FireCount::Exact(MAX_DUE_RUN_TIMES as u64));
    assert_eq!(skipped.last, (t0() - TimeDelta::seconds(1)).fixed_offset());
}
