//! The probes (issue 17, point 3): `/healthz` and `/readyz` outside the API's prefix, open
//! without credentials by default and behind them when configured, behind the `Host` check
//! as every route; `/readyz` 503 naming the store while the database is cut (the store-outage
//! proxy of `store_outage.rs`) and 200 once it is back, `/healthz` 200 throughout.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HOST;
use serde_json::Value;

use crate::common::TestApp;
use crate::common::db::{Server, in_fresh_database};
use crate::store_outage::{Proxy, upstream, via};

const AUTH: &str =
    "[auth]\nenabled = true\n[[auth.users]]\nusername = \"ops\"\npassword = \"a long password\"\n";

/// `GET path` (outside the prefix) without credentials: the status and the JSON body.
async fn probe(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("http://{}{path}", app.addr))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asks `path` until it answers `want` (bounded by `limit`); answers the last body.
async fn until_status(app: &TestApp, path: &str, want: StatusCode, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = probe(app, path).await;
        if status == want {
            return body;
        }
        assert!(
            started.elapsed() < limit,
            "{path} still answers {status} {body} after {limit:?}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn probes_are_open_by_default_and_report_the_version_and_the_last_pass() {
    let app = TestApp::spawn(AUTH).await;
    // The API itself still asks for credentials.
    let (status, _) = probe(&app, "/scheduler/jobs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = probe(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        body.as_object()
            .unwrap()
            .contains_key("last_pass_age_seconds")
    );

    let body = until_status(&app, "/readyz", StatusCode::OK, Duration::from_secs(10)).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["scheduler"], "ok");
    let age = body["last_pass_age_seconds"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&age), "{body}");

    // Not under the prefix, and only GET.
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = app
        .client
        .post(format!("http://{}/readyz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[tokio::test]
async fn a_paused_or_stopped_scheduler_is_still_ready() {
    let app = TestApp::spawn("").await;
    until_status(&app, "/readyz", StatusCode::OK, Duration::from_secs(10)).await;
    let (status, _) = app.post("/pause", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = probe(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.post("/shutdown", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = probe(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // And it starts again, on the same loop.
    let (status, _) = app.post("/start", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = probe(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn probes_ask_for_credentials_when_configured_and_move_with_their_paths() {
    let extra = format!(
        "{AUTH}[health]\nrequire_auth = true\nhealthz_path = \"/live\"\nreadyz_path = \"/ops/ready\"\n"
    );
    let app = TestApp::spawn(&extra).await;
    let (status, body) = probe(&app, "/live").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = probe(&app, "/healthz").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "authentication answers first"
    );
    // Readiness is 503 until the scheduler's loop has completed its first turn: ask again
    // until then.
    for path in ["/live", "/ops/ready"] {
        let started = Instant::now();
        loop {
            let response = app
                .client
                .get(format!("http://{}{path}", app.addr))
                .basic_auth("ops", Some("a long password"))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::OK {
                break;
            }
            assert!(
                status == StatusCode::SERVICE_UNAVAILABLE
                    && started.elapsed() < Duration::from_secs(10),
                "{path}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn probes_are_behind_the_host_check() {
    let app = TestApp::spawn("").await;
    let response = app
        .client
        .get(format!("http://{}/healthz", app.addr))
        .header(HOST, "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    app.stop().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn readiness_follows_a_postgres_outage() {
    in_fresh_database(Server::Postgres, |url| {
        readiness_follows_an_outage(url, 5432)
    })
    .await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_mysql), ignore = "needs TICKD_TEST_MYSQL_URL")]
async fn readiness_follows_a_mysql_outage() {
    in_fresh_database(Server::MySql, |url| readiness_follows_an_outage(url, 3306)).await;
}

async fn readiness_follows_an_outage(url: String, default_port: u16) {
    let proxy = Proxy::start(upstream(&url, default_port).await).await;
    let app = TestApp::spawn_with_store("", &via(&url, proxy.addr)).await;
    until_status(&app, "/readyz", StatusCode::OK, Duration::from_secs(10)).await;

    proxy.cut().await;
    let body = until_status(
        &app,
        "/readyz",
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_ne!(body["checks"]["store"], "ok", "{body}");
    let message = body["error_message"].as_str().unwrap();
    assert!(message.starts_with("not ready: store: "), "{message}");
    let (status, body) = probe(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "the process still answers: {body}");

    proxy.restore().await;
    let body = until_status(&app, "/readyz", StatusCode::OK, Duration::from_secs(20)).await;
    assert_eq!(body["checks"]["store"], "ok", "{body}");
    app.stop().await;
    proxy.cut().await;
}
