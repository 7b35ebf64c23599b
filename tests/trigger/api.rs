//! The trigger module's public API as the rest of tickd uses it: the job JSON's trigger fields
//! (Flask-APScheduler §1.3.6 and §2), the add-job error texts, interval and date behaviour, and
//! the persisted state.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use tickd::trigger::{
    Trigger, TriggerError, in_zone, isoformat, parse_next_run_time, parse_timezone,
};

fn now() -> DateTime<Utc> {
    "2026-11-25T07:26:32.369556Z".parse().unwrap()
}

fn args(spec: &Value) -> Map<String, Value> {
    spec.as_object().unwrap().clone()
}

fn try_build(kind: &str, spec: Value) -> Result<Trigger, TriggerError> {
    Trigger::from_args(kind, &args(&spec), Tz::UTC, now())
}

fn build(kind: &str, spec: Value) -> Trigger {
    try_build(kind, spec).unwrap()
}

fn fields(kind: &str, spec: Value) -> Value {
    Value::Object(build(kind, spec).fields())
}

fn error(kind: &str, spec: Value) -> String {
    try_build(kind, spec).unwrap_err().to_string()
}

fn first(trigger: &Trigger) -> Option<String> {
    trigger.next_fire_time(None, now()).map(|t| isoformat(&t))
}

#[test]
fn interval_fields_are_re_expressed_from_the_total() {
    let start = "2026-11-25T07:36:32.369556+00:00";
    let minimal = build("interval", json!({"minutes": 10}));
    assert_eq!(
        Value::Object(minimal.fields()),
        json!({"start_date": start, "minutes": 10})
    );
    assert_eq!(first(&minimal).unwrap(), start);
    assert_eq!(
        fields("interval", json!({"seconds": 90}))["minutes"],
        json!(1)
    );
    assert_eq!(
        fields("interval", json!({"seconds": 90}))["seconds"],
        json!(30)
    );
    let all = fields(
        "interval",
        json!({"weeks": 1, "days": 2, "hours": 3, "minutes": 4, "seconds": 5,
               "start_date": "2030-01-01 10:00:00", "end_date": "2031-01-01T00:00:00+02:00"}),
    );
    assert_eq!(
        all,
        json!({"start_date": "2030-01-01T10:00:00+00:00", "end_date": "2031-01-01T00:00:00+02:00",
               "weeks": 1, "days": 2, "hours": 3, "minutes": 4, "seconds": 5})
    );
    let floats = fields(
        "interval",
        json!({"seconds": 1.5, "days": 8, "start_date": "2030-01-01"}),
    );
    assert_eq!(
        floats,
        json!({"start_date": "2030-01-01T00:00:00+00:00", "weeks": 1, "days": 1, "seconds": 1})
    );
    let zero = fields("interval", json!({"start_date": "2030-01-01"}));
    assert_eq!(zero["seconds"], json!(1));
    let mixed = fields(
        "interval",
        json!({"days": 1, "hours": -1, "start_date": "2030-01-01"}),
    );
    assert_eq!(
        mixed,
        json!({"start_date": "2030-01-01T00:00:00+00:00", "hours": 23})
    );
    // Below a second nothing is shown, as in the reference (microseconds are dropped).
    let tiny = fields(
        "interval",
        json!({"seconds": 1e-6, "start_date": "2030-01-01"}),
    );
    assert_eq!(tiny, json!({"start_date": "2030-01-01T00:00:00+00:00"}));
}

#[test]
fn negative_intervals_are_refused() {
    let message = error("interval", json!({"minutes": -5}));
    assert_eq!(
        message,
        "The interval must not be negative (it totals -300.0 seconds)"
    );
    assert!(try_build("interval", json!({"days": 1, "hours": -25})).is_err());
}

#[test]
fn interval_runs_on_absolute_time() {
    let berlin = parse_timezone("Europe/Berlin").unwrap();
    let start = parse_next_run_time("2024-03-30 12:00:00", berlin).unwrap();
    let daily = Trigger::from_args(
        "interval",
        &args(&json!({"days": 1, "start_date": "2024-03-30 12:00:00"})),
        berlin,
        now(),
    )
    .unwrap();
    let second = daily.next_fire_time(Some(start), start.to_utc()).unwrap();
    assert_eq!(isoformat(&second), "2024-03-31T13:00:00+02:00");
    let hourly = Trigger::from_args(
        "interval",
        &args(&json!({"hours": 1, "start_date": "2024-10-27 01:30:00"})),
        berlin,
        now(),
    )
    .unwrap();
    let mut times = vec![];
    let mut previous = None;
    for _ in 0..4 {
        let at = previous.map_or(
            parse_next_run_time("2024-10-27 01:30:00", berlin).unwrap(),
            |p: DateTime<_>| p,
        );
        let next = hourly.next_fire_time(previous, at.to_utc()).unwrap();
        times.push(isoformat(&next));
        previous = Some(next);
    }
    assert_eq!(
        times,
        [
            "2024-10-27T01:30:00+02:00",
            "2024-10-27T02:30:00+02:00",
            "2024-10-27T02:30:00+01:00",
            "2024-10-27T03:30:00+01:00"
        ]
    );
    // The grid stays anchored at start_date (resume after a pause).
    let grid = build(
        "interval",
        json!({"minutes": 10, "start_date": "2020-01-01 00:00:03"}),
    );
    let at = "2026-11-25T07:30:40Z".parse().unwrap();
    assert_eq!(
        isoformat(&grid.next_fire_time(None, at).unwrap()),
        "2026-11-25T07:40:03+00:00"
    );
}

#[test]
fn date_fields_keep_a_given_offset() {
    let given = build("date", json!({"run_date": "2030-01-02T03:04:05+05:30"}));
    assert_eq!(
        Value::Object(given.fields()),
        json!({"run_date": "2030-01-02T03:04:05+05:30"})
    );
    assert_eq!(first(&given).unwrap(), "2030-01-02T03:04:05+05:30");
    assert_eq!(
        fields("date", json!({"run_date": "2030-01-02 03:04:05"}))["run_date"],
        "2030-01-02T03:04:05+00:00"
    );
    assert_eq!(
        fields("date", json!({"run_date": "2030-01-02"}))["run_date"],
        "2030-01-02T00:00:00+00:00"
    );
    let kolkata = fields(
        "date",
        json!({"run_date": "2030-07-01 12:00:00", "timezone": "Asia/Kolkata"}),
    );
    assert_eq!(kolkata["run_date"], "2030-07-01T12:00:00+05:30");
    let now_job = build("date", json!({}));
    assert_eq!(first(&now_job).unwrap(), "2026-11-25T07:26:32.369556+00:00");
    assert_eq!(now_job.kind(), "date");
}

#[test]
fn cron_fields_show_what_was_given_normalised() {
    let cron1 = build(
        "cron",
        json!({"minute": "*/5", "hour": "8-18", "day_of_week": "mon-fri"}),
    );
    assert_eq!(
        Value::Object(cron1.fields()),
        json!({"day_of_week": "mon-fri", "hour": "8-18", "minute": "*/5"})
    );
    assert_eq!(first(&cron1).unwrap(), "2026-11-25T08:00:00+00:00");
    let cron2 = build(
        "cron",
        json!({"second": 30, "start_date": "2030-06-01", "end_date": "2030-12-31 23:59:59", "timezone": "Europe/Berlin"}),
    );
    assert_eq!(
        Value::Object(cron2.fields()),
        json!({"start_date": "2030-06-01T00:00:00+02:00", "end_date": "2030-12-31T23:59:59+01:00", "second": "30"})
    );
    assert_eq!(first(&cron2).unwrap(), "2030-06-01T00:00:30+02:00");
    let cron3 = build(
        "cron",
        json!({"month": "jan,jul", "day": "last", "week": "*", "year": 2031}),
    );
    assert_eq!(
        Value::Object(cron3.fields()),
        json!({"year": "2031", "month": "jan,jul", "day": "last", "week": "*"})
    );
    assert_eq!(first(&cron3).unwrap(), "2031-01-31T00:00:00+00:00");
    // Fields given as JSON null count as not given.
    assert_eq!(
        Value::Object(build("cron", json!({"hour": null, "minute": 5})).fields()),
        json!({"minute": "5"})
    );
    // A trigger with no fire time is valid; it just never fires.
    assert_eq!(
        first(&build(
            "cron",
            json!({"day": "last fri", "day_of_week": "MON"})
        )),
        None
    );
    assert_eq!(
        first(&build("cron", json!({"end_date": "2001-01-01"}))),
        None
    );
}

/// Flask-APScheduler §1.3.6's error table, for the trigger's part.
#[test]
fn add_job_errors_have_the_reference_texts() {
    assert_eq!(
        error("weekly", json!({})),
        "No trigger by the name \"weekly\" was found"
    );
    assert_eq!(
        error("interval", json!({"foo": 1})),
        "IntervalTrigger.__init__() got an unexpected keyword argument 'foo'"
    );
    assert_eq!(
        error("date", json!({"foo": 1})),
        "DateTrigger.__init__() got an unexpected keyword argument 'foo'"
    );
    assert_eq!(
        error("cron", json!({"day_of_month": 5})),
        "CronTrigger.__init__() got an unexpected keyword argument 'day_of_month'"
    );
    assert_eq!(
        error("interval", json!({"hours": "1"})),
        "unsupported type for timedelta hours component: str"
    );
    assert_eq!(
        error("interval", json!({"hours": null})),
        "unsupported type for timedelta hours component: NoneType"
    );
    assert_eq!(
        error("interval", json!({"days": 1_000_000_000})),
        "days=1000000000; must have magnitude <= 999999999"
    );
    assert_eq!(
        error("cron", json!({"minute": "61"})),
        "Error validating expression '61': the last value (61) is higher than the maximum value (59)"
    );
    assert_eq!(
        error("cron", json!({"day_of_week": "funday"})),
        "Invalid weekday name \"funday\""
    );
    assert_eq!(
        error("cron", json!({"timezone": "Mars/Olympus"})),
        "'No time zone found with key Mars/Olympus'"
    );
    assert_eq!(
        error("date", json!({"timezone": 5})),
        "Expected tzinfo, got int instead"
    );
    assert!(
        error("date", json!({"run_date": "not a date"}))
            .starts_with("Invalid date string 'not a date': expected")
    );
    assert_eq!(
        error("date", json!({"run_date": "2030-13-45"})),
        "month must be in 1..12: 2030-13-45"
    );
    assert_eq!(
        error("interval", json!({"start_date": 1_700_000_000})),
        "Unsupported type for start_date: int"
    );
    assert_eq!(
        error("date", json!({"run_date": 1.5})),
        "Unsupported type for run_date: float"
    );
    assert_eq!(
        error("cron", json!({"jitter": "5"})),
        "unsupported operand type(s) for -: 'str' and 'int'"
    );
    // A bad date string is reported before an unknown trigger or argument, as Flask parses first.
    assert!(
        error("weekly", json!({"start_date": "May 5 2030"})).starts_with("Invalid date string")
    );
}

#[test]
fn next_run_time_is_parsed_strictly() {
    let berlin = parse_timezone("Europe/Berlin").unwrap();
    let t = parse_next_run_time("2030-07-01 12:00:00", berlin).unwrap();
    assert_eq!(isoformat(&t), "2030-07-01T12:00:00+02:00");
    let t = parse_next_run_time("2030-07-01T12:00:00.5+05:30", berlin).unwrap();
    assert_eq!(isoformat(&t), "2030-07-01T12:00:00.500000+05:30");
    assert_eq!(
        parse_next_run_time("May 5 2030", berlin).unwrap_err().0,
        "Invalid date string"
    );
    assert_eq!(
        in_zone(t.to_utc(), berlin).to_rfc3339(),
        "2030-07-01T08:30:00.500+02:00"
    );
}

#[test]
fn state_round_trips_to_an_equal_trigger() {
    let specs = [
        ("date", json!({"run_date": "2030-01-02T03:04:05+05:30"})),
        (
            "date",
            json!({"run_date": "2038-03-14T02:30:00", "timezone": "America/New_York"}),
        ),
        (
            "interval",
            json!({"hours": 2.25, "start_date": "2038-02-01 15:00:00.123456", "timezone": "America/New_York", "jitter": 3}),
        ),
        (
            "interval",
            json!({"days": 3_652_059, "start_date": "2030-01-01", "end_date": "2040-01-01T00:00:00Z"}),
        ),
        ("interval", json!({"minutes": 10})),
        (
            "cron",
            json!({"minute": "0-0/5", "day_of_week": "MON-fri/2", "hour": 9}),
        ),
        (
            "cron",
            json!({"day": "last fri", "start_date": "2030-06-01", "end_date": "2031-06-01T00:00:00-0800", "timezone": "Europe/Berlin"}),
        ),
        ("cron", json!({})),
    ];
    for (kind, spec) in specs {
        let trigger = build(kind, spec.clone());
        let state = trigger.to_state();
        let text = serde_json::to_string(&state).unwrap();
        let back = Trigger::from_state(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, trigger, "{kind} {spec}");
        assert_eq!(back.fields(), trigger.fields());
        if !spec.as_object().unwrap().contains_key("jitter") {
            assert_eq!(
                back.next_fire_time(None, now()),
                trigger.next_fire_time(None, now())
            );
        }
    }
    assert!(Trigger::from_state(&json!({"version": 9})).is_err());
    assert!(
        Trigger::from_state(
            &json!({"version": 1, "trigger": "cron", "timezone": "UTC", "fields": {"hour": "25"}})
        )
        .is_err()
    );
}

#[test]
fn in_zone_uses_the_offset_in_force() {
    let ny = parse_timezone("America/New_York").unwrap();
    let winter: DateTime<Utc> = "2030-01-01T12:00:00Z".parse().unwrap();
    assert_eq!(isoformat(&in_zone(winter, ny)), "2030-01-01T07:00:00-05:00");
    assert_eq!(
        isoformat(&in_zone(winter + Duration::days(181), ny)),
        "2030-07-01T08:00:00-04:00"
    );
}

#[test]
fn default_start_date_past_year_9999_is_refused() {
    // Python: `datetime.now(tz) + timedelta(days=999999999)` raises OverflowError.
    assert_eq!(
        error("interval", json!({"days": 999_999_999})),
        "date value out of range"
    );
}

/// The scheduler shares triggers across tasks.
#[test]
fn triggers_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Trigger>();
    assert_send_sync::<TriggerError>();
    let trigger = build("cron", json!({"minute": "*/5"}));
    let copy = trigger.clone();
    let handle = std::thread::spawn(move || copy.next_fire_time(None, now()));
    assert_eq!(handle.join().unwrap(), trigger.next_fire_time(None, now()));
}
