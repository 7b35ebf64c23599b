//! The audit log over a bound port (issue 15, point 5): a record for every change and every
//! refused attempt, none for a read that succeeds, no secret in any; `GET P/audit` an admin's,
//! paged and filtered; old records pruned by `[audit] max_age_days`.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::header::{HOST, ORIGIN};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tickd::store::{self, AuditRecord};

use crate::common::TestApp;
use crate::common::audit_checks::entry;

const USERS: &str = "[auth]\nenabled = true\n\
    [[auth.users]]\nusername = \"boss\"\npassword = \"b-pass\"\n\
    [[auth.users]]\nusername = \"ops\"\npassword = \"o-pass\"\nrole = \"operator\"\n\
    [[auth.users]]\nusername = \"wall\"\npassword = \"w-pass\"\nrole = \"viewer\"\n";

/// A password tried by someone who is not a user.
const TRIED: &str = "hunter2-not-a-password";

fn job(id: &str) -> Value {
    json!({"id": id, "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1})
}

/// A request as `user` with `password`.
fn as_user(
    app: &TestApp,
    user: &str,
    password: &str,
    method: Method,
    path: &str,
) -> RequestBuilder {
    app.client
        .request(method, app.url(path))
        .basic_auth(user, Some(password))
}

/// A request as one of [`USERS`] (its password is the first letter and `-pass`).
fn by(app: &TestApp, user: &str, method: Method, path: &str) -> RequestBuilder {
    as_user(app, user, &format!("{}-pass", &user[..1]), method, path)
}

async fn status(request: RequestBuilder) -> StatusCode {
    request.send().await.unwrap().status()
}

/// `GET P/audit` with `query` as boss: the status and the body's text.
async fn audit_text(app: &TestApp, query: &str) -> (StatusCode, String) {
    let response = by(app, "boss", Method::GET, &format!("/audit{query}"))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The records `GET P/audit` answers for `query`.
async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, text) = audit_text(app, query).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

/// The whole log once it holds `count` records (the writer appends off the request path).
async fn settled(app: &TestApp, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let records = audit(app, "?limit=500").await;
        if records.len() >= count {
            assert_eq!(records.len(), count, "{records:#?}");
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the audit log never held {count} records");
}

/// A record as the test expects it: actor, credential, method, route under the prefix,
/// target, outcome, status.
type Row = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    u64,
);

#[tokio::test]
async fn changes_and_refusals_are_recorded_reads_are_not() {
    let app = TestApp::spawn(USERS).await;
    let prefix = &app.prefix;

    // Allowed changes.
    let created = by(&app, "boss", Method::POST, "/jobs").json(&job("a"));
    assert_eq!(status(created).await, StatusCode::OK);
    let changed = by(&app, "ops", Method::PATCH, "/jobs/a").json(&json!({"name": "n"}));
    assert_eq!(status(changed).await, StatusCode::OK);
    // Reads that succeed: none.
    assert_eq!(
        status(by(&app, "wall", Method::GET, "/jobs")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(by(&app, "wall", Method::GET, "/jobs/a")).await,
        StatusCode::OK
    );
    // Refused: wrong credentials, a role, a page of another site, a foreign Host.
    let guessed = as_user(&app, "mallory", TRIED, Method::POST, "/jobs/a/pause");
    assert_eq!(status(guessed).await, StatusCode::UNAUTHORIZED);
    let read_guessed = as_user(&app, "wall", TRIED, Method::GET, "/jobs");
    assert_eq!(status(read_guessed).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(by(&app, "wall", Method::DELETE, "/jobs/a")).await,
        StatusCode::FORBIDDEN
    );
    let cross_site = by(&app, "boss", Method::POST, "/jobs")
        .header(ORIGIN, "http://evil.example")
        .json(&job("planted"));
    assert_eq!(status(cross_site).await, StatusCode::FORBIDDEN);
    let rebound = by(&app, "boss", Method::GET, "/jobs").header(HOST, "evil.example");
    assert_eq!(status(rebound).await, StatusCode::MISDIRECTED_REQUEST);
    let nowhere = as_user(&app, "mallory", TRIED, Method::DELETE, "/nowhere/x");
    assert_eq!(status(nowhere).await, StatusCode::UNAUTHORIZED);
    // A refused request's route is found without running its handler: job a is still there,
    // not paused.
    let (code, a) = app.get("/jobs/a").await;
    assert_eq!(code, StatusCode::OK);
    assert!(a["next_run_time"].is_string(), "{a}");
    // An error: a job without a trigger (created nothing, so it has no target).
    let bad = by(&app, "boss", Method::POST, "/jobs").json(&json!({"id": "b"}));
    assert_eq!(status(bad).await, StatusCode::BAD_REQUEST);
    // The log is an admin's.
    for user in ["wall", "ops"] {
        assert_eq!(
            status(by(&app, user, Method::GET, "/audit")).await,
            StatusCode::FORBIDDEN,
            "{user}"
        );
    }

    let records = settled(&app, 11).await;
    let shape = |r: &Value| {
        (
            r["actor"].clone(),
            r["credential"].clone(),
            r["method"].as_str().unwrap().to_owned(),
            r["route"].as_str().unwrap().to_owned(),
            r["target"].clone(),
            r["outcome"].as_str().unwrap().to_owned(),
            r["status"].as_u64().unwrap(),
        )
    };
    let got: Vec<_> = records.iter().rev().map(shape).collect();
    // (actor, credential, method, route, target, outcome, status), oldest first.
    let rows: [Row; 11] = [
        (
            "boss",
            Some("password"),
            "POST",
            "/jobs",
            Some("a"),
            "ok",
            200,
        ),
        (
            "ops",
            Some("password"),
            "PATCH",
            "/jobs/{id}",
            Some("a"),
            "ok",
            200,
        ),
        (
            "mallory",
            None,
            "POST",
            "/jobs/{id}/pause",
            Some("a"),
            "denied",
            401,
        ),
        ("wall", None, "GET", "/jobs", None, "denied", 401),
        (
            "wall",
            Some("password"),
            "DELETE",
            "/jobs/{id}",
            Some("a"),
            "denied",
            403,
        ),
        ("boss", None, "POST", "/jobs", None, "denied", 403),
        ("boss", None, "GET", "/jobs", None, "denied", 421),
        ("mallory", None, "DELETE", "/nowhere/x", None, "denied", 401),
        (
            "boss",
            Some("password"),
            "POST",
            "/jobs",
            None,
            "error",
            400,
        ),
        (
            "wall",
            Some("password"),
            "GET",
            "/audit",
            None,
            "denied",
            403,
        ),
        (
            "ops",
            Some("password"),
            "GET",
            "/audit",
            None,
            "denied",
            403,
        ),
    ];
    let want: Vec<_> = rows
        .iter()
        .map(
            |(actor, credential, method, route, target, outcome, status)| {
                (
                    json!(actor),
                    json!(credential),
                    (*method).to_owned(),
                    format!("{prefix}{route}"),
                    json!(target),
                    (*outcome).to_owned(),
                    *status,
                )
            },
        )
        .collect();
    assert_eq!(got, want, "{records:#?}");
    for record in &records {
        assert_eq!(record["source"], "127.0.0.1", "{record}");
        let at = record["at"].as_str().unwrap();
        assert!(at.ends_with("+00:00"), "RFC 3339, UTC: {at}");
        let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
        assert!((Utc::now() - at.to_utc()).num_seconds().abs() < 60, "{at}");
    }
    // No secret anywhere in the answer.
    let (_, text) = audit_text(&app, "?limit=500").await;
    for secret in ["b-pass", "o-pass", "w-pass", TRIED] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_log_pages_and_filters() {
    let app = TestApp::spawn(USERS).await;
    for (user, id) in [("boss", "a"), ("ops", "b"), ("boss", "c"), ("ops", "d")] {
        let created = by(&app, user, Method::POST, "/jobs").json(&job(id));
        assert_eq!(status(created).await, StatusCode::OK);
    }
    for id in ["a", "b"] {
        let removed = by(&app, "ops", Method::DELETE, &format!("/jobs/{id}"));
        assert_eq!(status(removed).await, StatusCode::NO_CONTENT);
    }
    let all = settled(&app, 6).await;
    let ids = |records: &[Value]| {
        records
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let targets: Vec<&str> = all.iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["b", "a", "d", "c", "b", "a"], "newest first");

    let mut paged = Vec::new();
    let mut query = "?limit=4".to_owned();
    loop {
        let page = audit(&app, &query).await;
        let Some(last) = page.last() else { break };
        query = format!("?limit=4&before={}", last["id"].as_str().unwrap());
        paged.extend(ids(&page));
    }
    assert_eq!(paged, ids(&all), "pages join up");

    let boss = audit(&app, "?actor=boss").await;
    assert_eq!(boss.len(), 2);
    assert!(boss.iter().all(|r| r["actor"] == "boss"));
    let b = audit(&app, "?target=b").await;
    let methods: Vec<&str> = b.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["DELETE", "POST"]);
    let both = audit(&app, "?target=b&actor=ops&limit=1").await;
    assert_eq!(ids(&both), ids(&b[..1]));
    assert!(audit(&app, "?actor=nobody").await.is_empty());

    for query in [
        "?limit=0",
        "?limit=501",
        "?limit=x",
        "?before=x",
        "?before=%00",
    ] {
        let (status, text) = audit_text(&app, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {text}");
        let message = serde_json::from_str::<Value>(&text).unwrap()["error_message"]
            .as_str()
            .unwrap()
            .to_owned();
        let named = if query.contains("limit") {
            "limit"
        } else {
            "before"
        };
        assert!(message.starts_with(named), "{query}: {message}");
    }
    app.stop().await;
}

#[tokio::test]
async fn old_records_are_pruned_by_age_at_start() {
    let dir = crate::common::project_dir();
    let app = TestApp::spawn_in(dir.path(), "", None).await;
    app.stop().await;
    // Records of 100 days and 1 day ago, written through the store while no daemon runs.
    let url = format!("sqlite://{}", dir.path().join("tickd.db").display());
    let store = store::open(&url).await.unwrap();
    let old = AuditRecord::at(
        Utc::now() - TimeDelta::days(100),
        entry(Some("old"), None, 200),
    );
    let recent = AuditRecord::at(
        Utc::now() - TimeDelta::days(1),
        entry(Some("new"), None, 200),
    );
    store.append(&[old, recent]).await.unwrap();
    store.close().await;

    let actors = |records: Vec<Value>| {
        records
            .iter()
            .map(|r| r["actor"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // 0 keeps them forever.
    let app = TestApp::spawn_in(dir.path(), "[audit]\nmax_age_days = 0\n", None).await;
    assert_eq!(
        actors(app.get("/audit").await.1.as_array().unwrap().clone()),
        ["new", "old"]
    );
    app.stop().await;
    // 30 days: the old one goes.
    let app = TestApp::spawn_in(dir.path(), "[audit]\nmax_age_days = 30\n", None).await;
    assert_eq!(
        actors(app.get("/audit").await.1.as_array().unwrap().clone()),
        ["new"]
    );
    app.stop().await;
}
