//! Shadow mode (issue 18, `[scheduler] shadow = true`): the scheduler schedules as usual and
//! runs nothing; each fire, run-now's too, is a `skipped` run with the reason `shadow`. The
//! evidence that nothing ran is the script's own: it writes a file, which never appears.
//! Fire times come from a manual clock, never from waiting.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use common::{TestApp, project_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tickd::clock::ManualClock;

/// Writes `ran.txt` beside itself: the proof that it ran.
const WRITES: &str =
    "import pathlib\npathlib.Path(__file__).with_name('ran.txt').write_text('ran')\n";

/// The runs of `job` once there are `count` of them (bounded wait: the scheduler writes them
/// off the API's path).
async fn runs_of(app: &TestApp, job: &str, count: usize) -> Vec<Value> {
    for _ in 0..400 {
        let (status, runs) = app.get(&format!("/jobs/{job}/runs")).await;
        assert_eq!(status, StatusCode::OK, "{runs}");
        let runs = runs.as_array().cloned().unwrap_or_default();
        if runs.len() >= count {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {count} runs of {job}");
}

#[tokio::test]
async fn shadow_mode_records_every_fire_and_runs_nothing() {
    let dir = project_dir();
    std::fs::write(dir.path().join("workspace/writes.py"), WRITES).unwrap();
    let t0 = Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = TestApp::spawn_in(
        dir.path(),
        "[scheduler]\nallowed_hosts = [\"no-such-host\"]\nshadow = true\n",
        Some(clock.clone()),
    )
    .await;
    let (status, _, _) = app.call(Method::POST, "/start", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, job) = app
        .post(
            "/jobs",
            json!({"id": "w", "func": "task:run_script", "args": ["writes.py"],
                   "trigger": "interval", "seconds": 10,
                   "start_date": "2031-05-01T12:00:10+00:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");

    // Two fire times pass: two records, the schedule advancing as usual.
    for (fire, seconds) in [(1, 10), (2, 20)] {
        clock.set(t0 + TimeDelta::seconds(seconds));
        app.scheduler.tick(clock.now_utc()).await.unwrap();
        let runs = runs_of(&app, "w", fire).await;
        let newest = &runs[0];
        assert_eq!(newest["status"], "skipped", "{newest}");
        assert_eq!(newest["reason"], "shadow", "{newest}");
        assert_eq!(newest["started_at"], Value::Null, "{newest}");
        let scheduled = format!("2031-05-01T12:00:{seconds}+00:00");
        assert_eq!(newest["scheduled_run_time"], scheduled.as_str());
    }
    let (_, job) = app.get("/jobs/w").await;
    assert_eq!(job["next_run_time"], "2031-05-01T12:00:30+00:00", "{job}");

    // Run-now answers as usual, naming a record that ran nothing.
    let (status, headers, run) = app.call(Method::POST, "/jobs/w/run?wait=true", None).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "skipped", "{run}");
    assert_eq!(run["reason"], "shadow", "{run}");
    let location = headers["location"].to_str().unwrap();
    assert!(
        location.ends_with(run["id"].as_str().unwrap()),
        "{location}"
    );
    assert_eq!(runs_of(&app, "w", 3).await.len(), 3);

    // The shadowed fires count as skipped runs.
    let metrics = app
        .client
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tickd_runs_total{job=\"w\",status=\"skipped\"} 3"),
        "{metrics}"
    );
    assert!(
        !dir.path().join("workspace/ran.txt").exists(),
        "the script never ran"
    );
    app.stop().await;
}
