//! The conformance fixtures (fire times computed by the real APScheduler 3.11.3) replayed over
//! HTTP: `POST P/jobs` with each case's fields must answer the first fire time as
//! `next_run_time`, or refuse the case with the reference's text and status 400.

use crate::common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use common::{TestApp, project_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tickd::clock::ManualClock;

/// Accepted date strings: CONTRACT §2.8's ISO family.
fn iso_family(text: &str) -> bool {
    let re = |t: &str| {
        let b = t.as_bytes();
        let digits =
            |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
        b.len() >= 10
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
    };
    re(text) && !text.contains('/') && !text.contains(',')
}

#[tokio::test]
async fn public_cases_over_http() {
    let fixtures = common::setup::public_cases();
    // Nothing may fire while the cases are added: the clock stands before every case.
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    ));
    let dir = project_dir();
    let app = TestApp::spawn_in(dir.path(), "", Some(clock)).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in fixtures["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let fields = case["fields"].as_object().unwrap();
        let anchored = fields.contains_key("start_date") || fields.contains_key("run_date");
        let mut body = json!({"id": id, "func": "task:success", "args": ["test.py"], "trigger": case["trigger"]});
        for (k, v) in fields {
            body[k] = v.clone();
        }
        let (status, answer) = app.post("/jobs", body).await;
        let dateutil_only = case["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "dateutil-only-format");
        let date_text = ["start_date", "end_date", "run_date"]
            .iter()
            .filter_map(|k| fields.get(*k).and_then(Value::as_str))
            .find(|text| !iso_family(text))
            .unwrap_or("");
        if case["expected_error"] == true {
            let expected = case["error"].as_str().unwrap();
            if status != StatusCode::BAD_REQUEST || answer["error_message"] != expected {
                failures.push(format!(
                    "{id}: expected 400 {expected:?}, got {status} {answer}"
                ));
            }
        } else if dateutil_only && !date_text.is_empty() {
            let message = answer["error_message"].as_str().unwrap_or("");
            if status != StatusCode::BAD_REQUEST || !message.contains("YYYY-MM-DD") {
                failures.push(format!("{id}: {date_text:?} should be refused naming the accepted forms, got {status} {answer}"));
            }
        } else if !anchored {
            // Without a start date the first fire time depends on "now"; the trigger tests
            // cover these cases.
            continue;
        } else {
            let expected = case["expected_fixed"].as_array().unwrap();
            let want = expected.first().cloned().unwrap_or(Value::Null);
            let same = match (&answer["next_run_time"], &want) {
                (Value::String(got), Value::String(want)) => {
                    got == want
                        || DateTime::parse_from_rfc3339(got).ok()
                            == DateTime::parse_from_rfc3339(want).ok()
                            && !got.is_empty()
                }
                (got, want) => got == want,
            };
            if status != StatusCode::OK || !same {
                failures.push(format!(
                    "{id}: expected next_run_time {want}, got {status} {answer}"
                ));
            }
        }
        checked += 1;
    }
    app.stop().await;
    assert!(checked > 250, "only {checked} cases checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
