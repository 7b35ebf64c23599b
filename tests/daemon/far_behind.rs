//! Jobs far behind (issue 13, item 1): a `seconds: 0.000001` interval a day back, a
//! `second='*'` cron 1,000 days back, and their kin. APScheduler walks every missed fire time
//! inside its jobstore lock, and so did tickd: one POST bricked the daemon, across restarts.
//! Now a pass handles such a job in bounded work — its latest due fire time by the job's
//! rules, every earlier one in one summary `missed` record — and the API answers throughout.
//!
//! "Promptly" below is a generous bound that only a hang misses, never a speed.

use crate::common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::daemon::{
    call, free_port, kill_scripts_under, start as start_binary, wait_exit, write_config,
};
use common::scheduling::{CapturedLog, manual_start, next_event, start};
use common::{TestApp, project_dir};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tickd::clock::ManualClock;
use tickd::job::{JobId, MAX_DUE_RUN_TIMES};
use tickd::scheduler::SchedulerEvent;

/// Longer than any answer takes, shorter than a hang.
const PROMPTLY: Duration = Duration::from_secs(20);

async fn promptly<T>(what: &str, answer: impl Future<Output = T>) -> T {
    tokio::time::timeout(PROMPTLY, answer)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PROMPTLY:?}"))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap()
}

/// A daemon on a manual clock at `t0`, its scheduler stopped until the test starts it.
async fn stopped_daemon(dir: &std::path::Path) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = TestApp::spawn_in(dir, &manual_start(""), Some(clock.clone())).await;
    (app, clock)
}

/// Adds a job that runs `test.py` (its body's other keys from `spec`).
async fn add(app: &TestApp, spec: Value) -> Value {
    let mut body = json!({"func": "task:success", "args": ["test.py"]});
    body.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    let (status, job) = promptly("POST P/jobs", app.post("/jobs", body)).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    job
}

/// A job's run records, oldest first.
async fn runs(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, runs) = promptly("GET runs", app.get(&format!("/jobs/{id}/runs?limit=500"))).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    let mut runs = runs.as_array().unwrap().clone();
    runs.reverse();
    runs
}

/// Waits for the summary record of a far-behind job (the `missed` record under its
/// earliest fire time).
async fn summary_of(
    events: &mut tokio::sync::broadcast::Receiver<SchedulerEvent>,
    id: &str,
    first: DateTime<Utc>,
) {
    next_event(events, |event| match event {
        SchedulerEvent::JobMissed {
            job_id, scheduled, ..
        } if job_id == id && scheduled.to_utc() == first => Some(()),
        _ => None,
    })
    .await;
}

/// The API's writes on a job: a PATCH, a pause, a resume, then the delete.
async fn change_then_delete(app: &TestApp, id: &str) {
    let path = format!("/jobs/{id}");
    let (status, body) = promptly("PATCH", app.patch(&path, json!({"name": "renamed"}))).await;
    assert_eq!(
        (status, &body["name"]),
        (StatusCode::OK, &json!("renamed")),
        "{body}"
    );
    let (status, body) = promptly("pause", app.post(&format!("{path}/pause"), json!(null))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["next_run_time"], Value::Null);
    let (status, body) = promptly("resume", app.post(&format!("{path}/resume"), json!(null))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = promptly("DELETE", app.delete(&path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_microsecond_interval_a_day_behind_is_one_summary_and_the_api_answers() {
    let log = CapturedLog::default();
    let _capture = log.install();
    let dir = project_dir();
    let (app, _clock) = stopped_daemon(dir.path()).await;
    let day_back = t0() - TimeDelta::days(1);
    add(
        &app,
        json!({"id": "usday", "trigger": "interval", "seconds": 0.000001,
               "next_run_time": "2031-04-30T12:00:00+00:00"}),
    )
    .await;
    let mut events = start(&app).await;
    summary_of(&mut events, "usday", day_back).await;

    let runs = runs(&app, "usday").await;
    assert_eq!(
        runs.len(),
        2,
        "one summary and the latest fire time's run: {runs:#?}"
    );
    assert_eq!(runs[0]["status"], "missed");
    assert_eq!(runs[0]["scheduled_run_time"], "2031-04-30T12:00:00+00:00");
    let reason = runs[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "86400000000 fire times from 2031-04-30 12:00:00 +00:00 to \
             2031-05-01 11:59:59.999999 +00:00 were not run"
        ),
        "one per microsecond, counted exactly: {reason}"
    );
    assert_eq!(runs[1]["scheduled_run_time"], "2031-05-01T12:00:00+00:00");
    assert_ne!(runs[1]["status"], "missed", "on time: it runs");
    let misfires = log.misfire_lines();
    assert_eq!(misfires.len(), 1, "{misfires:#?}");
    assert!(
        misfires[0].contains(
            "was missed by 1 day, 0:00:00 (86400000000 fire times from \
             2031-04-30 12:00:00 +00:00 to 2031-05-01 11:59:59.999999 +00:00)"
        ),
        "the log says what the record says: {}",
        misfires[0]
    );
    let (_, job) = app.get("/jobs/usday").await;
    assert_eq!(job["next_run_time"], "2031-05-01T12:00:00.000001+00:00");

    add(
        &app,
        json!({"id": "other", "trigger": "interval", "minutes": 1}),
    )
    .await;
    change_then_delete(&app, "usday").await;
    app.stop().await;
}

#[tokio::test]
async fn a_cron_job_a_thousand_days_behind_is_one_summary_and_the_api_answers() {
    let log = CapturedLog::default();
    let _capture = log.install();
    let dir = project_dir();
    let (app, _clock) = stopped_daemon(dir.path()).await;
    let first = t0() - TimeDelta::days(1000);
    add(
        &app,
        json!({"id": "cron1000", "trigger": "cron", "second": "*",
               "next_run_time": first.to_rfc3339()}),
    )
    .await;
    let mut events = start(&app).await;
    summary_of(&mut events, "cron1000", first).await;

    let runs = runs(&app, "cron1000").await;
    assert_eq!(
        runs.len(),
        2,
        "86.4 million fire times, two records: {runs:#?}"
    );
    let reason = runs[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "at least 1001 fire times from 2028-08-04 12:00:00 +00:00 to \
             2031-05-01 11:59:59 +00:00 were not run: the job was more than 1000 fire times \
             behind, and only its latest due fire time (2031-05-01 12:00:00 +00:00) was handled"
        ),
        "{reason}"
    );
    assert_eq!(runs[0]["cause"], "startup");
    assert_eq!(runs[1]["scheduled_run_time"], "2031-05-01T12:00:00+00:00");
    let misfires = log.misfire_lines();
    assert_eq!(misfires.len(), 1, "{misfires:#?}");
    assert!(
        misfires[0].contains(
            "was missed by 1000 days, 0:00:00 (at least 1001 fire times from \
             2028-08-04 12:00:00 +00:00 to 2031-05-01 11:59:59 +00:00)"
        ),
        "{}",
        misfires[0]
    );

    add(
        &app,
        json!({"id": "other", "trigger": "interval", "minutes": 1}),
    )
    .await;
    change_then_delete(&app, "cron1000").await;
    app.stop().await;
}

/// The attack's kin, all at once and far behind: without coalescing, without a grace limit,
/// with jitter, past their end date, a date job, an impossible cron, a DST zone. Each gets
/// a bounded number of records, the ones whose trigger ran out are removed, and the daemon
/// answers throughout.
#[tokio::test]
async fn many_kinds_of_far_behind_jobs_at_once_stay_bounded() {
    let dir = project_dir();
    let (app, _clock) = stopped_daemon(dir.path()).await;
    let year_back = "2030-05-01T12:00:00+00:00";
    let jobs = [
        json!({"id": "no-coalesce", "trigger": "interval", "seconds": 0.001, "coalesce": false}),
        json!({"id": "no-grace", "trigger": "interval", "seconds": 0.01, "coalesce": false,
               "misfire_grace_time": null}),
        json!({"id": "jitter", "trigger": "interval", "seconds": 1, "jitter": 30}),
        json!({"id": "ended", "trigger": "interval", "seconds": 0.5,
               "end_date": "2031-01-01T00:00:00+00:00"}),
        json!({"id": "date", "trigger": "date", "run_date": year_back}),
        json!({"id": "impossible", "trigger": "cron", "month": 2, "day": 30}),
        json!({"id": "berlin", "trigger": "cron", "second": "*", "timezone": "Europe/Berlin"}),
        json!({"id": "weekdays", "trigger": "cron", "day_of_week": "mon-fri", "hour": "9-17",
               "second": "*/3", "coalesce": false, "misfire_grace_time": null}),
    ];
    for (i, spec) in jobs.iter().enumerate() {
        let mut spec = spec.clone();
        spec["next_run_time"] = json!(year_back);
        add(&app, spec).await;
        for copy in 0..20 {
            // Many of each, so that a batch holds several.
            let mut spec = jobs[i].clone();
            spec["id"] = json!(format!("{}-{copy}", jobs[i]["id"].as_str().unwrap()));
            spec["next_run_time"] = json!(year_back);
            add(&app, spec).await;
        }
    }
    let mut events = start(&app).await;
    add(
        &app,
        json!({"id": "meanwhile", "trigger": "interval", "minutes": 1}),
    )
    .await;
    // The pass is done when its last job is: ids sort after their copies' (`-19` < ``).
    let ids: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    let mut done = std::collections::HashSet::new();
    while done.len() < ids.len() {
        let id = next_event(&mut events, |event| match event {
            SchedulerEvent::JobMissed { job_id, .. }
            | SchedulerEvent::JobSubmitted { job_id, .. }
            | SchedulerEvent::JobMaxInstances { job_id, .. } => Some(job_id),
            _ => None,
        })
        .await;
        if ids.contains(&id.as_str()) {
            done.insert(id);
        }
    }
    for id in ids {
        let records = runs(&app, id).await;
        assert!(
            (1..=3).contains(&records.len()),
            "{id}: a summary and the latest fire time at most: {records:#?}"
        );
        let (status, _) = app.get(&format!("/jobs/{id}")).await;
        let gone = matches!(id, "ended" | "date" | "impossible");
        assert_eq!(
            status == StatusCode::NOT_FOUND,
            gone,
            "{id}: removed when its trigger ran out"
        );
    }
    for id in ["no-coalesce", "no-grace", "jitter", "berlin", "weekdays"] {
        let (status, _) = promptly("DELETE", app.delete(&format!("/jobs/{id}"))).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{id}");
    }
    app.stop().await;
}

/// Jobs whose fire times come faster than passes (0.2 ms apart, with and without
/// coalescing), on the real clock: each is due again as soon as a pass has handled it, so
/// from the second pass on it is caught up as far behind, two records a pass, and the driver
/// pauses between passes. Walked fire time by fire time, each pass would write about five
/// hundred records for the non-coalescing one, and unpaused passes would write without end.
#[tokio::test]
async fn jobs_firing_faster_than_passes_stay_bounded() {
    let app = TestApp::spawn("").await;
    for (id, coalesce) in [("fast", true), ("fast-nc", false)] {
        add(
            &app,
            json!({"id": id, "trigger": "interval", "seconds": 0.0002, "coalesce": coalesce}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The first pass walks the fire times due since the add one by one, as long as there are
    // at most MAX_DUE_RUN_TIMES (how many depends on how soon it runs: on a loaded host tens
    // of milliseconds, hundreds of fire times); every later pass adds two records at most and
    // is followed by the driver's 100 ms pause, so 1.5 s holds about fifteen of them. Walked
    // fire time by fire time, every pass would add some five hundred.
    let bound = MAX_DUE_RUN_TIMES + 2 * (1500 / 100 + 2);
    for id in ["fast", "fast-nc"] {
        let records = app
            .scheduler
            .get_runs(&JobId::from(id), 100_000, None)
            .await
            .unwrap();
        assert!(
            records.len() <= bound,
            "{id}: {} records in 1.5 s",
            records.len()
        );
        let summaries = records
            .iter()
            .filter(|run| {
                run.reason
                    .as_deref()
                    .is_some_and(|reason| reason.contains("due again as soon as a pass"))
            })
            .count();
        assert!(summaries > 0, "{id}: {records:#?}");
    }
    change_then_delete(&app, "fast").await;
    change_then_delete(&app, "fast-nc").await;
    app.stop().await;
}

/// A write issued while a pass decides a batch of far-behind jobs (the trigger computation)
/// answers before that pass commits anything: the pass holds no lock while it decides.
#[tokio::test]
async fn a_write_during_a_pass_answers_before_the_pass_commits() {
    let dir = project_dir();
    let (app, _clock) = stopped_daemon(dir.path()).await;
    let first = t0() - TimeDelta::days(1000);
    for i in 0..256 {
        add(
            &app,
            json!({"id": format!("cron{i:03}"), "trigger": "cron", "second": "*",
                   "next_run_time": first.to_rfc3339()}),
        )
        .await;
    }
    let mut events = start(&app).await;
    add(
        &app,
        json!({"id": "meanwhile", "trigger": "interval", "minutes": 1}),
    )
    .await;
    let (status, body) = promptly(
        "PATCH",
        app.patch("/jobs/cron000", json!({"name": "renamed"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(
                event,
                SchedulerEvent::JobMissed { .. } | SchedulerEvent::JobSubmitted { .. }
            ),
            "the writes were answered before the pass committed its batch: {event:?}"
        );
    }
    // The PATCHed job was left out of that commit (its version changed) and decided again.
    summary_of(&mut events, "cron000", first).await;
    let runs = runs(&app, "cron000").await;
    assert_eq!(runs.len(), 2, "{runs:#?}");
    app.stop().await;
}

/// The real binary, killed with SIGKILL while a microsecond interval a day behind fires, and
/// restarted on the same database: it answers at once, and the job can be deleted.
#[tokio::test]
async fn a_restart_with_a_far_behind_job_answers_at_once() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut child = start_binary(dir.path(), port).await;
    let day_back = (Utc::now() - TimeDelta::days(1))
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let body = json!({"id": "usday", "func": "task:success", "args": ["test.py"],
                      "trigger": "interval", "seconds": 0.000001, "next_run_time": day_back});
    let (status, job) = promptly("POST", call(port, Method::POST, "/jobs", Some(body))).await;
    assert_eq!(status, 200, "{job}");
    let other = json!({"id": "other", "func": "task:success", "args": ["test.py"],
                       "trigger": "interval", "minutes": 1});
    let (status, _) = promptly("POST", call(port, Method::POST, "/jobs", Some(other))).await;
    assert_eq!(status, 200);
    // It fires meanwhile, a pass at a time (a pause between passes), with bounded records.
    let mut summary = None;
    for _ in 0..100 {
        let (_, runs) = promptly(
            "GET runs",
            call(port, Method::GET, "/jobs/usday/runs?limit=500", None),
        )
        .await;
        summary = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|run| run["scheduled_run_time"] == json!(day_back))
            .cloned();
        if summary.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = summary.expect("the day's fire times are summarised");
    assert!(
        summary["reason"]
            .as_str()
            .unwrap()
            .contains(" fire times from "),
        "{summary}"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let mut child = start_binary(dir.path(), port).await;
    let (status, _) = promptly("DELETE", call(port, Method::DELETE, "/jobs/usday", None)).await;
    assert_eq!(status, 204);
    let (status, _) = promptly("GET", call(port, Method::GET, "/jobs/usday", None)).await;
    assert_eq!(status, 404);
    let (_, runs) = call(port, Method::GET, "/jobs/usday/runs?limit=500", None).await;
    assert!(
        runs.as_array().unwrap().len() < 500,
        "records stay bounded: {} of them",
        runs.as_array().unwrap().len()
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    wait_exit(&mut child);
    kill_scripts_under(dir.path());
}
