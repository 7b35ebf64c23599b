//! Scheduling rules on an injected clock: misfire_grace_time, coalesce, max_instances and
//! restarts (apscheduler.md §5). The clock is set, never slept on; scripts really run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::{TestApp, project_dir};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tickd::clock::ManualClock;
use tickd::scheduler::SchedulerEvent;
use tokio::sync::broadcast::Receiver;

/// The scheduler is started by the test (a host that is not allowed keeps it stopped at
/// boot), so the test subscribes to events before anything fires.
const MANUAL_START: &str = "[scheduler]\nallowed_hosts = [\"no-such-host\"]\n[executor]\nshutdown_grace = 0.2\nkill_grace = 0.2\n";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap()
}

async fn start(app: &TestApp) -> Receiver<SchedulerEvent> {
    let events = app.scheduler.subscribe();
    let (status, _, _) = app.call(Method::POST, "/start", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    events
}

/// The next event matching `pick`, skipping others; fails after 20 s of silence.
async fn next_event<T>(
    events: &mut Receiver<SchedulerEvent>,
    mut pick: impl FnMut(SchedulerEvent) -> Option<T>,
) -> T {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("no event within 20 s")
            .unwrap();
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

fn config(extra: &str) -> String {
    // `[scheduler]` may appear only once: merge the test's keys into MANUAL_START's table.
    format!("{MANUAL_START}{extra}")
}

#[tokio::test]
async fn runs_missed_while_down_follow_misfire_and_coalesce() {
    let dir = project_dir();
    let clock = Arc::new(ManualClock::new(t0()));
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let _ = start(&app).await;
    let start_date = "2031-05-01T12:00:10+00:00";
    let (status, body) = app
        .post(
            "/jobs",
            json!({"id": "every10", "func": "task:success", "args": ["test.py"],
                   "trigger": "interval", "seconds": 10, "start_date": start_date}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;

    // Down for an hour: 360 runs were missed; with coalesce they collapse into the last
    // (12:59:50... 13:00:00), which is 5 s late and beyond the 1 s grace.
    clock.set(t0() + TimeDelta::seconds(3605));
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let mut events = start(&app).await;
    let missed = next_event(&mut events, |e| match e {
        SchedulerEvent::JobMissed {
            job_id, scheduled, ..
        } => Some((job_id, scheduled)),
        SchedulerEvent::RunStarted { .. } => panic!("a missed run started"),
        _ => None,
    })
    .await;
    assert_eq!(missed.0, "every10");
    assert_eq!(missed.1.to_utc(), t0() + TimeDelta::seconds(3600));
    let (_, job) = app.get("/jobs/every10").await;
    assert_eq!(job["next_run_time"], "2031-05-01T13:00:10+00:00");
    app.stop().await;
}

#[tokio::test]
async fn without_coalesce_every_due_run_is_submitted() {
    let dir = project_dir();
    let clock = Arc::new(ManualClock::new(t0()));
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let mut events = start(&app).await;
    app.post(
        "/jobs",
        json!({"id": "nc", "func": "task:success", "args": ["test.py"], "trigger": "interval",
               "seconds": 10, "start_date": "2031-05-01T12:00:10+00:00",
               "coalesce": false, "misfire_grace_time": null}),
    )
    .await;
    clock.set(t0() + TimeDelta::seconds(35));
    app.scheduler.tick(clock.now_utc()).await.unwrap();
    let mut submitted = Vec::new();
    while submitted.len() < 3 {
        submitted.push(
            next_event(&mut events, |e| match e {
                SchedulerEvent::JobSubmitted { scheduled, .. } => Some(scheduled.to_utc()),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(
        submitted,
        [10, 20, 30].map(|s| t0() + TimeDelta::seconds(s)).to_vec()
    );
    for _ in 0..3 {
        next_event(&mut events, |e| match e {
            SchedulerEvent::RunFinished { .. } => Some(()),
            _ => None,
        })
        .await;
    }
    let (_, job) = app.get("/jobs/nc").await;
    assert_eq!(job["next_run_time"], "2031-05-01T12:00:40+00:00");
    app.stop().await;
}

#[tokio::test]
async fn max_instances_skips_a_run_while_one_is_running() {
    let dir = project_dir();
    let clock = Arc::new(ManualClock::new(t0()));
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let mut events = start(&app).await;
    app.post(
        "/jobs",
        json!({"id": "slow", "func": "task:success", "args": ["slow.py", "30"], "trigger": "interval",
               "seconds": 1, "start_date": "2031-05-01T12:00:01+00:00"}),
    )
    .await;
    clock.set(t0() + TimeDelta::seconds(1));
    app.scheduler.tick(clock.now_utc()).await.unwrap();
    next_event(&mut events, |e| match e {
        SchedulerEvent::RunStarted { job_id, .. } => Some(job_id),
        _ => None,
    })
    .await;
    clock.set(t0() + TimeDelta::seconds(2));
    app.scheduler.tick(clock.now_utc()).await.unwrap();
    let skipped = next_event(&mut events, |e| match e {
        SchedulerEvent::JobMaxInstances {
            job_id, scheduled, ..
        } => Some((job_id, scheduled)),
        _ => None,
    })
    .await;
    assert_eq!(skipped.0, "slow");
    assert_eq!(skipped.1.to_utc(), t0() + TimeDelta::seconds(2));
    // Run-now is refused too while the one instance runs.
    let (status, body) = app.post("/jobs/slow/run", json!(null)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Stopping the daemon interrupts the slow script after the shutdown grace.
    app.stop().await;
    let finished = next_event(&mut events, |e| match e {
        SchedulerEvent::RunFinished { run, .. } => Some(run.status),
        _ => None,
    })
    .await;
    assert_eq!(finished, tickd::job::RunStatus::Interrupted);
}

#[tokio::test]
async fn jobs_and_their_next_run_time_survive_a_restart() {
    let dir = project_dir();
    let clock = Arc::new(ManualClock::new(t0()));
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let _ = start(&app).await;
    for body in [
        json!({"id": "cron", "func": "task:success", "args": ["test.py"], "trigger": "cron", "hour": 3, "timezone": "Europe/Berlin"}),
        json!({"id": "paused", "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1, "next_run_time": null}),
        json!({"id": "date", "func": "task:success", "args": ["test.py"], "trigger": "date", "run_date": "2032-01-01 00:00:00"}),
    ] {
        assert_eq!(app.post("/jobs", body).await.0, StatusCode::OK);
    }
    let (_, before) = app.get("/jobs").await;
    app.stop().await;
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let _ = start(&app).await;
    let (_, after) = app.get("/jobs").await;
    assert_eq!(before, after);
    assert_eq!(after[0]["next_run_time"], "2031-05-02T03:00:00+02:00");
    app.stop().await;
}
