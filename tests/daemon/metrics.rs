//! `GET /metrics` on a bound port (issue 17, point 4): the text parses as the Prometheus
//! exposition format (a strict parser below), run counters move when scripts run, requests
//! are counted under route templates, the per-job label cap folds extra jobs, and the
//! endpoint is open by default and behind the API's credentials when configured.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;

/// Series (name and sorted labels) → value.
type Samples = BTreeMap<String, f64>;

fn job(id: &str, script: &str) -> Value {
    json!({"id": id, "func": "task:success", "args": [script], "trigger": "interval", "hours": 1})
}

/// Scrapes `path` without credentials; the status, Content-Type and body.
async fn scrape(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let response = app
        .client
        .get(format!("http://{}{path}", app.addr))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// Scrapes `/metrics` and parses it.
async fn metrics(app: &TestApp) -> Samples {
    let (status, content_type, text) = scrape(app, "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    parse(&text)
}

fn value(samples: &Samples, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// Parses the Prometheus text format (0.0.4) strictly: every line a `# HELP`, a `# TYPE` or
/// a sample of a family declared before it; label names and escapes as the format allows;
/// no series twice; histogram buckets cumulative, ending in `+Inf` equal to `_count`.
fn parse(text: &str) -> Samples {
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Samples::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) = rest.split_once(' ').unwrap();
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(is_name(name), "bad metric name in {line:?}");
            match keyword {
                "HELP" => assert!(!tail.is_empty(), "{line:?}"),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&tail),
                        "{line:?}"
                    );
                    assert!(
                        types.insert(name.to_owned(), tail.to_owned()).is_none(),
                        "family declared twice: {line:?}"
                    );
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line");
        let (series, number) = line.rsplit_once(' ').unwrap();
        let value: f64 = match number {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, parse_labels(labels.strip_suffix('}').unwrap())),
            None => (series, Vec::new()),
        };
        assert!(is_name(name), "bad sample name in {line:?}");
        let family = types
            .iter()
            .find(|(family, kind)| {
                name == family.as_str()
                    || (kind.as_str() == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|suffix| name == format!("{family}{suffix}")))
            })
            .unwrap_or_else(|| panic!("sample of no declared family: {line:?}"));
        assert!(!family.0.is_empty());
        let mut labels = labels;
        labels.sort();
        let key = format!(
            "{name}{{{}}}",
            labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(
            samples.insert(key, value).is_none(),
            "series twice: {line:?}"
        );
    }
    check_histograms(&types, &samples);
    samples
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y\"z"` → pairs, escapes undone.
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap();
        assert!(
            is_name(name) && !name.starts_with("__"),
            "bad label {name:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().unwrap() {
                (_, '\\') => match chars.next().unwrap().1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => panic!("bad escape \\{other}"),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// Buckets cumulative, `+Inf` present and equal to `_count`.
fn check_histograms(types: &BTreeMap<String, String>, samples: &Samples) {
    for (family, _) in types.iter().filter(|(_, kind)| *kind == "histogram") {
        let prefix = format!("{family}_bucket{{");
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (key, count) in samples.range(prefix.clone()..) {
            let Some(labels) = key.strip_prefix(&prefix) else {
                break;
            };
            let labels = parse_labels(labels.strip_suffix('}').unwrap());
            let le = labels.iter().find(|(k, _)| k == "le").unwrap().1.clone();
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let others: Vec<String> = labels
                .iter()
                .filter(|(k, _)| k != "le")
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            series
                .entry(others.join(","))
                .or_default()
                .push((le, *count));
        }
        for (labels, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{{{labels}}}: buckets not cumulative"
            );
            let (le, last) = *buckets.last().unwrap();
            assert_eq!(le, f64::INFINITY, "{family}{{{labels}}} has no +Inf bucket");
            let count = samples[&format!("{family}_count{{{labels}}}")];
            assert_eq!(
                last, count,
                "{family}{{{labels}}}: +Inf bucket is not _count"
            );
        }
    }
}

#[tokio::test]
async fn metrics_parse_and_count_runs_jobs_and_requests_by_route() {
    let app = TestApp::spawn("").await;
    assert_eq!(
        app.post("/jobs", job("m1", "test.py")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/jobs", job("bad", "fail.py")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/jobs/bad/pause", json!(null)).await.0,
        StatusCode::OK
    );
    let (status, run) = app.post("/jobs/m1/run?wait=true", json!(null)).await;
    assert_eq!(
        (status, &run["status"]),
        (StatusCode::OK, &json!("succeeded")),
        "{run}"
    );
    let (_, run) = app.post("/jobs/bad/run?wait=true", json!(null)).await;
    assert_eq!(run["status"], "failed", "{run}");

    let first = metrics(&app).await;
    assert_eq!(
        value(&first, r#"tickd_runs_total{job="m1",status="succeeded"}"#),
        1.0
    );
    assert_eq!(
        value(&first, r#"tickd_runs_total{job="bad",status="failed"}"#),
        1.0
    );
    assert_eq!(
        value(&first, r#"tickd_run_duration_seconds_count{job="m1"}"#),
        1.0
    );
    assert_eq!(value(&first, r#"tickd_jobs{state="scheduled"}"#), 1.0);
    assert_eq!(value(&first, r#"tickd_jobs{state="paused"}"#), 1.0);
    assert_eq!(value(&first, "tickd_runs_in_progress{}"), 0.0);
    assert_eq!(value(&first, "tickd_cluster_members{}"), 1.0);
    let version = format!(
        r#"tickd_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&first, &version), 1.0);
    assert!(
        value(
            &first,
            r#"tickd_store_operation_duration_seconds_count{operation="add_job"}"#
        ) >= 2.0
    );
    assert!(
        value(
            &first,
            r#"tickd_store_operation_duration_seconds_count{operation="insert_run"}"#
        ) >= 2.0
    );
    assert_eq!(
        value(&first, r#"tickd_store_errors_total{operation="add_job"}"#),
        0.0
    );

    // The counters move with the next run.
    app.post("/jobs/m1/run?wait=true", json!(null)).await;
    let second = metrics(&app).await;
    assert_eq!(
        value(&second, r#"tickd_runs_total{job="m1",status="succeeded"}"#),
        2.0
    );
    assert_eq!(
        value(&second, r#"tickd_run_duration_seconds_count{job="m1"}"#),
        2.0
    );

    // Requests are counted under route templates, never raw paths.
    assert_eq!(app.get("/jobs/abc").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/jobs/abc").await.0, StatusCode::NOT_FOUND);
    let (status, _, _) = scrape(&app, "/no/such/path").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let refused = app
        .client
        .post(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error_message"].is_string(),
        "the JSON envelope: {body}"
    );
    let third = metrics(&app).await;
    let by_route =
        r#"tickd_http_requests_total{method="GET",route="/scheduler/jobs/{id}",status="404"}"#;
    assert_eq!(value(&third, by_route), 2.0);
    let run_now =
        r#"tickd_http_requests_total{method="POST",route="/scheduler/jobs/{id}/run",status="200"}"#;
    assert_eq!(value(&third, run_now), 3.0);
    let unmatched = r#"tickd_http_requests_total{method="GET",route="unmatched",status="404"}"#;
    assert_eq!(value(&third, unmatched), 1.0);
    assert!(
        value(
            &third,
            r#"tickd_http_requests_total{method="GET",route="/metrics",status="200"}"#
        ) >= 2.0
    );
    assert!(
        third
            .keys()
            .all(|k| !k.contains("/jobs/abc") && !k.contains("/no/such"))
    );
    assert!(
        value(
            &third,
            r#"tickd_http_request_duration_seconds_count{method="GET",route="/scheduler/jobs/{id}"}"#
        ) >= 2.0
    );
    app.stop().await;
}

#[tokio::test]
async fn jobs_beyond_the_label_cap_fold_into_other() {
    let app = TestApp::spawn("[metrics]\nmax_job_labels = 1\n").await;
    for id in ["first", "second", "third"] {
        app.post("/jobs", job(id, "test.py")).await;
        let (_, run) = app
            .post(&format!("/jobs/{id}/run?wait=true"), json!(null))
            .await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    let samples = metrics(&app).await;
    assert_eq!(
        value(
            &samples,
            r#"tickd_runs_total{job="first",status="succeeded"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            r#"tickd_runs_total{job="_other",status="succeeded"}"#
        ),
        2.0
    );
    assert!(
        samples
            .keys()
            .all(|k| !k.contains(r#"job="second""#) && !k.contains(r#"job="third""#))
    );
    app.stop().await;
}

const USERS: &str = "[auth]\nenabled = true\n\
    [[auth.users]]\nusername = \"wall\"\npassword = \"w-pass\"\nrole = \"viewer\"\n";

#[tokio::test]
async fn metrics_are_open_by_default_and_behind_credentials_when_required() {
    let open = TestApp::spawn(USERS).await;
    let (status, _, text) = scrape(&open, "/metrics").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "open without credentials by default"
    );
    parse(&text);
    let (status, _, _) = scrape(&open, "/scheduler/jobs").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the API itself still asks"
    );
    // A refusal before routing still counts under the route asked for.
    let samples = metrics(&open).await;
    let refused = r#"tickd_http_requests_total{method="GET",route="/scheduler/jobs",status="401"}"#;
    assert_eq!(value(&samples, refused), 1.0);
    open.stop().await;

    let extra = format!("{USERS}[metrics]\nrequire_auth = true\npath = \"/internal/metrics\"\n");
    let closed = TestApp::spawn(&extra).await;
    let (status, _, _) = scrape(&closed, "/internal/metrics").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = closed
        .client
        .get(format!("http://{}/internal/metrics", closed.addr))
        .basic_auth("wall", Some("w-pass"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a viewer may read them");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(response.text().await.unwrap().ends_with("# EOF\n"));
    let (status, _, _) = scrape(&closed, "/metrics").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "nothing at the default path, and no hint"
    );
    closed.stop().await;
}

#[tokio::test]
async fn metrics_off_serve_nothing() {
    let app = TestApp::spawn("[metrics]\nenabled = false\n").await;
    let (status, _, _) = scrape(&app, "/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("").await.0, StatusCode::OK, "the API is unchanged");
    app.stop().await;
}
