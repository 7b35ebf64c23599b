//! What `.ci/fuzz-api` (schemathesis against the OpenAPI document) found, over a bound port:
//! each a request that once answered 500, now answered as the document says.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestApp;

/// Interval components beyond i128's microseconds, with a fraction or a bool beside them,
/// overflowed the timedelta sum: a panic, answered 500. They are past the day limit, and
/// refused with CPython's text, by an add, a preview and a change alike.
#[tokio::test]
async fn huge_interval_components_are_refused_not_a_500() {
    let app = TestApp::spawn("").await;
    let (status, _) = app
        .post(
            "/jobs",
            json!({"id": "j", "func": "task:success", "args": ["test.py"],
                   "trigger": "interval", "hours": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for components in [
        json!({"seconds": -2.5e203, "minutes": -0.99999}),
        json!({"seconds": 2.5e203, "minutes": 0.99999}),
        json!({"seconds": 1e300, "weeks": true}),
    ] {
        let mut body = json!({"id": "k", "func": "task:success", "args": ["test.py"],
                              "trigger": "interval"});
        let mut change = json!({"trigger": "interval"});
        for (key, value) in components.as_object().unwrap() {
            body[key] = value.clone();
            change[key] = value.clone();
        }
        for (method, path, body) in [
            ("POST", "/jobs", body.clone()),
            ("POST", "/preview", body),
            ("PATCH", "/jobs/j", change),
        ] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let (status, _, answer) = app.call(method.clone(), path, Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {answer}");
            let text = answer["error_message"].as_str().unwrap();
            assert!(
                text.ends_with("; must have magnitude <= 999999999"),
                "{method} {path} {components}: {text}"
            );
        }
    }
    let (status, _) = app.get("/jobs/k").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was added");
    app.stop().await;
}
