//! Job policies beyond APScheduler (issue 19): retries with backoff (`retry`) and what a fire
//! time that comes while the job runs becomes (`overlap`, `queue_limit`). Real scripts, a
//! daemon on a bound port, the scheduler on a manual clock: delays are asserted on the
//! recorded schedule (`due_at`), never on wall time.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::{TestApp, project_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tickd::clock::ManualClock;

const MANUAL_START: &str = "[scheduler]\nallowed_hosts = [\"no-such-host\"]\n[executor]\nshutdown_grace = 0.2\nkill_grace = 0.2\n";

/// Fails its first `argv[2]` runs (exit 1), then succeeds; counts runs in the file `argv[1]`.
const FLAKY: &str = "import pathlib, sys\np = pathlib.Path(sys.argv[1])\n\
n = int(p.read_text()) + 1 if p.exists() else 1\np.write_text(str(n))\nprint('attempt', n)\n\
sys.exit(1 if n <= int(sys.argv[2]) else 0)\n";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap()
}

fn at(seconds: i64) -> String {
    (t0() + TimeDelta::seconds(seconds)).to_rfc3339()
}

/// A daemon in `dir` on a manual clock at `now`, its scheduler started.
async fn started_at(dir: &Path, now: DateTime<Utc>) -> (Arc<ManualClock>, TestApp) {
    let clock = Arc::new(ManualClock::new(now));
    let app = TestApp::spawn_in(dir, MANUAL_START, Some(clock.clone())).await;
    let (status, _, _) = app.call(Method::POST, "/start", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    (clock, app)
}

async fn tick_at(app: &TestApp, clock: &ManualClock, seconds: i64) {
    clock.set(t0() + TimeDelta::seconds(seconds));
    app.scheduler.tick(clock.now_utc()).await.unwrap();
}

/// The job's runs, newest first.
async fn runs_of(app: &TestApp, job: &str) -> Vec<Value> {
    let (status, runs) = app.get(&format!("/jobs/{job}/runs")).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    runs.as_array().unwrap().clone()
}

/// Polls (ticking at the clock's time, bounded) until the job's runs satisfy `done`.
async fn until(
    app: &TestApp,
    clock: &ManualClock,
    job: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..400 {
        let runs = runs_of(app, job).await;
        if done(&runs) {
            return runs;
        }
        app.scheduler.tick(clock.now_utc()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{job}: never {what}: {:#}", json!(runs_of(app, job).await));
}

fn statuses(runs: &[Value]) -> Vec<&str> {
    runs.iter()
        .map(|run| run["status"].as_str().unwrap())
        .collect()
}

fn slow_job(id: &str, extra: Value) -> Value {
    let mut body = json!({"id": id, "func": "task:success", "args": ["slow.py", "1000"],
        "trigger": "interval", "seconds": 10, "start_date": at(10), "misfire_grace_time": null});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

#[tokio::test]
async fn a_script_failing_twice_then_succeeding_takes_three_attempts_with_growing_delays() {
    let dir = project_dir();
    std::fs::write(dir.path().join("workspace/flaky.py"), FLAKY).unwrap();
    let counter = dir.path().join("count").display().to_string();
    let (clock, app) = started_at(dir.path(), t0()).await;
    let (status, job) = app
        .post(
            "/jobs",
            json!({"id": "flaky", "func": "task:success", "args": ["flaky.py", counter, 2],
                   "trigger": "interval", "hours": 1, "retry": {"limit": 3, "delay": 5, "backoff": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(
        job["retry"],
        json!({"limit": 3, "delay": 5, "backoff": 2, "max_delay": 3600}),
        "the policy is echoed with its defaults"
    );

    let (status, first) = app.post("/jobs/flaky/run?wait=true", json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["status"].as_str(), first["attempt"].as_i64()),
        (Some("failed"), Some(1))
    );
    let runs = runs_of(&app, "flaky").await;
    assert_eq!(statuses(&runs), ["queued", "failed"]);
    let retry = &runs[0];
    assert_eq!(retry["attempt"], 2);
    assert_eq!(retry["retry_of"], first["id"]);
    assert_eq!(retry["cause"], "retry");
    assert_eq!(retry["due_at"], at(5), "5 s after the failure");
    assert_eq!(retry["started_at"], Value::Null);
    assert!(
        retry["reason"]
            .as_str()
            .unwrap()
            .starts_with("retry 1 of 3 after run "),
        "{retry}"
    );

    tick_at(&app, &clock, 4).await;
    assert_eq!(
        statuses(&runs_of(&app, "flaky").await),
        ["queued", "failed"],
        "not due yet"
    );

    tick_at(&app, &clock, 5).await;
    let runs = until(&app, &clock, "flaky", "queued attempt 3", |runs| {
        runs.len() == 3 && runs[0]["status"] == "queued"
    })
    .await;
    assert_eq!(statuses(&runs), ["queued", "failed", "failed"]);
    assert_eq!(runs[1]["attempt"], 2);
    assert_eq!(runs[1]["exit_code"], 1);
    assert_eq!(runs[0]["attempt"], 3);
    assert_eq!(runs[0]["retry_of"], runs[1]["id"]);
    assert_eq!(
        runs[0]["due_at"],
        at(15),
        "the delay doubled: 10 s after the second failure"
    );

    tick_at(&app, &clock, 15).await;
    let runs = until(&app, &clock, "flaky", "succeeded", |runs| {
        runs[0]["status"] == "succeeded"
    })
    .await;
    assert_eq!(
        statuses(&runs),
        ["succeeded", "failed", "failed"],
        "three records, no fourth"
    );
    assert_eq!(runs[0]["attempt"], 3);
    assert!(runs[0]["stdout"].as_str().unwrap().contains("attempt 3"));
    app.stop().await;
}

#[tokio::test]
async fn cancelled_runs_and_unlisted_exit_codes_are_not_retried_and_a_queued_retry_can_be_cancelled()
 {
    let dir = project_dir();
    let (clock, app) = started_at(dir.path(), t0()).await;
    let retry = json!({"limit": 2, "delay": 1});
    for (id, args, extra) in [
        ("slow", json!(["slow.py", "1000"]), json!({"retry": retry})),
        ("fails", json!(["fail.py"]), json!({"retry": retry})),
        (
            "only75",
            json!(["fail.py"]),
            json!({"retry": {"limit": 2, "on_exit_codes": [75]}}),
        ),
    ] {
        let mut body = json!({"id": id, "func": "task:success", "args": args, "trigger": "interval", "hours": 1});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(app.post("/jobs", body).await.0, StatusCode::OK);
    }
    let (_, headers, _) = app.call(Method::POST, "/jobs/slow/run", None).await;
    let run_id = headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, cancelled) = app
        .post(&format!("/runs/{run_id}/cancel"), json!(null))
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    assert_eq!(
        statuses(&runs_of(&app, "slow").await),
        ["cancelled"],
        "a cancelled run is not retried"
    );

    app.post("/jobs/only75/run?wait=true", json!(null)).await;
    assert_eq!(
        statuses(&runs_of(&app, "only75").await),
        ["failed"],
        "exit 3 is not one of [75]"
    );

    app.post("/jobs/fails/run?wait=true", json!(null)).await;
    let runs = runs_of(&app, "fails").await;
    assert_eq!(statuses(&runs), ["queued", "failed"]);
    let (status, cancelled) = app
        .post(
            &format!("/runs/{}/cancel", runs[0]["id"].as_str().unwrap()),
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["reason"],
        "cancelled through the API while queued"
    );
    tick_at(&app, &clock, 1800).await;
    assert_eq!(
        statuses(&runs_of(&app, "fails").await),
        ["cancelled", "failed"],
        "nothing started"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retry_waiting_when_the_daemon_stops_runs_after_the_restart() {
    let dir = project_dir();
    let (_, app) = started_at(dir.path(), t0()).await;
    let body = json!({"id": "fails", "func": "task:success", "args": ["fail.py"], "trigger": "interval",
                      "hours": 1, "retry": {"limit": 1, "delay": 60}});
    assert_eq!(app.post("/jobs", body).await.0, StatusCode::OK);
    app.post("/jobs/fails/run?wait=true", json!(null)).await;
    assert_eq!(
        statuses(&runs_of(&app, "fails").await),
        ["queued", "failed"]
    );
    app.stop().await;

    // Back 2 minutes later: the retry was due at 12:01 and runs now, once.
    let (clock, app) = started_at(dir.path(), t0() + TimeDelta::seconds(120)).await;
    let runs = until(&app, &clock, "fails", "retried", |runs| {
        runs[0]["status"] == "failed"
    })
    .await;
    assert_eq!(
        statuses(&runs),
        ["failed", "failed"],
        "limit 1: one retry, and no more"
    );
    assert_eq!(runs[0]["attempt"], 2);
    assert_eq!(runs[0]["exit_code"], 3);
    assert_eq!(runs[0]["due_at"], at(60));
    app.stop().await;
}

#[tokio::test]
async fn overlap_queue_starts_a_waiting_fire_time_when_the_run_ends_up_to_the_queue_limit() {
    let dir = project_dir();
    let (clock, app) = started_at(dir.path(), t0()).await;
    let (status, job) = app
        .post(
            "/jobs",
            slow_job("q", json!({"overlap": "queue", "queue_limit": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(
        (job["overlap"].as_str(), job["queue_limit"].as_i64()),
        (Some("queue"), Some(1))
    );
    tick_at(&app, &clock, 10).await;
    // Started (not only claimed): its script can be cancelled.
    until(&app, &clock, "q", "running", |runs| {
        statuses(runs) == ["running"] && runs[0]["started_at"].is_string()
    })
    .await;
    tick_at(&app, &clock, 20).await;
    tick_at(&app, &clock, 30).await;
    let runs = runs_of(&app, "q").await;
    assert_eq!(statuses(&runs), ["skipped", "queued", "running"]);
    assert_eq!(runs[1]["scheduled_run_time"], "2031-05-01T12:00:20+00:00");
    assert!(
        runs[1]["reason"]
            .as_str()
            .unwrap()
            .contains("overlap: queue"),
        "{}",
        runs[1]
    );
    assert!(
        runs[0]["reason"]
            .as_str()
            .unwrap()
            .contains("queue was full (queue_limit 1"),
        "{}",
        runs[0]
    );

    let first = runs[2]["id"].as_str().unwrap();
    let (status, _) = app
        .post(&format!("/runs/{first}/cancel"), json!(null))
        .await;
    assert_eq!(status, StatusCode::OK);
    let runs = until(&app, &clock, "q", "started the queued run", |runs| {
        statuses(runs) == ["skipped", "running", "cancelled"] && runs[1]["started_at"].is_string()
    })
    .await;
    assert_eq!(
        runs[1]["reason"],
        Value::Null,
        "a started run has no reason"
    );
    assert!(runs[1]["started_at"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn overlap_replace_cancels_the_running_run_and_starts_the_new_one() {
    let dir = project_dir();
    let (clock, app) = started_at(dir.path(), t0()).await;
    assert_eq!(
        app.post("/jobs", slow_job("r", json!({"overlap": "replace"})))
            .await
            .0,
        StatusCode::OK
    );
    tick_at(&app, &clock, 10).await;
    until(&app, &clock, "r", "running", |runs| {
        statuses(runs) == ["running"]
    })
    .await;
    tick_at(&app, &clock, 20).await;
    let runs = until(&app, &clock, "r", "replaced", |runs| {
        statuses(runs) == ["running", "cancelled"]
    })
    .await;
    assert_eq!(runs[0]["scheduled_run_time"], "2031-05-01T12:00:20+00:00");
    assert_eq!(
        runs[1]["reason"],
        format!(
            "replaced by run {} (overlap: replace)",
            runs[0]["id"].as_str().unwrap()
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn overlap_allow_runs_fire_times_side_by_side_up_to_max_instances() {
    let dir = project_dir();
    let (clock, app) = started_at(dir.path(), t0()).await;
    let (status, body) = app
        .post("/jobs", slow_job("a", json!({"overlap": "allow"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .contains("set max_instances to 2 or more"),
        "{body}"
    );
    assert_eq!(
        app.post(
            "/jobs",
            slow_job("a", json!({"overlap": "allow", "max_instances": 2}))
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/jobs", slow_job("s", json!({"overlap": "skip"})))
            .await
            .0,
        StatusCode::OK
    );
    for seconds in [10, 20, 30] {
        tick_at(&app, &clock, seconds).await;
    }
    let runs = until(&app, &clock, "a", "two running", |runs| {
        statuses(runs) == ["skipped", "running", "running"]
    })
    .await;
    assert!(
        runs[0]["reason"]
            .as_str()
            .unwrap()
            .contains("maximum number of running instances reached (2)")
    );
    assert_eq!(
        statuses(&runs_of(&app, "s").await),
        ["skipped", "skipped", "running"],
        "skip: APScheduler's rule"
    );
    app.stop().await;
}

#[tokio::test]
async fn policies_are_validated_echoed_only_when_set_and_changed_by_patch() {
    let app = TestApp::spawn("").await;
    let body = |extra: Value| {
        let mut body = json!({"id": "p", "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, text) in [
        (
            json!({"retry": {"delay": 5}}),
            "retry.limit must be a whole number of attempts after the first, 1 to 100",
        ),
        (
            json!({"retry": {"limit": 2, "backoff": 0}}),
            "retry.backoff must be a number from 1",
        ),
        (
            json!({"retry": {"limit": 2, "delay": 60, "max_delay": 10}}),
            "retry.max_delay (10) must not be less than retry.delay (60)",
        ),
        (json!({"retry": "3"}), "retry must be an object"),
        (
            json!({"overlap": "forbid"}),
            "overlap must be one of \"skip\", \"queue\", \"replace\", \"allow\"",
        ),
        (
            json!({"queue_limit": 2}),
            "queue_limit applies only with overlap \"queue\"",
        ),
        (
            json!({"overlap": "queue", "queue_limit": 0}),
            "queue_limit must be a whole number of runs, 1 to 1000",
        ),
    ] {
        let (status, answer) = app.post("/jobs", body(extra.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}");
        assert!(
            answer["error_message"].as_str().unwrap().starts_with(text),
            "{extra}: {answer}"
        );
    }
    let (_, plain) = app.post("/jobs", body(json!({}))).await;
    for key in ["retry", "overlap", "queue_limit"] {
        assert!(
            plain.get(key).is_none(),
            "{key} is shown only when set: {plain}"
        );
    }
    let (status, changed) = app
        .patch("/jobs/p", json!({"retry": {"limit": 1, "on_exit_codes": [75]}, "overlap": "queue", "queue_limit": 3}))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["retry"]["on_exit_codes"], json!([75]));
    assert_eq!(
        (changed["overlap"].as_str(), changed["queue_limit"].as_i64()),
        (Some("queue"), Some(3))
    );
    let (status, refused) = app.patch("/jobs/p", json!({"overlap": "skip"})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "queue_limit would be left without queue: {refused}"
    );
    let (status, cleared) = app
        .patch(
            "/jobs/p",
            json!({"retry": null, "overlap": null, "queue_limit": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared, plain, "back to the job as it was added");
    app.stop().await;
}

#[tokio::test]
async fn a_date_jobs_retry_runs_after_its_trigger_ran_out_and_a_deleted_jobs_does_not() {
    let dir = project_dir();
    std::fs::write(dir.path().join("workspace/flaky.py"), FLAKY).unwrap();
    let counter = dir.path().join("count").display().to_string();
    let (clock, app) = started_at(dir.path(), t0()).await;
    let once = json!({"id": "once", "func": "task:success", "args": ["flaky.py", counter, 1],
                      "trigger": "date", "run_date": at(10), "retry": {"limit": 2, "delay": 5}});
    assert_eq!(app.post("/jobs", once).await.0, StatusCode::OK);
    tick_at(&app, &clock, 10).await;
    let runs = until(&app, &clock, "once", "its retry queued", |runs| {
        statuses(runs) == ["queued", "failed"]
    })
    .await;
    assert_eq!(runs[0]["due_at"], at(15));
    assert_eq!(
        app.get("/jobs/once").await.0,
        StatusCode::NOT_FOUND,
        "a date job is gone once it fired"
    );
    tick_at(&app, &clock, 15).await;
    let runs = until(&app, &clock, "once", "retried", |runs| {
        runs[0]["status"] == "succeeded"
    })
    .await;
    assert_eq!(statuses(&runs), ["succeeded", "failed"]);
    assert_eq!(runs[0]["attempt"], 2);

    let body = json!({"id": "gone", "func": "task:success", "args": ["fail.py"], "trigger": "interval",
                      "hours": 1, "retry": {"limit": 2, "delay": 5}});
    assert_eq!(app.post("/jobs", body).await.0, StatusCode::OK);
    app.post("/jobs/gone/run?wait=true", json!(null)).await;
    assert_eq!(statuses(&runs_of(&app, "gone").await), ["queued", "failed"]);
    assert_eq!(app.delete("/jobs/gone").await.0, StatusCode::NO_CONTENT);
    let runs = runs_of(&app, "gone").await;
    assert_eq!(
        statuses(&runs),
        ["skipped", "failed"],
        "deleted: its retry does not run"
    );
    assert_eq!(
        runs[0]["reason"],
        "the job was removed while the run waited"
    );
    app.stop().await;
}
