//! In-process tests of the layers every route shares (auth, body limit, fallbacks, error
//! envelope, panics), over a route table of stand-in handlers that need no scheduler. The real
//! route table and handlers are tested once, end to end over a bound port, by `tests/daemon/`
//! (`api.rs` for the routes).

use axum::body::{Body, Bytes, to_bytes};
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::extract::{ApiJson, JobIdPath, RawBody, shutdown_wait};
use super::wire::JsonBody;
use super::*;
use crate::scheduler::SchedulerError;

const PREFIX: &str = "/scheduler";
const LIMIT: usize = 64;

fn body_rules() -> super::BodyRules {
    super::BodyRules::new(LIMIT, std::time::Duration::from_secs(5))
}

/// The reference's route shapes, with handlers that echo what they extracted.
fn stand_in_routes() -> Router {
    let at = |suffix: &str| format!("{PREFIX}{suffix}");
    Router::new()
        .route(PREFIX, get(|| async { JsonBody(json!({"running": true})) }))
        .route(&at("/pause"), post(|| async { StatusCode::NO_CONTENT }))
        .route(
            &at("/shutdown"),
            post(|RawBody(body): RawBody| async move {
                JsonBody(json!({ "wait": shutdown_wait(&body) }))
            }),
        )
        .route(
            &at("/jobs"),
            get(|| async { JsonBody(json!([])) })
                .post(|ApiJson(body): ApiJson| async move { JsonBody(body) }),
        )
        .route(
            &at("/jobs/{id}"),
            get(|JobIdPath(id): JobIdPath| async move { JsonBody(json!({ "id": id })) })
                .patch(
                    |JobIdPath(id): JobIdPath, ApiJson(body): ApiJson| async move {
                        JsonBody(json!({ "id": id, "body": body }))
                    },
                )
                .delete(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            &at("/jobs/{id}/run"),
            post(|JobIdPath(id): JobIdPath| async move {
                Err::<JsonBody, ApiError>(SchedulerError::JobNotFound(id.to_string()).into())
            }),
        )
        .route(
            &at("/boom"),
            get(|| async {
                Err::<JsonBody, ApiError>(
                    SchedulerError::Internal(anyhow::anyhow!("secret detail")).into(),
                )
            }),
        )
        .route(&at("/panic"), get(panicking_handler))
}

#[allow(clippy::panic)]
async fn panicking_handler() -> JsonBody {
    panic!("handler bug with secret detail")
}

/// A server on 127.0.0.1:7788 that knows no other names and lets no other site in.
fn origins() -> Arc<Origins> {
    Arc::new(Origins::new("127.0.0.1:7788".parse().unwrap(), &[], &[]))
}

fn guards(auth: Option<Arc<Credentials>>) -> Guards {
    Guards {
        auth,
        origins: origins(),
        throttle: Arc::new(Throttle::new(
            FailureLimit::default(),
            Arc::new(crate::clock::SystemClock),
        )),
        prefix: "/scheduler".into(),
        tokens: None,
        audit: None,
        side: super::SideRoutes::default(),
        metrics: None,
    }
}

fn open_app() -> Gate {
    mount(stand_in_routes(), body_rules(), guards(None))
}

fn guarded_app(users: Vec<User>) -> Gate {
    let credentials = Credentials::new(users).unwrap();
    mount(
        stand_in_routes(),
        body_rules(),
        guards(Some(Arc::new(credentials))),
    )
}

fn guest_app() -> Gate {
    guarded_app(vec![User::plain("guest", "guest")])
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn assert_error(&self, status: StatusCode, message_start: &str) {
        assert_eq!(self.status, status, "body: {:?}", self.body);
        assert_eq!(self.headers[CONTENT_TYPE], "application/json");
        let body = self.json();
        let object = body.as_object().unwrap();
        assert_eq!(object.len(), 1, "only error_message: {body}");
        let message = object["error_message"].as_str().unwrap();
        assert!(
            message.starts_with(message_start),
            "{message:?} should start with {message_start:?}"
        );
    }

    fn assert_denied(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            self.headers[WWW_AUTHENTICATE],
            r#"Basic realm="Authentication Required""#
        );
        assert_eq!(&self.body[..], b"Access Denied");
    }
}

async fn send(app: &Gate, method: &str, uri: &str, auth: Option<&str>, body: &[u8]) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(value) = auth {
        request = request.header(AUTHORIZATION, value);
    }
    let request = request.body(Body::from(body.to_vec())).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn basic(userpass: &str) -> String {
    format!("Basic {}", STANDARD.encode(userpass))
}

// ---- routing: 404 and 405 in the JSON envelope (CONTRACT §2.2) ----

#[tokio::test]
async fn unknown_paths_and_trailing_slashes_are_json_404s() {
    let app = open_app();
    for uri in [
        "/nope",
        "/invalidapi/jobs",
        "/scheduler/",
        "/scheduler/jobs/",
        "/scheduler/jobs/a/b",
        "/scheduler/jobs/x/unknown",
    ] {
        // DIFFERENCE: CONTRACT §2.2 (the reference answers an HTML page).
        send(&app, "GET", uri, None, b"")
            .await
            .assert_error(StatusCode::NOT_FOUND, "The requested URL was not found");
    }
}

#[tokio::test]
async fn wrong_methods_are_json_405s_with_allow() {
    let app = open_app();
    let reply = send(&app, "PUT", "/scheduler/jobs", None, b"").await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "The method is not allowed");
    let allow = reply.headers[ALLOW].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");

    let reply = send(&app, "GET", "/scheduler/pause", None, b"").await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "The method is not allowed");
    assert_eq!(reply.headers[ALLOW], "POST");

    let reply = send(&app, "POST", "/scheduler", None, b"").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers[ALLOW], "GET,HEAD");

    let reply = send(&app, "PUT", "/scheduler/jobs/x", None, b"").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let allow = reply.headers[ALLOW].to_str().unwrap();
    for method in ["GET", "PATCH", "DELETE"] {
        assert!(allow.contains(method), "{allow}");
    }
}

#[tokio::test]
async fn options_answers_allow_and_head_answers_no_body() {
    let app = open_app();
    let reply = send(&app, "OPTIONS", "/scheduler/jobs", None, b"").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty());
    assert!(reply.headers[ALLOW].to_str().unwrap().contains("POST"));

    let reply = send(&app, "HEAD", "/scheduler/jobs", None, b"").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
    assert!(reply.body.is_empty());
}

// ---- bodies ----

#[tokio::test]
async fn bodies_are_json_whatever_the_content_type() {
    let app = open_app();
    let body = br#"{"id":"noct","hours":1}"#;
    // no Content-Type at all
    let reply = send(&app, "POST", "/scheduler/jobs", None, body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"id": "noct", "hours": 1}));
    // text/plain
    let request = Request::post("/scheduler/jobs")
        .header(CONTENT_TYPE, "text/plain")
        .body(Body::from(&body[..]))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // any JSON value goes to the scheduler, which judges it
    let reply = send(&app, "POST", "/scheduler/jobs", None, b"[1,2]").await;
    assert_eq!(reply.json(), json!([1, 2]));
}

#[tokio::test]
async fn malformed_json_is_a_400_envelope() {
    let app = open_app();
    // DIFFERENCE: CONTRACT §2.2 (the reference answers an HTML 400 page).
    send(&app, "POST", "/scheduler/jobs", None, b"this is not json")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "Invalid JSON body: expected ident");
    send(&app, "POST", "/scheduler/jobs", None, b"")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "Invalid JSON body: ");
    send(&app, "PATCH", "/scheduler/jobs/x", None, b"{\"a\":")
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "Invalid JSON body: EOF while parsing",
        );
}

#[tokio::test]
async fn oversized_bodies_are_a_413_envelope() {
    let app = open_app();
    let big = format!(r#"{{"id": "{}"}}"#, "x".repeat(LIMIT));
    send(&app, "POST", "/scheduler/jobs", None, big.as_bytes())
        .await
        .assert_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than the limit of 64 bytes",
        );
    // A body of exactly the limit passes.
    let exact = format!(r#"{{"id": "{}"}}"#, "x".repeat(LIMIT - 10));
    assert_eq!(exact.len(), LIMIT);
    let reply = send(&app, "POST", "/scheduler/jobs", None, exact.as_bytes()).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_reads_its_optional_body_leniently() {
    let app = open_app();
    for (body, wait) in [
        (&b""[..], true),
        (b"garbage", true),
        (br#"{"wait": "false"}"#, true),
        (br#"{"wait": false}"#, false),
    ] {
        let reply = send(&app, "POST", "/scheduler/shutdown", None, body).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json(), json!({ "wait": wait }));
    }
}

#[tokio::test]
async fn job_ids_are_percent_decoded() {
    let app = open_app();
    let reply = send(
        &app,
        "GET",
        "/scheduler/jobs/uni-%E4%BB%BB%E5%8A%A1",
        None,
        b"",
    )
    .await;
    assert_eq!(reply.json(), json!({"id": "uni-任务"}));
    let reply = send(&app, "GET", "/scheduler/jobs/a%20b", None, b"").await;
    assert_eq!(reply.json(), json!({"id": "a b"}));
    send(&app, "GET", "/scheduler/jobs/%FF", None, b"")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "");
}

// ---- errors from handlers ----

#[tokio::test]
async fn handler_errors_use_the_envelope() {
    let app = open_app();
    let reply = send(&app, "POST", "/scheduler/jobs/nope/run", None, b"").await;
    reply.assert_error(StatusCode::NOT_FOUND, "Job nope not found");
    assert_eq!(reply.json(), json!({"error_message": "Job nope not found"}));

    let reply = send(&app, "GET", "/scheduler/boom", None, b"").await;
    reply.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    assert!(!String::from_utf8_lossy(&reply.body).contains("secret"));
}

#[tokio::test]
async fn panics_become_a_generic_500_envelope() {
    let app = open_app();
    let reply = send(&app, "GET", "/scheduler/panic", None, b"").await;
    reply.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    assert!(!String::from_utf8_lossy(&reply.body).contains("secret"));
    // the server goes on answering
    let reply = send(&app, "GET", "/scheduler", None, b"").await;
    assert_eq!(reply.status, StatusCode::OK);
}

// ---- authentication (reference §4, checks 56–59) ----

#[tokio::test]
async fn every_auth_failure_is_the_same_401() {
    let app = guest_app();
    let failures = [
        None,
        Some("Basic Z3Vlc3Q6d3Jvbmc="), // guest:wrong
        Some("Basic 1231234"),          // not base64
        Some("Bearer abc"),
        Some("Basic"),
        Some("Basic Z3Vlc3RndWVzdA=="), // guestguest, no colon
        Some("Basic Og=="),             // ":"
        Some("Digest Z3Vlc3Q6Z3Vlc3Q="),
    ];
    for auth in failures {
        send(&app, "GET", "/scheduler", auth, b"")
            .await
            .assert_denied();
    }
}

#[tokio::test]
async fn valid_credentials_pass_in_any_scheme_case() {
    let app = guest_app();
    for auth in [
        "Basic Z3Vlc3Q6Z3Vlc3Q=",
        "basic Z3Vlc3Q6Z3Vlc3Q=",
        "BASIC Z3Vlc3Q6Z3Vlc3Q=",
    ] {
        let reply = send(&app, "GET", "/scheduler", Some(auth), b"").await;
        assert_eq!(reply.status, StatusCode::OK, "{auth}");
    }
    let reply = send(
        &app,
        "POST",
        "/scheduler/jobs/none/run",
        Some("Basic Z3Vlc3Q6Z3Vlc3Q="),
        b"",
    )
    .await;
    assert_eq!(reply.json(), json!({"error_message": "Job none not found"}));
}

#[tokio::test]
async fn passwords_may_contain_colons() {
    let app = guarded_app(vec![User::plain("guest", "p:q")]);
    let ok = basic("guest:p:q");
    assert_eq!(
        send(&app, "GET", "/scheduler", Some(&ok), b"").await.status,
        StatusCode::OK
    );
    send(&app, "GET", "/scheduler", Some(&basic("guest:p")), b"")
        .await
        .assert_denied();
    send(&app, "GET", "/scheduler", Some(&basic("guest:p:q:")), b"")
        .await
        .assert_denied();
}

#[tokio::test]
async fn several_users_and_argon2_hashes() {
    let hash = super::auth::tests::cheap_hash(b"admin:pw");
    let app = guarded_app(vec![
        User::plain("guest", "guest"),
        User::argon2("admin", hash),
    ]);
    for ok in ["guest:guest", "admin:admin:pw"] {
        let reply = send(&app, "GET", "/scheduler", Some(&basic(ok)), b"").await;
        assert_eq!(reply.status, StatusCode::OK, "{ok}");
    }
    for bad in [
        "admin:guest",
        "guest:admin:pw",
        "admin:admin",
        "nobody:guest",
    ] {
        send(&app, "GET", "/scheduler", Some(&basic(bad)), b"")
            .await
            .assert_denied();
    }
}

#[tokio::test]
async fn auth_runs_before_the_body_is_read() {
    let app = guest_app();
    // check 59: garbage without credentials is a 401, not a 400
    send(&app, "POST", "/scheduler/jobs", None, b"garbage")
        .await
        .assert_denied();
    // nor a 413
    send(&app, "POST", "/scheduler/jobs", None, &[b'x'; 2 * LIMIT])
        .await
        .assert_denied();
    // with credentials the body is read and refused
    send(
        &app,
        "POST",
        "/scheduler/jobs",
        Some("Basic Z3Vlc3Q6Z3Vlc3Q="),
        b"garbage",
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "Invalid JSON body");
}

#[tokio::test]
async fn fallbacks_are_behind_auth_too() {
    let app = guest_app();
    // Nothing about the route table leaks without credentials.
    send(&app, "GET", "/nope", None, b"").await.assert_denied();
    send(&app, "PUT", "/scheduler/jobs", None, b"")
        .await
        .assert_denied();
    let auth = Some("Basic Z3Vlc3Q6Z3Vlc3Q=");
    send(&app, "GET", "/nope", auth, b"")
        .await
        .assert_error(StatusCode::NOT_FOUND, "The requested URL");
    let reply = send(&app, "PUT", "/scheduler/jobs", auth, b"").await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "The method is not allowed");
    assert!(reply.headers.contains_key(ALLOW));
}

#[tokio::test]
async fn no_credentials_needed_when_auth_is_off() {
    let app = open_app();
    let reply = send(&app, "GET", "/scheduler", None, b"").await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send(&app, "GET", "/scheduler", Some("Bearer whatever"), b"").await;
    assert_eq!(reply.status, StatusCode::OK);
}
