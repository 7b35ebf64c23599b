//! Run records over the API (CONTRACT §6, issue 4): every run — and every run that did not
//! happen — is a record with its output. Real scripts; assertions on records and processes,
//! never on durations.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use common::{TestApp, err, project_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tickd::clock::ManualClock;

fn job(id: &str, args: Value, extra: Value) -> Value {
    let mut body =
        json!({"id": id, "func": "task:success", "args": args, "trigger": "interval", "hours": 1});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Polls a run until it has ended (bounded; scripts here end within seconds).
async fn ended(app: &TestApp, run_id: &str) -> Value {
    for _ in 0..600 {
        let (status, run) = app.get(&format!("/runs/{run_id}")).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if run["status"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {run_id} did not end");
}

fn pid_alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie (state Z) is dead; only its parent has not reaped it yet.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test]
async fn run_now_answers_at_start_and_records_the_output() {
    let app = TestApp::spawn("").await;
    app.post("/jobs", job("slow", json!(["slow.py", "2"]), json!({})))
        .await;
    let (status, headers, body) = app.call(Method::POST, "/jobs/slow/run", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "slow", "the answer is the job");
    let location = headers["location"].to_str().unwrap().to_owned();
    let run_id = location
        .strip_prefix("/scheduler/runs/")
        .unwrap()
        .to_owned();
    let (_, run) = app.get(&format!("/runs/{run_id}")).await;
    assert_eq!(
        run["status"], "running",
        "answered while the 2 s script still runs"
    );
    assert_eq!(run["cause"], "run_now");
    assert_eq!(run["scheduled_run_time"], Value::Null);
    let run = ended(&app, &run_id).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["exit_code"], 0);
    for key in [
        "id",
        "job_id",
        "scheduled_run_time",
        "started_at",
        "finished_at",
        "status",
        "reason",
        "exit_code",
        "stdout",
        "stderr",
        "cause",
        "node",
        "stdout_truncated",
        "stderr_truncated",
    ] {
        assert!(run.get(key).is_some(), "{key} missing in {run}");
    }
    app.stop().await;
}

#[tokio::test]
async fn wait_true_answers_the_finished_record() {
    let app = TestApp::spawn("").await;
    app.post(
        "/jobs",
        job(
            "echo",
            json!(["echo.py", "a", 1]),
            json!({"kwargs": {"k": "v"}}),
        ),
    )
    .await;
    let (status, run) = app.post("/jobs/echo/run?wait=true", json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["job_id"], "echo");
    let stdout = run["stdout"].as_str().unwrap();
    assert!(stdout.contains("echo ['a', '1']"), "{stdout}");
    assert!(
        stdout.contains("{\"k\": \"v\"}") || stdout.contains("{\"k\":\"v\"}"),
        "{stdout}"
    );

    app.post("/jobs", job("fail", json!(["fail.py"]), json!({})))
        .await;
    let (_, run) = app.post("/jobs/fail/run?wait=true", json!(null)).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["stderr"], "bad\n");
    assert!(run["reason"].as_str().unwrap().contains("code 3"));
    app.stop().await;
}

#[tokio::test]
async fn a_timeout_kills_the_script_and_its_children() {
    let app = TestApp::spawn("[executor]\nkill_grace = 0.5\n").await;
    std::fs::write(
        app.dir.join("workspace/family.py"),
        "import subprocess, sys, time\nchild = subprocess.Popen(['sleep', '1000'])\nprint(child.pid, flush=True)\ntime.sleep(1000)\n",
    )
    .unwrap();
    let (status, body) = app
        .post(
            "/jobs",
            job("family", json!(["family.py"]), json!({"timeout": 1})),
        )
        .await;
    assert_eq!(
        (status, body["timeout"].clone()),
        (StatusCode::OK, json!(1)),
        "timeout is echoed when set"
    );
    let (_, run) = app.post("/jobs/family/run?wait=true", json!(null)).await;
    assert_eq!(run["status"], "timed_out", "{run}");
    let child: i64 = run["stdout"].as_str().unwrap().trim().parse().unwrap();
    for _ in 0..100 {
        if !pid_alive(child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !pid_alive(child),
        "the grandchild {child} survived the timeout"
    );
    app.stop().await;
}

#[tokio::test]
async fn output_beyond_the_limit_keeps_the_tail() {
    let app = TestApp::spawn("[executor]\noutput_limit = 1000\n").await;
    std::fs::write(
        app.dir.join("workspace/loud.py"),
        "print('x' * 5000 + 'END')\n",
    )
    .unwrap();
    app.post("/jobs", job("loud", json!(["loud.py"]), json!({})))
        .await;
    let (_, run) = app.post("/jobs/loud/run?wait=true", json!(null)).await;
    let stdout = run["stdout"].as_str().unwrap();
    assert_eq!(stdout.len(), 1000);
    assert!(stdout.ends_with("END\n"));
    assert_eq!(run["stdout_truncated"], true);
    assert_eq!(run["stderr_truncated"], false);
    app.stop().await;
}

#[tokio::test]
async fn cancel_stops_a_running_script() {
    let app = TestApp::spawn("[executor]\nkill_grace = 0.5\n").await;
    app.post("/jobs", job("slow", json!(["slow.py", "1000"]), json!({})))
        .await;
    let (_, headers, _) = app.call(Method::POST, "/jobs/slow/run", None).await;
    let run_id = headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, run) = app
        .post(&format!("/runs/{run_id}/cancel"), json!(null))
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "cancelled");
    let (status, body) = app
        .post(&format!("/runs/{run_id}/cancel"), json!(null))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        app.post("/runs/nope/cancel", json!(null)).await,
        (StatusCode::NOT_FOUND, err("Run nope not found"))
    );
    assert_eq!(
        app.get("/runs/nope").await,
        (StatusCode::NOT_FOUND, err("Run nope not found"))
    );
    app.stop().await;
}

#[tokio::test]
async fn history_pages_newest_first_and_outlives_the_job() {
    let app = TestApp::spawn("").await;
    app.post("/jobs", job("t", json!(["test.py"]), json!({})))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, run) = app.post("/jobs/t/run?wait=true", json!(null)).await;
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    let (status, runs) = app.get("/jobs/t/runs").await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [&ids[2], &ids[1], &ids[0]]);
    let (_, page) = app.get("/jobs/t/runs?limit=1").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (_, older) = app.get(&format!("/jobs/t/runs?before={}", ids[2])).await;
    assert_eq!(older.as_array().unwrap().len(), 2);
    let (status, body) = app.get("/jobs/t/runs?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app.get("/jobs/t/runs?limit=501").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    assert_eq!(app.delete("/jobs/t").await.0, StatusCode::NO_CONTENT);
    let (status, runs) = app.get("/jobs/t/runs").await;
    assert_eq!(
        (status, runs.as_array().unwrap().len()),
        (StatusCode::OK, 3),
        "runs outlive their job"
    );
    assert_eq!(
        app.get("/jobs/never/runs").await,
        (StatusCode::NOT_FOUND, err("Job never not found"))
    );
    app.stop().await;
}

const MANUAL_START: &str = "[scheduler]\nallowed_hosts = [\"no-such-host\"]\n[executor]\nshutdown_grace = 0.2\nkill_grace = 0.2\n";

/// A daemon in `dir` on a manual clock at 2031-05-01 12:00 UTC (the time is answered too),
/// its scheduler started by the test.
async fn started_on_a_manual_clock(
    dir: &std::path::Path,
) -> (chrono::DateTime<Utc>, Arc<ManualClock>, TestApp) {
    let t0 = Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = TestApp::spawn_in(dir, MANUAL_START, Some(clock.clone())).await;
    let (status, _, _) = app.call(Method::POST, "/start", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    (t0, clock, app)
}

#[tokio::test]
async fn missed_and_skipped_runs_are_records_too() {
    let dir = project_dir();
    let (t0, clock, app) = started_on_a_manual_clock(dir.path()).await;
    app.post(
        "/jobs",
        json!({"id": "late", "func": "task:success", "args": ["test.py"], "trigger": "interval",
               "seconds": 10, "start_date": "2031-05-01T12:00:10+00:00"}),
    )
    .await;
    app.post(
        "/jobs",
        json!({"id": "busy", "func": "task:success", "args": ["slow.py", "1000"], "trigger": "interval",
               "seconds": 10, "start_date": "2031-05-01T12:00:10+00:00", "misfire_grace_time": null}),
    )
    .await;
    // 12:00:15: `late` is 5 s late (grace 1 s) → missed; `busy` starts.
    clock.set(t0 + TimeDelta::seconds(15));
    app.scheduler.tick(clock.now_utc()).await.unwrap();
    let late = wait_for_status(&app, "late", "missed").await;
    assert_eq!(late["scheduled_run_time"], "2031-05-01T12:00:10+00:00");
    assert!(
        late["reason"]
            .as_str()
            .unwrap()
            .contains("misfire_grace_time"),
        "{late}"
    );
    assert_eq!(late["started_at"], Value::Null);
    wait_for_status(&app, "busy", "running").await;
    // 12:00:20: `busy` still runs → its next fire time is skipped, and recorded.
    clock.set(t0 + TimeDelta::seconds(20));
    app.scheduler.tick(clock.now_utc()).await.unwrap();
    let skipped = wait_for_status(&app, "busy", "skipped").await;
    assert_eq!(skipped["scheduled_run_time"], "2031-05-01T12:00:20+00:00");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("maximum number of running instances reached (1)")
    );
    app.stop().await;
}

/// The newest run of `job` with `status`, waiting (bounded) for it to appear.
async fn wait_for_status(app: &TestApp, job: &str, status: &str) -> Value {
    for _ in 0..400 {
        let (_, runs) = app.get(&format!("/jobs/{job}/runs")).await;
        if let Some(run) = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == status)
        {
            return run.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {status} run of {job}");
}

#[tokio::test]
async fn retention_keeps_the_newest_runs_per_job() {
    let app = TestApp::spawn("[history]\nmax_runs_per_job = 2\nmax_age_days = 30\n").await;
    app.post("/jobs", job("t", json!(["test.py"]), json!({})))
        .await;
    for _ in 0..4 {
        app.post("/jobs/t/run?wait=true", json!(null)).await;
    }
    app.scheduler.prune_runs(Utc::now()).await.unwrap();
    let (_, runs) = app.get("/jobs/t/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 2);
    // Thirty-one days on, every finished run is past max_age_days.
    app.scheduler
        .prune_runs(Utc::now() + TimeDelta::days(31))
        .await
        .unwrap();
    let (_, runs) = app.get("/jobs/t/runs").await;
    assert_eq!(runs, json!([]));
    app.stop().await;
}

/// End to end on the real clock: a job every second for a few seconds has exactly one record
/// per fire time, none missing and none twice (whatever each record's status).
#[tokio::test]
async fn a_job_every_second_has_one_record_per_fire_time() {
    let app = TestApp::spawn("").await;
    let (status, body) = app
        .post("/jobs", json!({"id": "tick", "func": "task:success", "args": ["test.py"], "trigger": "interval", "seconds": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    app.post("/jobs/tick/pause", json!(null)).await;
    let (_, runs) = app.get("/jobs/tick/runs?limit=500").await;
    let mut scheduled: Vec<i64> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            chrono::DateTime::parse_from_rfc3339(r["scheduled_run_time"].as_str().unwrap())
                .unwrap()
                .timestamp_micros()
        })
        .collect();
    scheduled.sort_unstable();
    assert!(scheduled.len() >= 3, "{runs}");
    for pair in scheduled.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1_000_000,
            "a fire time missing or twice: {scheduled:?}"
        );
    }
    app.stop().await;
}

/// On the real clock: the driver claims a fire time just before it comes (the claim's
/// commit is over when it comes), and the script still starts at it, never before: its own
/// first reading of the clock, and its record's `started_at`, are at or after the fire time.
#[tokio::test]
async fn a_fire_time_is_claimed_just_ahead_and_the_script_starts_at_it() {
    let app = TestApp::spawn("").await;
    std::fs::write(
        app.dir.join("workspace/clock.py"),
        "import time\nprint(repr(time.time()))\n",
    )
    .unwrap();
    let first = Utc::now() + TimeDelta::milliseconds(600);
    let ids = ["at0", "at1", "at2"];
    for (n, id) in ids.iter().enumerate() {
        let due = first + TimeDelta::milliseconds(300 * n as i64);
        let body = json!({"id": id, "func": "task:run_script", "args": ["clock.py"],
                          "trigger": "date",
                          "run_date": due.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)});
        let (status, job) = app.post("/jobs", body).await;
        assert_eq!(status, StatusCode::OK, "{job}");
    }
    let mut claimed_ahead = 0;
    for id in ids {
        let listed = wait_for_status(&app, id, "succeeded").await;
        let run_id = listed["id"].as_str().unwrap().to_owned();
        let (_, run) = app.get(&format!("/runs/{run_id}")).await;
        let time = |key: &str| {
            chrono::DateTime::parse_from_rfc3339(run[key].as_str().unwrap())
                .unwrap()
                .timestamp_micros()
        };
        let scheduled = time("scheduled_run_time");
        assert!(time("started_at") >= scheduled, "{run}");
        let script_clock: f64 = run["stdout"].as_str().unwrap().trim().parse().unwrap();
        assert!(
            (script_clock * 1e6) as i64 >= scheduled,
            "the script read {script_clock} before its fire time: {run}"
        );
        // When the claim was committed: the record's creation, which the API does not show.
        let record = app.scheduler.get_run(&run_id.into()).await.unwrap();
        if record.created_at.timestamp_micros() < scheduled {
            claimed_ahead += 1;
        }
    }
    // Each is claimed 10 ms ahead unless the host held the driver up longer than that.
    assert!(claimed_ahead > 0, "no fire time was claimed ahead");
    app.stop().await;
}

/// A script deleted after its job was added: run-now still records the run (`failed`, with
/// the reason) and the answer names that record — a 400 with `run_id` and `Location`, or with
/// `?wait=true` the record itself, as for a script that started and failed.
#[tokio::test]
async fn run_now_of_a_deleted_script_names_the_failed_record() {
    let app = TestApp::spawn("").await;
    std::fs::write(app.dir.join("workspace/gone.py"), "print('hi')\n").unwrap();
    let (status, _) = app
        .post("/jobs", job("gone", json!(["gone.py"]), json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    std::fs::remove_file(app.dir.join("workspace/gone.py")).unwrap();

    let (status, headers, body) = app.call(Method::POST, "/jobs/gone/run", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let run_id = body["run_id"].as_str().expect("the answer names the run");
    assert_eq!(
        body,
        json!({"error_message": "Script gone.py not found in the workspace", "run_id": run_id})
    );
    assert_eq!(
        headers["location"],
        format!("/scheduler/runs/{run_id}").as_str()
    );
    let (status, run) = app.get(&format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["cause"], "run_now");
    assert_eq!(
        run["reason"],
        "the script could not start: Script gone.py not found in the workspace"
    );
    assert!(run["finished_at"].is_string(), "{run}");

    let (status, headers, run) = app
        .call(Method::POST, "/jobs/gone/run?wait=true", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["job_id"], "gone");
    assert_eq!(
        run["reason"],
        "the script could not start: Script gone.py not found in the workspace"
    );
    let run_id = run["id"].as_str().unwrap();
    assert_eq!(
        headers["location"],
        format!("/scheduler/runs/{run_id}").as_str()
    );
    let (_, stored) = app.get(&format!("/runs/{run_id}")).await;
    assert_eq!(stored, run, "the answer is the stored record");
    let (_, runs) = app.get("/jobs/gone/runs").await;
    assert_eq!(
        runs.as_array().unwrap().len(),
        2,
        "one record per attempt: {runs}"
    );
    app.stop().await;
}

/// The same rule for a scheduled run: its fire time gets a `failed` record with the reason,
/// and the job stays scheduled.
#[tokio::test]
async fn a_scheduled_run_of_a_deleted_script_is_recorded_failed() {
    let dir = project_dir();
    let (t0, clock, app) = started_on_a_manual_clock(dir.path()).await;
    std::fs::write(dir.path().join("workspace/gone.py"), "print('hi')\n").unwrap();
    app.post(
        "/jobs",
        json!({"id": "gone", "func": "task:success", "args": ["gone.py"], "trigger": "interval",
               "seconds": 10, "start_date": "2031-05-01T12:00:10+00:00"}),
    )
    .await;
    std::fs::remove_file(dir.path().join("workspace/gone.py")).unwrap();
    clock.set(t0 + TimeDelta::seconds(10));
    app.scheduler.tick(clock.now_utc()).await.unwrap();
    let run = wait_for_status(&app, "gone", "failed").await;
    assert_eq!(run["scheduled_run_time"], "2031-05-01T12:00:10+00:00");
    assert_eq!(run["cause"], "schedule");
    assert_eq!(
        run["reason"],
        "the script could not start: Script gone.py not found in the workspace"
    );
    let (_, job) = app.get("/jobs/gone").await;
    assert_eq!(
        job["next_run_time"], "2031-05-01T12:00:20+00:00",
        "still scheduled"
    );
    app.stop().await;
}
