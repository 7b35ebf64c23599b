//! `tickd import --from URL` (issue 18, point 4) against a real Flask-APScheduler: the
//! benchmark's copy of the original platform (`bench/original/app.py`), started from a
//! Python with its pinned stack, which `TICKD_TEST_ORIGINAL_PYTHON` names (CI makes one from
//! `bench/original/requirements.txt`). Without it the test is ignored, saying so.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::DateTime;
use serde_json::{Value, json};

use crate::common::daemon::{answering, call, free_port, stop, tickd, write_config};
use crate::common::project_dir;
use crate::common::setup::required;

/// The original, started in `dir` (its SQLite job store there) on `port`.
fn original(python: &str, dir: &Path, port: u16) -> Child {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/original/app.py");
    Command::new(python)
        .arg(app)
        .current_dir(dir)
        // Its function jobs' modules, as the original platform's own package would be.
        .env("PYTHONPATH", dir.join("workspace"))
        .env("ORIGINAL_PORT", port.to_string())
        .env(
            "ORIGINAL_DB_URL",
            format!("sqlite:///{}", dir.join("original.sqlite").display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `tickd import` with `args`; its exit success and standard output.
fn import(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = tickd(dir)
        .arg("import")
        .args(args)
        .env("TICKD_IMPORT_USER", "guest")
        .env("TICKD_IMPORT_PASSWORD", "guest")
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty() || !output.status.success(), "{stderr}");
    (output.status.success(), stdout + &stderr)
}

/// The instant of an ISO time, to compare fire times shown in different zones.
fn instant(value: &Value) -> Option<DateTime<chrono::Utc>> {
    value
        .as_str()
        .map(|text| DateTime::parse_from_rfc3339(text).unwrap().to_utc())
}

#[tokio::test]
#[cfg_attr(
    not(tickd_test_original),
    ignore = "needs a Python with bench/original/requirements.txt: set TICKD_TEST_ORIGINAL_PYTHON \
              (.ci/run makes one)"
)]
async fn jobs_move_over_from_a_running_flask_apscheduler() {
    let python = required("TICKD_TEST_ORIGINAL_PYTHON");
    let dir = project_dir();
    // A module both sides can import: the original from its PYTHONPATH, tickd from its
    // workspace, where a function job's module must be.
    std::fs::write(
        dir.path().join("workspace/reports.py"),
        "def send(team, copies=1):\n    return {'team': team, 'copies': copies}\n",
    )
    .unwrap();
    let original_port = free_port();
    let mut original = original(&python, dir.path(), original_port);
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(format!("http://127.0.0.1:{original_port}/scheduler"))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the original did not start");

    let jobs = [
        json!({"id": "cron1", "name": "Nightly", "func": "task:success", "args": ["test.py", 1],
               "trigger": "cron", "minute": "*/5", "hour": "1-3",
               "misfire_grace_time": 30, "max_instances": 2}),
        json!({"id": "every", "func": "task:success", "args": ["test.py"], "trigger": "interval",
               "minutes": 90, "start_date": "2030-01-01T00:00:00+00:00"}),
        json!({"id": "once", "func": "task:success", "args": ["echo.py"], "trigger": "date",
               "run_date": "2031-05-01T12:00:00+00:00", "misfire_grace_time": null}),
        json!({"id": "paused", "func": "task:success", "args": ["test.py"], "trigger": "interval",
               "seconds": 30, "next_run_time": null}),
        json!({"id": "gone", "func": "task:success", "args": ["gone.py"], "trigger": "interval",
               "seconds": 30}),
        json!({"id": "report", "func": "reports:send", "args": ["ops"], "kwargs": {"copies": 2},
               "trigger": "interval", "hours": 6}),
    ];
    // The original answers on the same routes with the same credentials (guest/guest) as a
    // test daemon: one helper calls both.
    for job in &jobs {
        let (status, answer) = call(
            original_port,
            reqwest::Method::POST,
            "/jobs",
            Some(job.clone()),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    let (_, theirs) = call(original_port, reqwest::Method::GET, "/jobs", None).await;
    let theirs = theirs.as_array().unwrap().clone();

    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = tickd(dir.path()).spawn().unwrap();
    assert!(answering(port).await.is_some());
    let from = format!("http://127.0.0.1:{original_port}/scheduler");

    // A dry run creates nothing and says what it would do.
    let (ok, said) = import(
        dir.path(),
        &[
            "--from",
            &from,
            "--user",
            "guest",
            "--password",
            "guest",
            "--dry-run",
        ],
    );
    assert!(ok, "{said}");
    assert!(
        said.contains("would create cron1: cron, next run"),
        "{said}"
    );
    assert!(
        said.contains("would create paused: interval, paused"),
        "{said}"
    );
    let (_, ours) = call(port, reqwest::Method::GET, "/jobs", None).await;
    assert_eq!(ours, json!([]), "a dry run creates nothing");

    // Without the original's credentials: a message that says which.
    let (ok, said) = import(dir.path(), &["--from", &from]);
    assert!(!ok);
    assert!(said.contains("--user and --password"), "{said}");

    let (ok, said) = import(
        dir.path(),
        &["--from", &from, "--user", "guest", "--password", "guest"],
    );
    for id in ["cron1", "every", "once", "paused", "report"] {
        assert!(said.contains(&format!("\ncreated {id}: ")), "{said}");
    }
    // The original never looks for a job's script; tickd does, and says why it refused.
    assert!(!ok, "{said}");
    assert!(
        said.contains("not created gone: Script gone.py not found in the workspace (400)"),
        "{said}"
    );
    assert!(
        said.contains("its time zone is not in the original's API: read in UTC"),
        "{said}"
    );

    // The same jobs, field by field; fire times the same instants.
    let (_, ours) = call(port, reqwest::Method::GET, "/jobs", None).await;
    for theirs in theirs.iter().filter(|job| job["id"] != "gone") {
        let id = theirs["id"].as_str().unwrap();
        let (status, ours) = call(port, reqwest::Method::GET, &format!("/jobs/{id}"), None).await;
        assert_eq!(status, 200, "{id}: {ours}");
        for (key, value) in theirs.as_object().unwrap() {
            match key.as_str() {
                "next_run_time" | "start_date" | "end_date" | "run_date" => {
                    assert_eq!(
                        instant(&ours[key]),
                        instant(value),
                        "{id}.{key}: {ours} / {theirs}"
                    );
                }
                _ => assert_eq!(&ours[key], value, "{id}.{key}: {ours} / {theirs}"),
            }
        }
    }
    assert_eq!(ours.as_array().unwrap().len(), 5, "{ours}");
    // The function job runs in tickd as it did in the original, its value kept.
    let (status, run) = call(
        port,
        reqwest::Method::POST,
        "/jobs/report/run?wait=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["result"], json!({"team": "ops", "copies": 2}), "{run}");

    // A second import finds them there: each refused with tickd's reason, nothing changed.
    let (ok, said) = import(
        dir.path(),
        &["--from", &from, "--user", "guest", "--password", "guest"],
    );
    assert!(!ok);
    assert!(
        said.contains("not created cron1: Job cron1 already exists. (409)"),
        "{said}"
    );

    stop(&mut daemon);
    let _ = original.kill();
    let _ = original.wait();
}
