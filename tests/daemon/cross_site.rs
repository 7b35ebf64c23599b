//! Where requests come from (issue 15, points 1 and 2), over a bound port: a page of another
//! site cannot change anything even with the user's credentials attached, and a `Host` that
//! is not one of tickd's names (DNS rebinding) is refused before credentials are looked at.

use reqwest::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, ORIGIN,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use crate::common::TestApp;

/// A job body sent as a browser's `text/plain` form or `fetch` sends it: no preflight.
const JOB: &str = r#"{"id": "planted", "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1}"#;

/// A request under the prefix with the app's credentials (a logged-in browser sends them).
fn request(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    let request = app.client.request(method, app.url(path));
    match &app.auth {
        Some((user, password)) => request.basic_auth(user, Some(password)),
        None => request,
    }
}

async fn send(request: RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// `POST P/jobs` of [`JOB`] as `text/plain`, with `headers`.
async fn plant(app: &TestApp, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
    let mut post = request(app, Method::POST, "/jobs")
        .header(CONTENT_TYPE, "text/plain")
        .body(JOB);
    for (name, value) in headers {
        post = post.header(*name, *value);
    }
    send(post).await
}

async fn planted(app: &TestApp) -> bool {
    app.get("/jobs/planted").await.0 == StatusCode::OK
}

#[tokio::test]
async fn a_cross_site_change_is_refused_and_changes_nothing() {
    let app = TestApp::spawn("").await;
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("origin", "http://localhost:9")],
        vec![("sec-fetch-site", "cross-site")],
    ] {
        let (status, _, body) = plant(&app, &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
        let message = body["error_message"].as_str().unwrap();
        assert!(
            message.starts_with("Cross-site request refused"),
            "{message}"
        );
        assert!(!planted(&app).await, "{headers:?} planted a job");
    }
    // Other changes are refused the same way: the scheduler keeps running.
    let shutdown = request(&app, Method::POST, "/shutdown").header(ORIGIN, "http://evil.example");
    assert_eq!(send(shutdown).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get("").await.1["running"], true);
    // A page of another site may still read nothing it could not before: reads are not
    // changes (and carry no CORS answer, so the browser hides them from that page).
    let read = request(&app, Method::GET, "/jobs").header(ORIGIN, "http://evil.example");
    let (status, headers, _) = send(read).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_same_change_without_origin_or_from_tickds_own_page_works() {
    let app = TestApp::spawn("").await;
    let (status, _, body) = plant(&app, &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "curl and scripts send no Origin: {body}"
    );
    assert!(planted(&app).await);
    assert_eq!(app.delete("/jobs/planted").await.0, StatusCode::NO_CONTENT);
    let own = format!("http://{}", app.addr);
    let (status, _, _) = plant(&app, &[("origin", &own), ("sec-fetch-site", "same-origin")]).await;
    assert_eq!(status, StatusCode::OK, "tickd's own page");
    app.stop().await;
}

#[tokio::test]
async fn a_foreign_host_is_refused_before_credentials_are_asked_for() {
    let app = TestApp::spawn("").await;
    let port = app.addr.port();
    for host in [format!("evil.example:{port}"), "evil.example".to_owned()] {
        let get = app.client.get(app.url("/jobs")).header(HOST, &host);
        let (status, _, body) = send(get).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        let message = body["error_message"].as_str().unwrap();
        assert!(message.contains("[server] host_names"), "{message}");
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let get = request(&app, Method::GET, "/jobs").header(HOST, &host);
        assert_eq!(send(get).await.0, StatusCode::OK, "{host}");
    }
    app.stop().await;
}

#[tokio::test]
async fn configured_names_and_origins_are_let_in() {
    let app = TestApp::spawn(
        "[server]\nhost_names = [\"tickd.example\"]\n\
         cors_origins = [\"https://console.example\"]\n",
    )
    .await;
    let get = request(&app, Method::GET, "/jobs").header(HOST, "tickd.example");
    assert_eq!(send(get).await.0, StatusCode::OK);
    // The allowed site's preflight is answered without credentials, and its change goes
    // through with a CORS answer the browser accepts.
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/jobs"))
        .header(ORIGIN, "https://console.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        );
    let (status, headers, _) = send(preflight).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(&HeaderValue::from_static("https://console.example"))
    );
    let (status, headers, _) = plant(&app, &[("origin", "https://console.example")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_some());
    assert!(planted(&app).await);
    // Any other site still gets no CORS answer and no change.
    let (status, headers, _) = plant(&app, &[("origin", "https://other.example")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    app.stop().await;
}
