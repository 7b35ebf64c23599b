//! `GET P/runs` over a bound port (issue 16, part 3): the runs of every job newest first,
//! narrowed by status, job and time range, paged, without their output, and 400s that name
//! the bad parameter. Real scripts (`test.py` succeeds, `fail.py` exits 3).

use crate::common;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use common::{TestApp, err};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn job(id: &str, script: &str) -> Value {
    json!({"id": id, "func": "task:success", "args": [script], "trigger": "interval", "hours": 1})
}

/// Runs a job now and waits for its run to end; answers the run id.
async fn run_to_end(app: &TestApp, job_id: &str) -> String {
    let (status, headers, body) = app
        .call(Method::POST, &format!("/jobs/{job_id}/run"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let location = headers["location"].to_str().unwrap();
    let run_id = location.rsplit('/').next().unwrap().to_owned();
    for _ in 0..600 {
        let (status, run) = app.get(&format!("/runs/{run_id}")).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if run["status"] != "running" {
            return run_id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {run_id} did not end");
}

/// The ids `GET P/runs?<query>` answers (200 asserted).
async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let (status, body) = app.get(&format!("/runs?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|run| run["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A time as a query value: RFC 3339 in UTC with `Z` (nothing to escape).
fn param(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A moment strictly between two runs' creation.
async fn moment() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let now = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    now
}

#[tokio::test]
async fn lists_runs_of_every_job_newest_first_with_filters_and_pages() {
    let app = TestApp::spawn("").await;
    for (id, script) in [("ok-a", "test.py"), ("ok-b", "test.py"), ("bad", "fail.py")] {
        let (status, body) = app.post("/jobs", job(id, script)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert!(ids(&app, "").await.is_empty(), "no runs yet");
    let mut runs = Vec::new();
    runs.push(run_to_end(&app, "ok-a").await);
    runs.push(run_to_end(&app, "bad").await);
    let middle_start = moment().await;
    runs.push(run_to_end(&app, "ok-b").await);
    runs.push(run_to_end(&app, "bad").await);
    let middle_end = moment().await;
    runs.push(run_to_end(&app, "ok-a").await);
    let newest_first: Vec<String> = runs.iter().rev().cloned().collect();

    // Every job's runs, newest first, as a job's runs show them but without their output.
    let (status, listed) = app.get("/runs").await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(
        listed
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        newest_first
    );
    let (_, of_job) = app.get("/jobs/bad/runs").await;
    let mut full = of_job[0].clone();
    assert_eq!(full["stderr"], "bad\n", "a job's runs carry the output");
    let fields = full.as_object_mut().unwrap();
    fields.remove("stdout");
    fields.remove("stderr");
    assert_eq!(
        listed[1], full,
        "the same object, without stdout and stderr"
    );
    assert_eq!(listed[1]["status"], "failed");
    assert_eq!(listed[1]["exit_code"], 3);
    let (_, one) = app.get(&format!("/runs/{}", runs[1])).await;
    assert_eq!(one["stderr"], "bad\n", "one run still has its output");

    // Status: "what failed".
    assert_eq!(
        ids(&app, "status=failed").await,
        [runs[3].as_str(), runs[1].as_str()]
    );
    assert_eq!(
        ids(&app, "status=failed,succeeded").await,
        newest_first,
        "several statuses"
    );
    assert!(ids(&app, "status=running,missed").await.is_empty());

    // Job.
    assert_eq!(
        ids(&app, "job=ok-a").await,
        [runs[4].as_str(), runs[0].as_str()]
    );
    assert!(
        ids(&app, "job=nobody").await.is_empty(),
        "unknown job: empty, not 404"
    );

    // Time range, on when each run began.
    let (since, until) = (param(middle_start), param(middle_end));
    assert_eq!(
        ids(&app, &format!("since={since}&until={until}")).await,
        [runs[3].as_str(), runs[2].as_str()]
    );
    assert_eq!(
        ids(&app, &format!("since={since}")).await,
        [runs[4].as_str(), runs[3].as_str(), runs[2].as_str()]
    );
    assert_eq!(
        ids(&app, &format!("until={since}")).await,
        [runs[1].as_str(), runs[0].as_str()]
    );
    let offset = middle_end
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339_opts(SecondsFormat::Micros, false)
        .replace('+', "%2B");
    assert_eq!(
        ids(&app, &format!("since={offset}")).await,
        [runs[4].as_str()],
        "any offset, the same instant"
    );

    // Combined.
    assert_eq!(
        ids(&app, &format!("status=failed&since={since}")).await,
        [runs[3].as_str()]
    );
    assert_eq!(
        ids(&app, &format!("status=succeeded&job=ok-b&until={until}")).await,
        [runs[2].as_str()]
    );
    assert!(ids(&app, "status=failed&job=ok-a").await.is_empty());

    // Pages, as a job's runs page.
    assert_eq!(ids(&app, "limit=2").await, newest_first[..2]);
    let second = ids(&app, &format!("limit=2&before={}", newest_first[1])).await;
    assert_eq!(second, newest_first[2..4]);
    let third = ids(&app, &format!("limit=2&before={}", newest_first[3])).await;
    assert_eq!(third, newest_first[4..]);
    assert!(ids(&app, &format!("before={}", runs[0])).await.is_empty());
    assert_eq!(
        ids(&app, &format!("status=failed&limit=1&before={}", runs[3])).await,
        [runs[1].as_str()]
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_refused_with_a_clear_text() {
    let app = TestApp::spawn("").await;
    let accepted = "running, succeeded, failed, timed_out, missed, skipped, interrupted, \
                    cancelled, queued";
    let cases = [
        (
            "limit=0",
            "limit must be a whole number from 1 to 500, not \"0\"".to_owned(),
        ),
        (
            "limit=501",
            "limit must be a whole number from 1 to 500, not \"501\"".to_owned(),
        ),
        (
            "status=failed,bogus",
            format!(
                "status takes one or more of {accepted}, comma-separated: unknown run status \
                 \"bogus\""
            ),
        ),
        (
            "status=",
            format!(
                "status takes one or more of {accepted}, comma-separated: an empty status in \"\""
            ),
        ),
        (
            "since=yesterday",
            "since must be an RFC 3339 date and time with its offset (2030-01-02T03:04:05Z or \
             2030-01-02T11:04:05+08:00), not \"yesterday\""
                .to_owned(),
        ),
        (
            "until=2030-01-02%2003:04:05",
            "until must be an RFC 3339 date and time with its offset (2030-01-02T03:04:05Z or \
             2030-01-02T11:04:05+08:00), not \"2030-01-02 03:04:05\""
                .to_owned(),
        ),
        (
            "since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z",
            "until (2030-01-01T00:00:00+00:00) must be later than since \
             (2030-01-02T00:00:00+00:00)"
                .to_owned(),
        ),
        ("job=", "job must be a job id, not empty".to_owned()),
        (
            "before=a%00b",
            "before (a run id) must not contain a NUL character (%00)".to_owned(),
        ),
    ];
    for (query, text) in cases {
        let (status, body) = app.get(&format!("/runs?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body, err(&text), "{query}");
    }
    app.stop().await;
}
