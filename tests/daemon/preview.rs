//! The schedule preview over a bound port (issue 16, part 1): `POST P/preview` and
//! `GET P/jobs/<id>/preview` answer the fire times the scheduler itself uses — the shared
//! conformance fixtures' (APScheduler 3.11.3's, with tickd's DST fix) and the `next_run_time`
//! an add stores — refuse what `POST P/jobs` refuses with the same status and text, bound
//! `count`, preview a paused job, and mark fire times a DST change moves or repeats.

use crate::common;

use std::sync::Arc;

use chrono::{DateTime, LocalResult, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use common::{TestApp, project_dir};
use reqwest::header::ORIGIN;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tickd::clock::ManualClock;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A daemon on a manual clock standing at `now`.
async fn app_at(now: &str) -> (TestApp, Arc<ManualClock>, tempfile::TempDir) {
    let clock = Arc::new(ManualClock::new(utc(now)));
    let dir = project_dir();
    let app = TestApp::spawn_in(dir.path(), "", Some(clock.clone())).await;
    (app, clock, dir)
}

/// The fire times of a preview answer, as text.
fn times(preview: &Value) -> Vec<String> {
    preview["fire_times"]
        .as_array()
        .unwrap_or_else(|| panic!("no fire_times in {preview}"))
        .iter()
        .map(|t| t["time"].as_str().unwrap().to_owned())
        .collect()
}

/// The DST mark a fire time should carry, computed here from chrono-tz alone: `moved` when
/// its wall time does not exist in the zone and its offset is not the zone's at that
/// instant; `repeated` when the zone's wall time at that instant occurs twice.
fn expected_mark(time: &str, tz: Tz) -> Value {
    let time = DateTime::parse_from_rfc3339(time).unwrap();
    let real = time.with_timezone(&tz);
    let real_offset = real.offset().fix();
    if tz.from_local_datetime(&time.naive_local()) == LocalResult::None
        && *time.offset() != real_offset
    {
        return json!("moved");
    }
    match tz.from_local_datetime(&real.naive_local()) {
        LocalResult::Ambiguous(..) => json!("repeated"),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn previews_are_the_fixtures_fire_times_and_the_adds_own() {
    let fixtures = common::setup::public_cases();
    // Every anchored case starts after this, so `now` does not decide its first fire time
    // (the fixtures computed it with `now = start_date`: the same answer for a start date
    // at or after now).
    let (app, _clock, _dir) = app_at("2030-01-01T00:00:00Z").await;
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut marks = [0, 0];
    for case in fixtures["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let fields = case["fields"].as_object().unwrap();
        let mut body = json!({"id": id, "func": "task:success", "args": ["test.py"],
                              "trigger": case["trigger"]});
        for (k, v) in fields {
            body[k] = v.clone();
        }
        let (preview_status, preview) = app.post("/preview?count=5", body.clone()).await;
        let (add_status, added) = app.post("/jobs", body).await;
        if add_status != StatusCode::OK {
            // Refused: the preview refuses it with the same status and text.
            if (preview_status, &preview) != (add_status, &added) {
                failures.push(format!(
                    "{id}: add {add_status} {added}, preview {preview_status} {preview}"
                ));
            }
            continue;
        }
        if preview_status != StatusCode::OK {
            failures.push(format!("{id}: preview {preview_status} {preview}"));
            continue;
        }
        let got = times(&preview);
        // The scheduler's own first fire time, and the stored job's preview.
        if added["next_run_time"] != got.first().map_or(Value::Null, |t| json!(t)) {
            failures.push(format!(
                "{id}: add stored {}, preview starts {got:?}",
                added["next_run_time"]
            ));
        }
        let (_, mut stored) = app.get(&format!("/jobs/{id}/preview?count=5")).await;
        if got.is_empty() {
            // A trigger that never fires is stored with `next_run_time` null, as APScheduler
            // stores it: paused.
            if stored["paused"] != true {
                failures.push(format!("{id}: never fires, stored {stored}"));
            }
            stored["paused"] = json!(false);
        }
        if stored != preview {
            failures.push(format!(
                "{id}: GET preview {stored} != POST preview {preview}"
            ));
        }
        let anchored = fields.contains_key("start_date") || fields.contains_key("run_date");
        if !anchored {
            continue;
        }
        let want: Vec<&str> = case["expected_fixed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if got != want {
            failures.push(format!("{id}: want {want:?}\n      got  {got:?}"));
        }
        let tz: Tz = fields
            .get("timezone")
            .and_then(Value::as_str)
            .unwrap_or("UTC")
            .parse()
            .unwrap();
        for fire in preview["fire_times"].as_array().unwrap() {
            let time = fire["time"].as_str().unwrap();
            let want = expected_mark(time, tz);
            if fire["dst"] != want {
                failures.push(format!("{id}: {time} marked {}, want {want}", fire["dst"]));
            }
            if want == "moved" {
                marks[0] += 1;
            } else if want == "repeated" {
                marks[1] += 1;
            }
            let utc_text = fire["utc"].as_str().unwrap();
            let same_instant = DateTime::parse_from_rfc3339(utc_text).unwrap()
                == DateTime::parse_from_rfc3339(time).unwrap();
            if !same_instant || !utc_text.ends_with("+00:00") {
                failures.push(format!("{id}: utc {utc_text} for {time}"));
            }
        }
        compared += 1;
    }
    app.stop().await;
    eprintln!(
        "{compared} cases compared; DST marks: {} moved, {} repeated",
        marks[0], marks[1]
    );
    assert!(compared > 200, "only {compared} cases compared");
    assert!(
        marks[0] > 0 && marks[1] > 0,
        "the fixtures' DST cases: {marks:?}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_preview_refuses_what_an_add_refuses_with_the_same_text() {
    let (app, _clock, _dir) = app_at("2030-01-01T00:00:00Z").await;
    let good = json!({"id": "taken", "func": "task:success", "args": ["test.py"],
                      "trigger": "cron", "hour": 9});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let bad_bodies = [
        json!([1, 2]),
        json!("text"),
        without("id"),
        without("func"),
        with("id", json!(5)),
        with("id", json!("")),
        with("trigger", json!("weekly")),
        with("hour", json!("25")),
        with("minute", json!("*/0")),
        with("day_of_week", json!("funday")),
        with("timezone", json!("Mars/Olympus")),
        with("start_date", json!("30 Mar 2035 14:00")),
        with("seconds", json!(5)),
        with("args", json!(["missing.py"])),
        with("args", json!(["../outside.py"])),
        with("func", json!("task:nothing")),
        with("next_run_time", json!("tomorrow")),
        with("max_instances", json!(0)),
        with("misfire_grace_time", json!(-1)),
        json!({"id": "i", "func": "task:success", "args": ["test.py"], "trigger": "interval",
               "seconds": -5}),
        json!({"id": "d", "func": "task:success", "args": ["test.py"], "trigger": "date",
               "run_date": "2035-13-01"}),
    ];
    for body in bad_bodies {
        let add = app.post("/jobs", body.clone()).await;
        let preview = app.post("/preview", body.clone()).await;
        assert_eq!(add.0, StatusCode::BAD_REQUEST, "{body}: {}", add.1);
        assert_eq!(preview, add, "{body}");
    }
    // Not JSON at all.
    let add = app.call_raw(Method::POST, "/jobs", "{nope").await;
    let preview = app.call_raw(Method::POST, "/preview", "{nope").await;
    assert_eq!((preview.0, preview.2), (add.0, add.2));
    // A taken id is no fault for a preview, which adds nothing.
    assert_eq!(app.post("/jobs", good.clone()).await.0, StatusCode::OK);
    let (status, preview) = app.post("/preview", good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(times(&preview)[0], "2030-01-01T09:00:00+00:00");
    assert_eq!(app.post("/jobs", good).await.0, StatusCode::CONFLICT);
    // Nothing was created by any preview.
    let (_, jobs) = app.get("/jobs").await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    app.stop().await;
}

#[tokio::test]
async fn count_is_bounded_and_defaults_to_ten() {
    // Before the first fire time, so the stored job is not due yet.
    let (app, _clock, _dir) = app_at("2029-12-31T23:59:30Z").await;
    let body = json!({"id": "m", "func": "task:success", "args": ["test.py"],
                      "trigger": "cron", "minute": "*/5"});
    assert_eq!(app.post("/jobs", body.clone()).await.0, StatusCode::OK);
    for path in ["/preview", "/jobs/m/preview"] {
        let ask = |query: &str| {
            let url = format!("{path}{query}");
            let body = body.clone();
            let app = &app;
            async move {
                if path == "/preview" {
                    app.post(&url, body).await
                } else {
                    app.get(&url).await
                }
            }
        };
        let (status, preview) = ask("").await;
        assert_eq!(status, StatusCode::OK, "{path}: {preview}");
        assert_eq!(times(&preview).len(), 10, "{path}");
        assert_eq!(
            times(&preview)[..2],
            ["2030-01-01T00:00:00+00:00", "2030-01-01T00:05:00+00:00"]
        );
        let (_, most) = ask("?count=100").await;
        assert_eq!(times(&most).len(), 100);
        assert_eq!(times(&most)[99], "2030-01-01T08:15:00+00:00");
        assert_eq!(times(&ask("?count=1").await.1).len(), 1);
        for bad in ["0", "101", "-1", "ten", "", "1.5"] {
            let (status, answer) = ask(&format!("?count={bad}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} count={bad}");
            assert_eq!(
                answer["error_message"],
                format!("count must be a whole number from 1 to 100, not {bad:?}")
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_paused_job_previews_the_times_it_would_have_from_now() {
    let (app, clock, _dir) = app_at("2030-01-01T00:00:00Z").await;
    let body = json!({"id": "p", "func": "task:success", "args": ["test.py"],
                      "trigger": "interval", "hours": 6, "start_date": "2030-01-01 03:00:00",
                      "jitter": 30});
    assert_eq!(app.post("/jobs", body.clone()).await.0, StatusCode::OK);
    assert_eq!(app.post("/jobs/p/pause", json!({})).await.0, StatusCode::OK);
    clock.set(utc("2030-01-02T10:00:00Z"));
    let (status, preview) = app.get("/jobs/p/preview?count=3").await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["paused"], true);
    assert_eq!(preview["jitter"], 30.0);
    assert_eq!(
        times(&preview),
        [
            "2030-01-02T15:00:00+00:00",
            "2030-01-02T21:00:00+00:00",
            "2030-01-03T03:00:00+00:00"
        ]
    );
    assert_eq!(
        preview["description"],
        "every 6 hours from 2030-01-01 03:00:00+00:00"
    );
    // A body created paused previews the same way, and says so.
    let mut paused_body = body;
    paused_body["next_run_time"] = Value::Null;
    let (_, from_body) = app.post("/preview?count=3", paused_body).await;
    assert_eq!(from_body["paused"], true);
    assert_eq!(times(&from_body), times(&preview));
    // The job itself is still paused.
    assert_eq!(app.get("/jobs/p").await.1["next_run_time"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn dst_moved_and_repeated_times_are_marked() {
    let (app, clock, _dir) = app_at("2035-03-20T00:00:00Z").await;
    for (zone, spring, fall, gap_time, repeated_time) in [
        (
            "Europe/Berlin",
            "2035-03-20T00:00:00Z",
            "2035-10-24T00:00:00Z",
            "2035-03-25T02:30:00+01:00",
            "2035-10-28T02:30:00+02:00",
        ),
        (
            "America/New_York",
            "2035-03-08T00:00:00Z",
            "2035-11-01T00:00:00Z",
            "2035-03-11T02:30:00-05:00",
            "2035-11-04T01:30:00-04:00",
        ),
    ] {
        let hour = if zone == "Europe/Berlin" { 2 } else { 1 };
        let body = |hour: u32| {
            json!({"id": "dst", "func": "task:success", "args": ["test.py"], "trigger": "cron",
                   "hour": hour, "minute": 30, "timezone": zone})
        };
        // Spring forward: 02:30 does not exist that night; it is kept with the old offset.
        clock.set(utc(spring));
        let (status, preview) = app.post("/preview?count=7", body(2)).await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        let fires = preview["fire_times"].as_array().unwrap();
        let moved: Vec<&Value> = fires.iter().filter(|f| f["dst"] == "moved").collect();
        assert_eq!(moved.len(), 1, "{zone}: {preview}");
        assert_eq!(moved[0]["time"], gap_time);
        assert_eq!(
            preview["description"],
            format!("at 02:30, {zone}"),
            "{preview}"
        );
        // Fall back: the wall time occurs twice, and fires on both passes (APScheduler 3.11).
        clock.set(utc(fall));
        let (_, preview) = app.post("/preview?count=7", body(hour)).await;
        let fires = preview["fire_times"].as_array().unwrap();
        let repeated: Vec<&Value> = fires.iter().filter(|f| f["dst"] == "repeated").collect();
        assert_eq!(repeated.len(), 2, "{zone}: {preview}");
        let first = DateTime::parse_from_rfc3339(repeated_time).unwrap();
        assert_eq!(repeated[0]["time"], repeated_time);
        let second = DateTime::parse_from_rfc3339(repeated[1]["time"].as_str().unwrap()).unwrap();
        assert_eq!(
            second.naive_local(),
            first.naive_local(),
            "the same wall time"
        );
        assert_eq!(second - first, chrono::TimeDelta::hours(1), "an hour later");
        let others = fires.iter().filter(|f| f["dst"].is_null()).count();
        assert_eq!(others, 5, "{zone}: {preview}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_job_is_404_and_another_sites_page_may_not_post_a_preview() {
    let (app, _clock, _dir) = app_at("2030-01-01T00:00:00Z").await;
    let (status, answer) = app.get("/jobs/nobody/preview").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer, common::err("Job nobody not found"));
    let body = json!({"id": "x", "func": "task:success", "args": ["test.py"],
                      "trigger": "cron", "hour": 9});
    let response = app
        .client
        .post(app.url("/preview"))
        .header(ORIGIN, "http://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let ours = format!("http://{}", app.addr);
    let response = app
        .client
        .post(app.url("/preview"))
        .header(ORIGIN, ours)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

/// The answer for a fixed-zone cron, whole (field names and shapes a client reads).
#[tokio::test]
async fn the_answer_names_the_trigger_its_words_zone_and_jitter() {
    let (app, _clock, _dir) = app_at("2030-01-01T00:00:00Z").await;
    let body = json!({"id": "w", "func": "task:success", "args": ["test.py"], "trigger": "cron",
                      "hour": 9, "minute": 30, "day_of_week": "mon-fri",
                      "timezone": "Asia/Shanghai"});
    let (status, preview) = app.post("/preview?count=2", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        preview,
        json!({
            "trigger": "cron",
            "description": "at 09:30, Monday to Friday, Asia/Shanghai",
            "timezone": "Asia/Shanghai",
            "jitter": null,
            "paused": false,
            "pending": false,
            "overdue_since": null,
            "fire_times": [
                {"time": "2030-01-01T09:30:00+08:00", "utc": "2030-01-01T01:30:00+00:00", "dst": null},
                {"time": "2030-01-02T09:30:00+08:00", "utc": "2030-01-02T01:30:00+00:00", "dst": null},
            ],
        })
    );
    app.stop().await;
}
