//! Every duration and date the API takes is range-checked at the edge (issue 13, item 2): at
//! its limit it is accepted, beyond it refused with a 400 naming the field, and nothing a
//! request or a stored job holds can make tickd's time arithmetic overflow. A run whose job
//! holds an impossible value (a store edited by hand, or written by an older tickd) ends
//! with a status and a reason, and cancel answers.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use common::{TestApp, project_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tickd::clock::ManualClock;
use tickd::job::MAX_OPTION_SECONDS;
use tickd::trigger::{MAX_INTERVAL_DAYS, MAX_JITTER_SECONDS};

/// An hourly job with `extra` merged in.
fn job(id: &str, extra: Value) -> Value {
    let mut body = json!({"id": id, "func": "task:success", "args": ["test.py"],
                          "trigger": "interval", "hours": 1});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// An interval job of `units` (and whatever else `extra` holds), with no default unit.
fn interval(id: &str, extra: Value) -> Value {
    let mut body = job(id, extra);
    body.as_object_mut().unwrap().retain(|_, v| !v.is_null());
    body
}

/// Adds the job; asserts 200.
async fn accepted(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app.post("/jobs", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body} → {answer}");
    answer
}

/// Adds the job; asserts a 400 whose message contains `field`, and answers the message.
async fn refused(app: &TestApp, body: Value, field: &str) -> String {
    let (status, answer) = app.post("/jobs", body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
    let message = answer["error_message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(field),
        "{body}: {message:?} names no {field}"
    );
    message
}

#[tokio::test]
async fn timeout_is_taken_up_to_a_year() {
    let app = TestApp::spawn("").await;
    let year = MAX_OPTION_SECONDS as f64;
    assert_eq!(year, 31_536_000.0);
    let answer = accepted(&app, job("year", json!({"timeout": year}))).await;
    assert_eq!(answer["timeout"].as_f64(), Some(year));
    accepted(&app, job("tiny", json!({"timeout": 0.000001}))).await;
    for (id, timeout) in [
        ("over", json!(year + 0.5)),
        ("1e19", json!(1e19)),
        ("f64max", json!(f64::MAX)),
        ("u64max", json!(u64::MAX)),
    ] {
        let message = refused(&app, job(id, json!({ "timeout": timeout })), "timeout").await;
        assert_eq!(
            message,
            "timeout must be at most 31536000 seconds (a year); null means no timeout"
        );
    }
    for timeout in [json!(0), json!(-1), json!("5"), json!(true)] {
        let message = refused(&app, job("bad", json!({ "timeout": timeout })), "timeout").await;
        assert_eq!(message, "timeout must be a positive number of seconds");
    }
    // PATCH takes the same values.
    let (status, _) = app.patch("/jobs/year", json!({"timeout": 1e19})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, patched) = app.patch("/jobs/year", json!({"timeout": 60})).await;
    assert_eq!(
        (status, patched["timeout"].as_f64()),
        (StatusCode::OK, Some(60.0))
    );
    app.stop().await;
}

/// The attack: a 1e19 timeout panicked the run task. It is refused at add time, so
/// no run of it can start.
#[tokio::test]
async fn the_overflowing_timeout_is_refused_at_add() {
    let app = TestApp::spawn("").await;
    let (status, answer) = app
        .post("/jobs", job("huge", json!({"timeout": 1e19})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _, _) = app.call(Method::POST, "/jobs/huge/run", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was added");
    app.stop().await;
}

#[tokio::test]
async fn misfire_grace_time_is_taken_up_to_a_year() {
    let app = TestApp::spawn("").await;
    let answer = accepted(
        &app,
        job("year", json!({"misfire_grace_time": MAX_OPTION_SECONDS})),
    )
    .await;
    assert_eq!(answer["misfire_grace_time"], MAX_OPTION_SECONDS);
    accepted(&app, job("unlimited", json!({"misfire_grace_time": null}))).await;
    for grace in [
        json!(MAX_OPTION_SECONDS + 1),
        json!(i64::MAX as u64 / 1000 + 1),
        json!(u64::MAX),
    ] {
        let message = refused(
            &app,
            job("over", json!({ "misfire_grace_time": grace })),
            "misfire_grace_time",
        )
        .await;
        assert_eq!(
            message,
            "misfire_grace_time must be at most 31536000 seconds (a year); null means no limit"
        );
    }
    for grace in [json!(0), json!(-5), json!(1.5), json!(1e30), json!("10")] {
        let message = refused(
            &app,
            job("bad", json!({ "misfire_grace_time": grace })),
            "misfire_grace_time",
        )
        .await;
        assert_eq!(
            message, "misfire_grace_time must be either None or a positive integer",
            "the reference's text"
        );
    }
    let (status, answer) = app
        .patch("/jobs/year", json!({"misfire_grace_time": u64::MAX}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn jitter_is_taken_from_0_to_a_year() {
    let app = TestApp::spawn("").await;
    assert_eq!(MAX_JITTER_SECONDS, 31_536_000.0);
    for (id, jitter) in [
        ("zero", json!(0)),
        ("year", json!(31_536_000)),
        ("true", json!(true)),
    ] {
        accepted(&app, job(id, json!({ "jitter": jitter }))).await;
    }
    let cron = json!({"id": "cron", "func": "task:success", "args": ["test.py"],
                      "trigger": "cron", "minute": "*/5", "jitter": 31_536_000});
    accepted(&app, cron).await;
    for (jitter, shown) in [
        (json!(31_536_000.5), "31536000.5"),
        (json!(-1), "-1"),
        (json!(1e300), "1e+300"),
    ] {
        let message = refused(&app, job("over", json!({ "jitter": jitter })), "jitter").await;
        assert_eq!(
            message,
            format!("jitter must be a number of seconds from 0 to 31536000 (a year), not {shown}")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_interval_is_taken_up_to_the_span_of_the_years_1_to_9999() {
    let app = TestApp::spawn("").await;
    assert_eq!(MAX_INTERVAL_DAYS, 3_652_059);
    // The shortest APScheduler takes (a conformance case) and the longest that can fire
    // twice, from the earliest date.
    accepted(
        &app,
        interval("tiny", json!({"hours": null, "seconds": 0.000001})),
    )
    .await;
    let longest = accepted(
        &app,
        interval(
            "longest",
            json!({"hours": null, "days": MAX_INTERVAL_DAYS, "start_date": "9999-01-01"}),
        ),
    )
    .await;
    assert_eq!(longest["next_run_time"], "9999-01-01T00:00:00+00:00");
    assert_eq!(longest["days"], 3_652_059 % 7);
    assert_eq!(longest["weeks"], 3_652_059 / 7);
    for (units, total) in [
        (json!({"days": MAX_INTERVAL_DAYS + 1}), "315537984000.0"),
        (
            json!({"days": MAX_INTERVAL_DAYS, "seconds": 1}),
            "315537897601.0",
        ),
        (json!({"weeks": 521_723}), "315538070400.0"),
    ] {
        let mut extra = units.clone();
        extra["hours"] = Value::Null;
        extra["start_date"] = json!("0001-01-01");
        let message = refused(&app, interval("long", extra), "interval").await;
        assert_eq!(
            message,
            format!(
                "The interval (weeks, days, hours, minutes and seconds together) must not be \
                 longer than 3652059 days, the span of the years 1 to 9999 (it totals {total} \
                 seconds)"
            ),
            "{units}"
        );
    }
    // Beyond what Python's timedelta holds, and past year 9999 from now: the reference's
    // own texts.
    let message = refused(
        &app,
        interval("python", json!({"hours": null, "seconds": 1e300})),
        "must have magnitude <= 999999999",
    )
    .await;
    assert!(message.starts_with("days="), "{message}");
    refused(
        &app,
        interval("overflow", json!({"hours": null, "days": 999_999_999})),
        "date value out of range",
    )
    .await;
    app.stop().await;
}

/// Dates are Python's: years 1 to 9999, refused beyond with the reference's text (which
/// quotes the value). A job at the very ends of that range is stored, listed and scheduled
/// without any arithmetic overflowing.
#[tokio::test]
async fn dates_are_taken_within_the_years_1_to_9999() {
    let app = TestApp::spawn("").await;
    app.call(Method::POST, "/start", None).await;
    let edge = [
        json!({"id": "last-run", "trigger": "date", "run_date": "9999-12-31T23:59:59.999999-12:00"}),
        json!({"id": "first-run", "trigger": "date", "run_date": "0001-01-01T00:00:00+14:00"}),
        json!({"id": "last-cron", "trigger": "cron", "second": "*",
               "start_date": "9999-12-31 23:59:58", "end_date": "9999-12-31T23:59:59.999999-12:00"}),
        json!({"id": "first-interval", "trigger": "interval", "weeks": 52,
               "start_date": "0001-01-01T00:00:00+14:00", "end_date": "9999-12-31 23:59:59"}),
        json!({"id": "last-next", "trigger": "interval", "seconds": 1,
               "next_run_time": "9999-12-31T23:59:59.999999-12:00"}),
    ];
    for mut body in edge {
        body["func"] = json!("task:success");
        body["args"] = json!(["test.py"]);
        accepted(&app, body).await;
    }
    for (field, text, message) in [
        (
            "start_date",
            "0000-01-01",
            "year 0 is out of range: 0000-01-01",
        ),
        (
            "end_date",
            "10000-01-01",
            "Invalid date string '10000-01-01': expected",
        ),
        (
            "run_date",
            "9999-12-32",
            "day is out of range for month: 9999-12-32",
        ),
        (
            "next_run_time",
            "0000-12-31 00:00:00",
            "year 0 is out of range",
        ),
        (
            "next_run_time",
            "10000-01-01 00:00:00",
            "Invalid date string",
        ),
    ] {
        let mut body = json!({"id": "bad", "func": "task:success", "args": ["test.py"],
                              "trigger": if field == "run_date" { "date" } else { "cron" }});
        body[field] = json!(text);
        let (status, answer) = app.post("/jobs", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} {text}: {answer}");
        assert!(
            answer["error_message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{field} {text}: {answer}"
        );
    }
    // The scheduler ran over them: the date job of year 1 fired (late: missed) and is gone.
    app.scheduler.tick(Utc::now()).await.unwrap();
    let missed = ended_run(&app, "first-run").await;
    assert_eq!(missed["status"], "missed", "{missed}");
    let (status, jobs) = app.get("/jobs").await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    let mut ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["first-interval", "last-cron", "last-next", "last-run"]
    );
    app.stop().await;
}

/// A store edited by hand (or written before these limits): each value beyond what the API
/// takes, written straight into the job's state in the SQLite file.
async fn edit_state(dir: &Path, id: &str, edit: impl Fn(&mut Value)) {
    let url = format!("sqlite://{}", dir.join("tickd.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (text,): (String,) = sqlx::query_as("SELECT job_state FROM tickd_jobs WHERE id = ?")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut state: Value = serde_json::from_str(&text).unwrap();
    edit(&mut state);
    sqlx::query("UPDATE tickd_jobs SET job_state = ? WHERE id = ?")
        .bind(state.to_string())
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

const MANUAL_START: &str = "[scheduler]\nallowed_hosts = [\"no-such-host\"]\n[executor]\nshutdown_grace = 0.2\nkill_grace = 0.2\n";

/// The newest run of `job` once it is no longer `running` (bounded wait).
async fn ended_run(app: &TestApp, job: &str) -> Value {
    for _ in 0..400 {
        let (_, runs) = app.get(&format!("/jobs/{job}/runs")).await;
        if let Some(run) = runs.as_array().and_then(|runs| runs.first())
            && run["status"] != "running"
        {
            return run.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no ended run of {job}");
}

/// The 1e19 timeout, as an old database could hold it: the run-now answers, naming
/// the run it recorded `failed` with the reason; the scheduled run ends the same way; cancel
/// answers at once; the job can be mended with a PATCH. A huge grace time, a negative
/// jitter and a negative interval in the store overflow nothing either.
#[tokio::test]
async fn impossible_values_in_the_store_end_runs_with_a_reason() {
    let dir = project_dir();
    let t0 = Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = TestApp::spawn_in(dir.path(), MANUAL_START, Some(clock.clone())).await;
    for id in ["huge", "graceful", "backwards"] {
        accepted(
            &app,
            json!({"id": id, "func": "task:success", "args": ["test.py"], "trigger": "interval",
                   "seconds": 10, "start_date": "2031-05-01T12:00:10+00:00", "timeout": 5}),
        )
        .await;
    }
    app.stop().await;
    edit_state(dir.path(), "huge", |state| state["timeout"] = json!(1e19)).await;
    edit_state(dir.path(), "graceful", |state| {
        state["misfire_grace_time"] = json!(u64::MAX);
        state["trigger"]["jitter"] = json!(-1e300);
    })
    .await;
    edit_state(dir.path(), "backwards", |state| {
        state["trigger"]["interval"]["days"] = json!(-1);
    })
    .await;

    let app = TestApp::spawn_in(dir.path(), MANUAL_START, Some(clock.clone())).await;
    let (status, _, _) = app.call(Method::POST, "/start", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let reason = "the script could not start: its timeout (10000000000000000000 s) is out of \
                  range: more than 0 and at most 31536000 s (a year); change the job's timeout";

    let (status, _, answer) = app.call(Method::POST, "/jobs/huge/run", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let run_id = answer["run_id"].as_str().expect("the answer names the run");
    let (_, run) = app.get(&format!("/runs/{run_id}")).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["reason"], reason);
    let (status, _, answer) = app
        .call(Method::POST, &format!("/runs/{run_id}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        answer["error_message"],
        format!("Run {run_id} is not running (it is failed)")
    );

    // The scheduled runs: the timeout's fails with the reason, the grace's runs (its grace
    // saturates, its jitter is read as 0); the backwards job is unreadable and parked.
    clock.set(t0 + TimeDelta::seconds(10));
    app.scheduler.tick(clock.now_utc()).await.unwrap();
    let run = ended_run(&app, "huge").await;
    assert_eq!(run["cause"], "schedule");
    assert_eq!(
        (&run["status"], &run["reason"]),
        (&json!("failed"), &json!(reason))
    );
    let run = ended_run(&app, "graceful").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (status, _) = app.get("/jobs").await;
    assert_eq!(status, StatusCode::OK, "the unreadable job stopped nothing");

    // The job is mended through the API, and runs.
    let (status, _) = app.patch("/jobs/huge", json!({"timeout": 30})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, run) = app
        .call(Method::POST, "/jobs/huge/run?wait=true", None)
        .await;
    assert_eq!(
        (status, &run["status"]),
        (StatusCode::OK, &json!("succeeded"))
    );
    app.stop().await;
}
