//! Trigger engine speed (targets from the trigger work's brief): `next_fire_time` under 2 µs
//! for common cron specs and under 50 µs for sparse ones, parsing a cron spec under 5 µs, and
//! an impossible spec (`month=2, day=30`) answered `None` without crawling to year 9999.
//!
//! Run: `cargo bench --bench trigger -- --warm-up-time 1 --measurement-time 3`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use tickd::trigger::Trigger;

fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn cron(spec: Value, tz: Tz) -> Trigger {
    Trigger::from_args("cron", &args(spec), tz, now()).unwrap()
}

fn now() -> DateTime<Utc> {
    "2024-05-17T16:20:30.250Z".parse().unwrap()
}

fn next_fire_time(c: &mut Criterion) {
    let berlin = chrono_tz::Europe::Berlin;
    let cases = [
        (
            "common/minute_every_5_utc",
            json!({"minute": "*/5"}),
            Tz::UTC,
        ),
        (
            "common/minute_every_5_berlin",
            json!({"minute": "*/5"}),
            berlin,
        ),
        (
            "common/weekdays_9_to_17_utc",
            json!({"day_of_week": "mon-fri", "hour": "9-17"}),
            Tz::UTC,
        ),
        (
            "common/weekdays_9_to_17_berlin",
            json!({"day_of_week": "mon-fri", "hour": "9-17"}),
            berlin,
        ),
        ("sparse/feb_29", json!({"month": 2, "day": 29}), berlin),
        ("sparse/5th_sat", json!({"day": "5th sat"}), berlin),
        (
            "sparse/5th_sat_in_feb",
            json!({"month": "feb", "day": "5th sat"}),
            berlin,
        ),
        ("sparse/far_year", json!({"year": 2350, "month": 7}), berlin),
        (
            "sparse/week_53_fri",
            json!({"week": 53, "day_of_week": "fri"}),
            berlin,
        ),
        ("impossible/feb_30", json!({"month": 2, "day": 30}), berlin),
    ];
    let mut group = c.benchmark_group("next_fire_time");
    for (name, spec, tz) in cases {
        let trigger = cron(spec, tz);
        group.bench_function(name, |b| {
            b.iter(|| black_box(&trigger).next_fire_time(None, black_box(now())))
        });
    }
    // The same sparse specs on a fresh trigger each time: no year patterns learned yet.
    for (name, spec) in [
        (
            "cold/5th_sat_in_feb",
            json!({"month": "feb", "day": "5th sat"}),
        ),
        (
            "cold/week_53_fri",
            json!({"week": 53, "day_of_week": "fri"}),
        ),
        ("cold/impossible_feb_30", json!({"month": 2, "day": 30})),
    ] {
        let state = cron(spec, berlin).to_state();
        group.bench_function(name, |b| {
            b.iter_batched(
                || Trigger::from_state(&state).unwrap(),
                |trigger| trigger.next_fire_time(None, black_box(now())),
                BatchSize::SmallInput,
            )
        });
    }
    let interval = Trigger::from_args(
        "interval",
        &args(json!({"minutes": 15, "start_date": "2024-01-01 00:00:00"})),
        berlin,
        now(),
    )
    .unwrap();
    group.bench_function("interval/minutes_15", |b| {
        b.iter(|| black_box(&interval).next_fire_time(None, black_box(now())))
    });
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let spec = args(json!({
        "day_of_week": "mon-fri", "hour": "9-17/2", "minute": "*/5,58", "timezone": "Europe/Berlin"
    }));
    group.bench_function("cron_spec", |b| {
        b.iter(|| Trigger::from_args("cron", black_box(&spec), Tz::UTC, now()))
    });
    let spec = args(
        json!({"day": "last fri", "month": "jan-mar,jul", "start_date": "2030-01-02 03:04:05"}),
    );
    group.bench_function("cron_spec_with_start_date", |b| {
        b.iter(|| Trigger::from_args("cron", black_box(&spec), Tz::UTC, now()))
    });
    group.finish();
}

criterion_group!(benches, next_fire_time, parse);
criterion_main!(benches);
