//! The REST API over a bound port with a real client, a real SQLite file and real scripts:
//! Flask-APScheduler's exchanges (flask_apscheduler.md §1, §10) and CONTRACT §2's deliberate
//! differences, marked `DIFFERENCE`.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{TestApp, err};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn job(id: &str, extra: Value) -> Value {
    let mut body = json!({"id": id, "func": "task:success", "args": ["workspace/test.py"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// An error in the API's envelope: `application/json`, with `error_message` alone, which
/// starts with `start`.
fn assert_envelope(headers: &HeaderMap, body: &Value, start: &str) {
    assert_eq!(headers["content-type"], "application/json", "{body}");
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 1, "only error_message: {body}");
    let message = object["error_message"].as_str().unwrap();
    assert!(
        message.starts_with(start),
        "{message:?} should start with {start:?}"
    );
}

fn parse_time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .to_utc()
}

#[tokio::test]
async fn info_pause_resume_start() {
    let app = TestApp::spawn("").await;
    let (status, info) = app.get("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&info), ["allowed_hosts", "current_host", "running"]);
    assert_eq!(info["allowed_hosts"], json!(["*"]));
    assert_eq!(info["running"], json!(true));
    let host = info["current_host"].as_str().unwrap();
    assert!(!host.is_empty() && host == host.to_lowercase());
    // As JSON, its keys in the reference's order.
    let (_, headers, text) = app.call_raw(Method::GET, "", "").await;
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        text,
        format!(r#"{{"allowed_hosts":["*"],"current_host":"{host}","running":true}}"#)
    );

    assert_eq!(app.get("/jobs").await, (StatusCode::OK, json!([])));
    for path in ["/pause", "/pause", "/resume", "/resume"] {
        let (status, _, body) = app.call(Method::POST, path, None).await;
        assert_eq!(
            (status, body),
            (StatusCode::NO_CONTENT, Value::Null),
            "{path}"
        );
        // Paused, the scheduler still reports running (reference §1.3.1).
        assert_eq!(app.get("").await.1["running"], json!(true), "{path}");
    }
    // DIFFERENCE: CONTRACT §2.1 (the reference answers 400 here too).
    assert_eq!(
        app.post("/start", json!({})).await,
        (StatusCode::BAD_REQUEST, err("Scheduler is already running"))
    );
    app.stop().await;
}

#[tokio::test]
async fn add_interval_job_echoes_the_reference_shape() {
    let app = TestApp::spawn("").await;
    let before = Utc::now();
    let (status, headers, body) = app
        .call(
            Method::POST,
            "/jobs",
            Some(job("job1", json!({"trigger": "interval", "minutes": 10}))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        keys(&body),
        [
            "args",
            "func",
            "id",
            "kwargs",
            "max_instances",
            "minutes",
            "misfire_grace_time",
            "name",
            "next_run_time",
            "start_date",
            "trigger"
        ]
    );
    assert_eq!(body["name"], "job1");
    assert_eq!(body["misfire_grace_time"], 1);
    assert_eq!(body["max_instances"], 1);
    assert_eq!(body["next_run_time"], body["start_date"]);
    let next = parse_time(&body["next_run_time"]);
    assert!(next >= before + Duration::seconds(599) && next <= Utc::now() + Duration::seconds(601));

    assert_eq!(
        app.post(
            "/jobs",
            job("job1", json!({"trigger": "interval", "minutes": 10}))
        )
        .await,
        (StatusCode::CONFLICT, err("Job job1 already exists."))
    );
    let (status, body) = app
        .post(
            "/jobs",
            job(
                "job1",
                json!({"trigger": "interval", "minutes": 20, "replace_existing": true}),
            ),
        )
        .await;
    assert_eq!(
        (status, body["minutes"].clone()),
        (StatusCode::OK, json!(20))
    );
    app.stop().await;
}

#[tokio::test]
async fn add_date_cron_and_legacy_jobs() {
    let app = TestApp::spawn("").await;
    let (_, d2) = app
        .post(
            "/jobs",
            job(
                "d2",
                json!({"trigger": "date", "run_date": "2030-01-02T03:04:05+05:30"}),
            ),
        )
        .await;
    assert_eq!(d2["run_date"], "2030-01-02T03:04:05+05:30");
    assert_eq!(d2["next_run_time"], "2030-01-02T03:04:05+05:30");
    assert!(d2.get("start_date").is_none());
    let (_, d3) = app
        .post(
            "/jobs",
            job(
                "d3",
                json!({"trigger": "date", "run_date": "2030-01-02 03:04:05"}),
            ),
        )
        .await;
    assert_eq!(d3["run_date"], "2030-01-02T03:04:05+00:00");

    let (status, c1) = app
        .post(
            "/jobs",
            job("c1", json!({"trigger": "cron", "minute": "*/5", "hour": "8-18", "day_of_week": "mon-fri"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c1}");
    assert_eq!(
        (c1["minute"].clone(), c1["hour"].clone()),
        (json!("*/5"), json!("8-18"))
    );
    for absent in [
        "second",
        "year",
        "month",
        "day",
        "week",
        "start_date",
        "end_date",
    ] {
        assert!(c1.get(absent).is_none(), "{absent} in {c1}");
    }
    assert!(c1["next_run_time"].as_str().unwrap().contains(":00+00:00"));

    let (_, c2) = app
        .post(
            "/jobs",
            job(
                "c2",
                json!({"trigger": "cron", "second": 30, "day_of_week": "MON"}),
            ),
        )
        .await;
    assert_eq!(
        (c2["second"].clone(), c2["day_of_week"].clone()),
        (json!("30"), json!("mon"))
    );

    let (_, i90) = app
        .post(
            "/jobs",
            job("i90", json!({"trigger": "interval", "seconds": 90})),
        )
        .await;
    assert_eq!(
        (i90["minutes"].clone(), i90["seconds"].clone()),
        (json!(1), json!(30))
    );
    assert!(i90.get("hours").is_none());

    let (_, iall) = app
        .post(
            "/jobs",
            job(
                "iall",
                json!({"trigger": "interval", "weeks": 1, "days": 2, "hours": 3, "minutes": 4,
                       "seconds": 5, "start_date": "2030-01-01 10:00:00",
                       "end_date": "2031-01-01T00:00:00+02:00"}),
            ),
        )
        .await;
    assert_eq!(iall["start_date"], "2030-01-01T10:00:00+00:00");
    assert_eq!(iall["next_run_time"], iall["start_date"]);
    assert_eq!(iall["end_date"], "2031-01-01T00:00:00+02:00");

    let (_, i0) = app
        .post("/jobs", job("i0", json!({"trigger": "interval"})))
        .await;
    assert_eq!(i0["seconds"], 1);

    let (_, legacy) = app
        .post(
            "/jobs",
            job(
                "legacy",
                json!({"trigger": {"type": "cron", "minute": "*/5"}}),
            ),
        )
        .await;
    assert_eq!(
        (legacy["trigger"].clone(), legacy["minute"].clone()),
        (json!("cron"), json!("*/5"))
    );

    let (_, p0) = app
        .post(
            "/jobs",
            job(
                "p0",
                json!({"trigger": "interval", "hours": 1, "next_run_time": null}),
            ),
        )
        .await;
    assert_eq!(p0["next_run_time"], Value::Null);

    let (_, opts) = app
        .post(
            "/jobs",
            job(
                "opts",
                json!({"name": "My job", "kwargs": {"x": 42}, "trigger": "interval", "hours": 1,
                       "misfire_grace_time": 30, "max_instances": 3, "coalesce": false}),
            ),
        )
        .await;
    assert_eq!(opts["name"], "My job");
    assert_eq!(opts["kwargs"], json!({"x": 42}));
    assert_eq!(
        (
            opts["misfire_grace_time"].clone(),
            opts["max_instances"].clone()
        ),
        (json!(30), json!(3))
    );
    for absent in ["coalesce", "executor", "jobstore", "timezone"] {
        assert!(opts.get(absent).is_none());
    }

    // The list: by next fire instant, paused last.
    let (_, list) = app.get("/jobs").await;
    let list = list.as_array().unwrap();
    let times: Vec<Option<DateTime<Utc>>> = list
        .iter()
        .map(|j| (!j["next_run_time"].is_null()).then(|| parse_time(&j["next_run_time"])))
        .collect();
    let first_null = times.iter().position(Option::is_none).unwrap();
    assert!(times[first_null..].iter().all(Option::is_none));
    assert!(times[..first_null].windows(2).all(|w| w[0] <= w[1]));
    app.stop().await;
}

#[tokio::test]
async fn unicode_ids_and_bodies_without_content_type() {
    let app = TestApp::spawn("").await;
    let (status, body) = app
        .post(
            "/jobs",
            job(
                "uni-任务",
                json!({"name": "名字", "trigger": "interval", "hours": 3}),
            ),
        )
        .await;
    assert_eq!(
        (status, body["id"].clone()),
        (StatusCode::OK, json!("uni-任务"))
    );
    let (status, body) = app.get("/jobs/uni-%E4%BB%BB%E5%8A%A1").await;
    assert_eq!(
        (status, body["name"].clone()),
        (StatusCode::OK, json!("名字"))
    );

    let response = app
        .client
        .post(app.url("/jobs"))
        .body(job("noct", json!({"trigger": "interval", "hours": 1})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn add_errors_are_400_with_the_reference_texts_and_leave_nothing() {
    let app = TestApp::spawn("").await;
    let cases = [
        (
            json!({"func": "task:success", "trigger": "interval", "hours": 1}),
            "add_job() missing 1 required positional argument: 'id'",
        ),
        (
            job("bid", json!({"id": 5, "trigger": "interval", "hours": 1})),
            "id must be a nonempty string",
        ),
        (
            job("bf1", json!({"func": "tests.test_api.job1"})),
            "Invalid reference",
        ),
        (
            job("bt", json!({"trigger": "weekly"})),
            "No trigger by the name \"weekly\" was found",
        ),
        (
            job("bc", json!({"trigger": "cron", "minute": "61"})),
            "Error validating expression '61': the last value (61) is higher than the maximum value (59)",
        ),
        (
            job("bw", json!({"trigger": "cron", "day_of_week": "funday"})),
            "Invalid weekday name \"funday\"",
        ),
        (
            job(
                "bm",
                json!({"trigger": "interval", "hours": 1, "max_instances": 0}),
            ),
            "max_instances must be a positive integer",
        ),
        (
            job(
                "bg",
                json!({"trigger": "interval", "hours": 1, "misfire_grace_time": -1}),
            ),
            "misfire_grace_time must be either None or a positive integer",
        ),
        (
            job(
                "bn",
                json!({"trigger": "interval", "hours": 1, "next_run_time": "May 5 2030"}),
            ),
            "Invalid date string",
        ),
    ];
    // DIFFERENCE: CONTRACT §2.1 — the reference answers these with 500.
    for (body, text) in cases {
        assert_eq!(
            app.post("/jobs", body.clone()).await,
            (StatusCode::BAD_REQUEST, err(text)),
            "{body}"
        );
    }
    let (status, body) = app
        .post("/jobs", job("bf2", json!({"func": "nosuchmod:job1"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .starts_with("Error resolving reference nosuchmod:job1: ")
    );
    let (status, body) = app
        .post(
            "/jobs",
            job("bx", json!({"trigger": "interval", "hours": 1, "foo": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .contains("unexpected keyword argument 'foo'")
    );
    let (status, body) = app
        .post("/jobs", job("bs", json!({"args": ["workspace/nope.py"]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .post("/jobs", job("be", json!({"args": ["../etc/passwd"]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .post(
            "/jobs",
            job("neg", json!({"trigger": "interval", "minutes": -5})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "DIFFERENCE: CONTRACT §2.4 {body}"
    );

    // Bodies that are not job objects.
    let (status, headers, body) = app.call(Method::POST, "/jobs", Some(json!([1, 2]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&headers, &body, "");
    assert!(!body["error_message"].as_str().unwrap().is_empty());
    // DIFFERENCE: CONTRACT §2.2 (the reference answers an HTML page).
    let (status, headers, text) = app
        .call_raw(Method::POST, "/jobs", "this is not json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(
        &headers,
        &serde_json::from_str(&text).unwrap(),
        "Invalid JSON body: ",
    );

    assert_eq!(
        app.get("/jobs").await,
        (StatusCode::OK, json!([])),
        "failed adds leave nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn get_patch_pause_resume_run_delete() {
    let app = TestApp::spawn("").await;
    let (_, created) = app
        .post(
            "/jobs",
            job("job1", json!({"trigger": "interval", "minutes": 10})),
        )
        .await;
    assert_eq!(
        app.get("/jobs/job1").await,
        (StatusCode::OK, created.clone())
    );
    let (status, headers, body) = app.call(Method::GET, "/jobs/nope", None).await;
    assert_eq!(
        (status, &body),
        (StatusCode::NOT_FOUND, &err("Job nope not found"))
    );
    assert_envelope(&headers, &body, "Job nope not found");

    let (status, body) = app
        .patch("/jobs/job1", json!({"name": "renamed", "args": ["test.py", "x"], "max_instances": 2, "misfire_grace_time": 60}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["next_run_time"], created["next_run_time"]);
    assert_eq!(body["trigger"], "interval");

    let future = (Utc::now() + Duration::days(366))
        .format("%Y-%m-%d")
        .to_string();
    let (status, body) = app
        .patch(
            "/jobs/job1",
            json!({"args": ["test.py"], "trigger": "cron", "minute": "*/1", "start_date": future}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["start_date"], format!("{future}T00:00:00+00:00"));
    assert_eq!(body["next_run_time"], body["start_date"]);
    assert!(body.get("minutes").is_none());

    // DIFFERENCE: CONTRACT §2.1 (500 in the reference) and §2.3 (atomic).
    let before = app.get("/jobs/job1").await.1;
    for (patch, text) in [
        (
            json!({"hours": 2}),
            "The following are not modifiable attributes of Job: hours",
        ),
        (
            json!({"trigger": "invalid_trigger"}),
            "Trigger invalid_trigger is not supported.",
        ),
        (
            json!({"trigger": "cron", "minute": 5, "foo": 1}),
            "The following are not modifiable attributes of Job: foo",
        ),
    ] {
        assert_eq!(
            app.patch("/jobs/job1", patch.clone()).await,
            (StatusCode::BAD_REQUEST, err(text)),
            "{patch}"
        );
    }
    let (status, body) = app.patch("/jobs/job1", json!({"id": "other"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .contains("multiple values for argument 'id'")
    );
    assert_eq!(
        app.get("/jobs/job1").await.1,
        before,
        "a refused PATCH changes nothing"
    );
    assert_eq!(
        app.patch("/jobs/nope", json!({"name": "x"})).await,
        (StatusCode::NOT_FOUND, err("Job nope not found"))
    );
    // The body is read before the job is looked up.
    let (status, headers, text) = app.call_raw(Method::PATCH, "/jobs/nope", "garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(
        &headers,
        &serde_json::from_str(&text).unwrap(),
        "Invalid JSON body: ",
    );

    let (_, body) = app
        .patch("/jobs/job1", json!({"next_run_time": null}))
        .await;
    assert_eq!(body["next_run_time"], Value::Null);
    let (_, body) = app
        .patch("/jobs/job1", json!({"trigger": "interval", "hours": 2}))
        .await;
    assert!(!body["next_run_time"].is_null(), "a reschedule unpauses");
    let (status, same) = app.patch("/jobs/job1", json!({})).await;
    assert_eq!((status, &same), (StatusCode::OK, &body));

    for _ in 0..2 {
        let (status, body) = app.post("/jobs/job1/pause", json!(null)).await;
        assert_eq!(
            (status, body["next_run_time"].clone()),
            (StatusCode::OK, Value::Null)
        );
    }
    let (status, body) = app.post("/jobs/job1/resume", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(parse_time(&body["next_run_time"]) > Utc::now());
    for action in ["pause", "resume", "run"] {
        assert_eq!(
            app.post(&format!("/jobs/nope/{action}"), json!(null)).await,
            (StatusCode::NOT_FOUND, err("Job nope not found"))
        );
    }
    let (status, headers, ran) = app.call(Method::POST, "/jobs/job1/run", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ran["next_run_time"], body["next_run_time"]);
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/scheduler/runs/")
    );

    let (_, dead) = app
        .post(
            "/jobs",
            job(
                "dead",
                json!({"trigger": "cron", "minute": 0, "end_date": "2001-01-01"}),
            ),
        )
        .await;
    assert_eq!(dead["next_run_time"], Value::Null);
    // A job with no fire time left resumes to the JSON `null`, and is gone.
    let (status, headers, text) = app.call_raw(Method::POST, "/jobs/dead/resume", "").await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "null"));
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(app.get("/jobs/dead").await.0, StatusCode::NOT_FOUND);

    assert_eq!(
        app.delete("/jobs/job1").await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    assert_eq!(app.get("/jobs/job1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete("/jobs/job1").await,
        (StatusCode::NOT_FOUND, err("Job job1 not found"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_job_without_trigger_runs_now_and_is_removed() {
    let app = TestApp::spawn("").await;
    let mut events = app.scheduler.subscribe();
    let (status, body) = app.post("/jobs", job("now1", json!({}))).await;
    assert_eq!(
        (status, body["trigger"].clone()),
        (StatusCode::OK, json!("date"))
    );
    loop {
        if let tickd::scheduler::SchedulerEvent::RunFinished { job_id, .. } =
            events.recv().await.unwrap()
        {
            assert_eq!(job_id, "now1");
            break;
        }
    }
    assert_eq!(app.get("/jobs/now1").await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_and_start_keep_jobs() {
    let app = TestApp::spawn("").await;
    app.post(
        "/jobs",
        job("keep", json!({"trigger": "interval", "hours": 1})),
    )
    .await;
    let (status, _, text) = app
        .call_raw(Method::POST, "/shutdown", r#"{"wait": false}"#)
        .await;
    assert_eq!((status, text.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_eq!(app.get("").await.1["running"], json!(false));
    assert_eq!(app.get("/jobs").await, (StatusCode::OK, json!([])));
    assert_eq!(
        app.post("/shutdown", json!({})).await,
        (StatusCode::BAD_REQUEST, err("Scheduler is not running"))
    );
    // shutdown reads its body leniently: garbage gets the state's answer too.
    let (status, headers, text) = app.call_raw(Method::POST, "/shutdown", "garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body, err("Scheduler is not running"));
    assert_envelope(&headers, &body, "Scheduler is not running");
    assert_eq!(
        app.post("/pause", json!({})).await,
        (StatusCode::BAD_REQUEST, err("Scheduler is not running"))
    );
    assert_eq!(
        app.post("/resume", json!({})).await,
        (StatusCode::BAD_REQUEST, err("Scheduler is not running"))
    );
    let (status, pend) = app
        .post(
            "/jobs",
            job("pend", json!({"trigger": "interval", "hours": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for absent in ["next_run_time", "misfire_grace_time", "max_instances"] {
        assert!(pend.get(absent).is_none(), "pending job shows {absent}");
    }
    let (status, _, text) = app.call_raw(Method::POST, "/start", "").await;
    assert_eq!((status, text.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_eq!(app.get("").await.1["running"], json!(true));
    let (_, jobs) = app.get("/jobs").await;
    let ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    // DIFFERENCE: CONTRACT §2.6 — the reference's memory store forgets `keep` at shutdown.
    assert_eq!(ids.len(), 2, "{jobs}");
    assert!(ids.contains(&"keep") && ids.contains(&"pend"));
    for job in jobs.as_array().unwrap() {
        assert_eq!(job["misfire_grace_time"], 1);
        assert!(job["next_run_time"].is_string());
    }
    app.stop().await;
}

#[tokio::test]
async fn basic_auth_guards_every_route() {
    let app = TestApp::spawn(
        "[auth]\nenabled = true\n[[auth.users]]\nusername = \"guest\"\npassword = \"gu:est\"\n",
    )
    .await;
    let url = app.url("");
    let denied = |response: reqwest::Response| async move {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"Authentication Required\""
        );
        assert_eq!(response.text().await.unwrap(), "Access Denied");
    };
    denied(app.client.get(&url).send().await.unwrap()).await;
    for header in ["Basic Z3Vlc3Q6d3Jvbmc=", "Basic 1231234", "Bearer abc"] {
        denied(
            app.client
                .get(&url)
                .header("authorization", header)
                .send()
                .await
                .unwrap(),
        )
        .await;
    }
    denied(
        app.client
            .post(app.url("/jobs"))
            .body("garbage")
            .send()
            .await
            .unwrap(),
    )
    .await;
    denied(
        app.client
            .get(app.url("/no/such/route"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // "guest:gu:est" — a password may hold ':'; the scheme is case-insensitive.
    let ok = "Z3Vlc3Q6Z3U6ZXN0";
    for scheme in ["Basic", "basic"] {
        let response = app
            .client
            .get(&url)
            .header("authorization", format!("{scheme} {ok}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        app.get("/jobs/none").await,
        (StatusCode::NOT_FOUND, err("Job none not found"))
    );
    app.stop().await;
}

/// `[api] prefix` moves every route; a trailing slash names the same prefix, `/` the root.
#[tokio::test]
async fn the_prefix_is_configurable() {
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "/api",
            &["/api", "/api/jobs"],
            &["/scheduler/jobs", "/invalidapi/jobs", "/scheduler"],
        ),
        ("/api/", &["/api", "/api/jobs"], &["/scheduler/jobs"]),
        ("/", &["/", "/jobs"], &["/scheduler/jobs", "/scheduler"]),
    ];
    for (prefix, found, not_found) in cases {
        let app = TestApp::spawn(&format!("[api]\nprefix = \"{prefix}\"\n")).await;
        for path in found.iter().chain(not_found) {
            let url = format!("http://{}{path}", app.addr);
            let response = app.client.get(url).send().await.unwrap();
            let status = response.status();
            if found.contains(path) {
                assert_eq!(status, StatusCode::OK, "{prefix:?}: {path}");
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "{prefix:?}: {path}");
            }
            if path.ends_with("/jobs") && status == StatusCode::OK {
                assert_eq!(response.text().await.unwrap(), "[]", "{prefix:?}: {path}");
            }
        }
        app.stop().await;
    }
}

/// The route table: a wrong method is a 405 naming the methods the path takes, any other path
/// (a trailing slash too) a 404, both in the JSON envelope.
#[tokio::test]
async fn wrong_methods_are_405s_with_allow_and_unknown_paths_404s() {
    let app = TestApp::spawn("").await;
    for (method, path, allow) in [
        (Method::PUT, "/jobs", "GET,HEAD,POST"),
        (Method::GET, "/pause", "POST"),
        (Method::POST, "", "GET,HEAD"),
        (Method::PUT, "/jobs/x", "GET,HEAD,PATCH,DELETE"),
        (Method::GET, "/jobs/x/run", "POST"),
    ] {
        let (status, headers, body) = app.call(method.clone(), path, None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(headers["allow"], allow, "{method} {path}");
        assert_envelope(&headers, &body, "The method is not allowed");
    }
    // DIFFERENCE: CONTRACT §2.2 (the reference answers an HTML page).
    for path in ["/", "/jobs/", "/jobs/x/", "/x"] {
        let (status, headers, body) = app.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_envelope(&headers, &body, "The requested URL was not found");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_original_job13_flow() {
    let app = TestApp::spawn(
        "[auth]\nenabled = true\n[[auth.users]]\nusername = \"guest\"\npassword = \"guest\"\n",
    )
    .await;
    let body = json!({"id": "job13", "func": "task:success", "args": ["workspace/test.py"], "trigger": "interval", "seconds": 10});
    let (status, created) = app.post("/jobs", body).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["seconds"], 10);
    let mut events = app.scheduler.subscribe();
    let (status, _, _) = app.call(Method::POST, "/jobs/job13/run", None).await;
    assert_eq!(status, StatusCode::OK);
    loop {
        if let tickd::scheduler::SchedulerEvent::RunFinished { job_id, run } =
            events.recv().await.unwrap()
        {
            assert_eq!(job_id, "job13");
            assert_eq!(run.status, tickd::job::RunStatus::Succeeded);
            assert!(run.stdout.starts_with("20"), "{:?}", run.stdout);
            break;
        }
    }
    app.stop().await;
}

/// A listing larger than the daemon keeps whole (4 MiB) is written as the store is read:
/// all of it arrives, valid and in order.
#[tokio::test]
async fn a_large_listing_is_streamed_whole_and_in_order() {
    let app = TestApp::spawn("").await;
    let filler = "x".repeat(60_000);
    for n in 0..80 {
        let body = job(
            &format!("big{n:02}"),
            json!({"args": ["workspace/test.py", filler], "trigger": "interval", "days": 1}),
        );
        assert_eq!(app.post("/jobs", body).await.0, StatusCode::OK);
    }
    let (status, listed) = app.get("/jobs").await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 80);
    let keys: Vec<(DateTime<Utc>, &str)> = listed
        .iter()
        .map(|job| {
            (
                parse_time(&job["next_run_time"]),
                job["id"].as_str().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "by next run time, ties by id");
    assert_eq!(listed[5], app.get("/jobs/big05").await.1);
    app.stop().await;
}

/// Reads served from the daemon's cache follow every change at once.
#[tokio::test]
async fn cached_reads_follow_changes() {
    let app = TestApp::spawn("").await;
    let body = job("c", json!({"trigger": "interval", "hours": 1}));
    assert_eq!(app.post("/jobs", body).await.0, StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(app.get("/jobs").await.1[0]["name"], json!("c"));
        assert_eq!(app.get("/jobs/c").await.1["name"], json!("c"));
    }
    assert_eq!(
        app.patch("/jobs/c", json!({"name": "renamed"})).await.0,
        StatusCode::OK
    );
    assert_eq!(app.get("/jobs").await.1[0]["name"], json!("renamed"));
    assert_eq!(app.get("/jobs/c").await.1["name"], json!("renamed"));
    let (status, _, _) = app.call(Method::POST, "/jobs/c/pause", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get("/jobs").await.1[0]["next_run_time"], Value::Null);
    assert_eq!(app.get("/jobs/c").await.1["next_run_time"], Value::Null);
    assert_eq!(app.delete("/jobs/c").await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/jobs").await.1, json!([]));
    assert_eq!(app.get("/jobs/c").await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}
