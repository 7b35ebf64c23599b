//! Scheduling rules on an injected clock: misfire_grace_time, coalesce, max_instances and
//! restarts (apscheduler.md §5). The clock is set, never slept on; scripts really run.

use crate::common;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::scheduling::{CapturedLog, manual_start as config, next_event, start};
use common::{TestApp, project_dir};
use reqwest::StatusCode;
use serde_json::json;
use tickd::clock::ManualClock;
use tickd::scheduler::SchedulerEvent;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap()
}

/// Adds `every10` (every 10 s from 12:00:10) at [`t0`] to a daemon in `dir`, then stops
/// the daemon.
async fn every10_then_down(dir: &std::path::Path, clock: &Arc<ManualClock>) {
    let app = TestApp::spawn_in(dir, &config(""), Some(clock.clone())).await;
    let _ = start(&app).await;
    let (status, body) = app
        .post(
            "/jobs",
            json!({"id": "every10", "func": "task:success", "args": ["test.py"],
                   "trigger": "interval", "seconds": 10, "start_date": "2031-05-01T12:00:10+00:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn runs_missed_while_down_follow_misfire_and_coalesce() {
    let dir = project_dir();
    let clock = Arc::new(ManualClock::new(t0()));
    every10_then_down(dir.path(), &clock).await;

    // Down for an hour: 360 runs were missed; with coalesce they collapse into the last
    // (12:59:50... 13:00:00), which is 5 s late and beyond the 1 s grace.
    clock.set(t0() + TimeDelta::seconds(3605));
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let mut events = start(&app).await;
    // The fire times folded into the last are recorded `missed` too; the last one misses
    // its grace and never starts.
    let last = t0() + TimeDelta::seconds(3600);
    let mut folded = 0;
    loop {
        let scheduled = next_event(&mut events, |e| match e {
            SchedulerEvent::JobMissed {
                job_id, scheduled, ..
            } if job_id == "every10" => Some(scheduled.to_utc()),
            SchedulerEvent::RunStarted { .. } => panic!("a missed run started"),
            _ => None,
        })
        .await;
        if scheduled == last {
            break;
        }
        folded += 1;
    }
    assert_eq!(
        folded, 100,
        "the newest 100 coalesced fire times are recorded"
    );
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

#[tokio::test]
async fn an_undecodable_row_is_kept_and_the_others_still_answer() {
    let dir = project_dir();
    let clock = Arc::new(ManualClock::new(t0()));
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let _ = start(&app).await;
    app.post(
        "/jobs",
        json!({"id": "good", "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1}),
    )
    .await;
    app.stop().await;
    // A row a future (or broken) tickd wrote: due now, state unreadable.
    let db = dir.path().join("tickd.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO tickd_jobs (id, next_run_time, job_state) VALUES ('bad', 0, '{\"version\": 99}')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let _ = start(&app).await;
    app.scheduler.tick(clock.now_utc()).await.unwrap();
    let (status, jobs) = app.get("/jobs").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["good"]);
    app.stop().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (state, next): (String, Option<i64>) =
        sqlx::query_as("SELECT job_state, next_run_time FROM tickd_jobs WHERE id = 'bad'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, "{\"version\": 99}", "the row is kept as it was");
    assert_eq!(next, None, "and parked, so it cannot spin the scheduler");
    pool.close().await;
}

#[tokio::test]
async fn config_jobs_are_upserted_at_start() {
    let dir = project_dir();
    let jobs = "[[jobs]]\nid = \"job13\"\nfunc = \"task:success\"\nargs = [\"workspace/test.py\"]\ntrigger = \"interval\"\nseconds = 10\n\
                [[jobs]]\nid = \"fresh\"\nfunc = \"task:success\"\nargs = [\"test.py\"]\ntrigger = \"interval\"\nminutes = 5\nreplace_existing = true\n";
    let clock = Arc::new(ManualClock::new(t0()));
    let app = TestApp::spawn_in(dir.path(), jobs, Some(clock.clone())).await;
    let (_, job13) = app.get("/jobs/job13").await;
    assert_eq!(job13["next_run_time"], "2031-05-01T12:00:10+00:00");
    assert_eq!(app.get("/jobs/fresh").await.1["minutes"], 5);
    app.stop().await;
    // Restarted later: job13 (no replace_existing) keeps its stored schedule; `fresh` is
    // rewritten from now.
    clock.set(t0() + TimeDelta::seconds(3));
    let app = TestApp::spawn_in(dir.path(), jobs, Some(clock.clone())).await;
    let (_, job13) = app.get("/jobs/job13").await;
    assert_eq!(job13["next_run_time"], "2031-05-01T12:00:10+00:00");
    let (_, fresh) = app.get("/jobs/fresh").await;
    assert_eq!(fresh["next_run_time"], "2031-05-01T12:05:03+00:00");
    app.stop().await;
}

/// A `[[jobs]]` table is read as a `POST P/jobs` body is, by the same parser: a TOML date is
/// the text a body would give (read in the scheduler's zone when it has no offset).
#[tokio::test]
async fn config_jobs_take_toml_dates_as_a_body_takes_their_text() {
    let dir = project_dir();
    let jobs = "[[jobs]]\nid = \"once\"\nfunc = \"task:success\"\nargs = [\"test.py\"]\n\
                run_date = 2031-06-01T08:30:00\n\
                [[jobs]]\nid = \"daily\"\nfunc = \"task:success\"\nargs = [\"test.py\"]\n\
                trigger = \"cron\"\nhour = 9\nstart_date = 2031-07-01T00:00:00+02:00\n";
    let clock = Arc::new(ManualClock::new(t0()));
    let app = TestApp::spawn_in(dir.path(), jobs, Some(clock)).await;
    let (_, once) = app.get("/jobs/once").await;
    assert_eq!(once["run_date"], "2031-06-01T08:30:00+00:00");
    assert_eq!(once["next_run_time"], "2031-06-01T08:30:00+00:00");
    let (_, daily) = app.get("/jobs/daily").await;
    assert_eq!(daily["start_date"], "2031-07-01T00:00:00+02:00");
    assert_eq!(daily["next_run_time"], "2031-07-01T09:00:00+00:00");
    app.stop().await;
}

/// Down three minutes with a job every 10 s: the restart's misfire line says how late the
/// earliest missed fire time is (3 min 6 s), not the last one's 6 s, and how many fire
/// times were missed.
#[tokio::test]
async fn the_misfire_line_after_downtime_gives_the_real_lateness() {
    let log = CapturedLog::default();
    let _capture = log.install();
    let dir = project_dir();
    let clock = Arc::new(ManualClock::new(t0()));
    every10_then_down(dir.path(), &clock).await;

    // 12:03:16.15: 19 fire times (12:00:10 ... 12:03:10) are due, coalesced into the last,
    // which is 6.15 s late, beyond the 1 s grace.
    clock.set(t0() + TimeDelta::milliseconds(196_150));
    let app = TestApp::spawn_in(dir.path(), &config(""), Some(clock.clone())).await;
    let mut events = start(&app).await;
    let last = t0() + TimeDelta::seconds(190);
    next_event(&mut events, |e| match e {
        SchedulerEvent::JobMissed { scheduled, .. } if scheduled.to_utc() == last => Some(()),
        _ => None,
    })
    .await;
    app.stop().await;
    let text = log.text();
    let missed: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("Run time of job"))
        .collect();
    assert_eq!(missed.len(), 1, "one line per job and pass: {missed:#?}");
    assert!(
        missed[0].contains(
            "Run time of job \"every10 (trigger: interval, next run at: 2031-05-01 12:03:20 +00:00)\" \
             was missed by 0:03:06.150000 \
             (19 fire times from 2031-05-01 12:00:10 +00:00 to 2031-05-01 12:03:10 +00:00)"
        ),
        "{}",
        missed[0]
    );
    assert!(missed[0].contains(" WARN "), "{}", missed[0]);
}
