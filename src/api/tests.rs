//! In-process tests of the layers every route shares (auth, body limit, fallbacks, error
//! envelope, panics), over a route table of stand-in handlers that need no scheduler. The real
//! handlers are exercised end to end by the integration tests in `tests/`.

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

fn open_app() -> Router {
    mount(stand_in_routes(), None, body_rules())
}

fn guarded_app(users: Vec<User>) -> Router {
    let credentials = Credentials::new(users).unwrap();
    mount(stand_in_routes(), Some(Arc::new(credentials)), body_rules())
}

fn guest_app() -> Router {
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

async fn send(app: &Router, method: &str, uri: &str, auth: Option<&str>, body: &[u8]) -> Reply {
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

// ---- the real route table over a real (stopped) scheduler ----

mod real {
    use super::*;
    use crate::scheduler::Scheduler;
    use crate::scheduler::testing::scheduler;

    async fn real_app(
        prefix: &str,
        auth: Option<Credentials>,
    ) -> (Router, Scheduler, tempfile::TempDir) {
        let (scheduler, dir) = scheduler().await;
        let state = ApiState::new(scheduler.clone())
            .with_prefix(prefix)
            .with_current_host("TestHost")
            .with_auth(auth);
        (router(state), scheduler, dir)
    }

    #[tokio::test]
    async fn info_reports_hosts_and_whether_the_scheduler_runs() {
        let (app, _scheduler, _dir) = real_app("/scheduler", None).await;
        let reply = send(&app, "GET", "/scheduler", None, b"").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
        assert_eq!(
            &reply.body[..],
            br#"{"allowed_hosts":["*"],"current_host":"testhost","running":false}"#
        );
    }

    #[tokio::test]
    async fn control_routes_in_the_stopped_state() {
        let (app, _scheduler, _dir) = real_app("/scheduler", None).await;
        // DIFFERENCE: CONTRACT §2.1 (the reference answers 500 for pause/resume while stopped).
        for path in ["/scheduler/pause", "/scheduler/resume"] {
            let reply = send(&app, "POST", path, None, b"").await;
            reply.assert_error(StatusCode::BAD_REQUEST, "Scheduler is not running");
        }
        // shutdown reads its body leniently: garbage still gets the state error
        let reply = send(&app, "POST", "/scheduler/shutdown", None, b"garbage").await;
        reply.assert_error(StatusCode::BAD_REQUEST, "Scheduler is not running");
        assert_eq!(
            reply.json(),
            json!({"error_message": "Scheduler is not running"})
        );
    }

    #[tokio::test]
    async fn unknown_jobs_are_404_on_every_job_route() {
        let (app, _scheduler, _dir) = real_app("/scheduler", None).await;
        let reply = send(&app, "GET", "/scheduler/jobs/nope", None, b"").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json(), json!({"error_message": "Job nope not found"}));
        for (method, path) in [
            ("DELETE", "/scheduler/jobs/nope"),
            ("POST", "/scheduler/jobs/nope/pause"),
            ("POST", "/scheduler/jobs/nope/resume"),
            ("POST", "/scheduler/jobs/nope/run"),
        ] {
            send(&app, method, path, None, b"")
                .await
                .assert_error(StatusCode::NOT_FOUND, "Job nope not found");
        }
        let reply = send(&app, "GET", "/scheduler/jobs", None, b"").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(&reply.body[..], b"[]");
    }

    #[tokio::test]
    async fn bad_bodies_are_refused_before_the_scheduler_sees_them() {
        let (app, _scheduler, _dir) = real_app("/scheduler", None).await;
        send(&app, "POST", "/scheduler/jobs", None, b"this is not json")
            .await
            .assert_error(StatusCode::BAD_REQUEST, "Invalid JSON body: ");
        send(&app, "PATCH", "/scheduler/jobs/nope", None, b"garbage")
            .await
            .assert_error(StatusCode::BAD_REQUEST, "Invalid JSON body: ");
    }

    #[tokio::test]
    async fn the_route_table_answers_405_with_allow_and_404_for_trailing_slashes() {
        let (app, _scheduler, _dir) = real_app("/scheduler", None).await;
        let allow = |reply: &Reply| reply.headers[ALLOW].to_str().unwrap().to_owned();
        let reply = send(&app, "PUT", "/scheduler/jobs", None, b"").await;
        reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "The method is not allowed");
        assert_eq!(allow(&reply), "GET,HEAD,POST");
        let reply = send(&app, "GET", "/scheduler/pause", None, b"").await;
        reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "The method is not allowed");
        assert_eq!(allow(&reply), "POST");
        let reply = send(&app, "POST", "/scheduler", None, b"").await;
        assert_eq!(allow(&reply), "GET,HEAD");
        let reply = send(&app, "PUT", "/scheduler/jobs/x", None, b"").await;
        assert_eq!(allow(&reply), "GET,HEAD,PATCH,DELETE");
        let reply = send(&app, "GET", "/scheduler/jobs/x/run", None, b"").await;
        assert_eq!(allow(&reply), "POST");
        for uri in [
            "/scheduler/",
            "/scheduler/jobs/",
            "/scheduler/jobs/x/",
            "/scheduler/x",
        ] {
            send(&app, "GET", uri, None, b"")
                .await
                .assert_error(StatusCode::NOT_FOUND, "The requested URL was not found");
        }
    }

    #[tokio::test]
    async fn the_prefix_is_configurable() {
        // check 60
        let (app, _scheduler, _dir) = real_app("/api", None).await;
        let reply = send(&app, "GET", "/api/jobs", None, b"").await;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"[]"[..])
        );
        assert_eq!(
            send(&app, "GET", "/api", None, b"").await.status,
            StatusCode::OK
        );
        for uri in ["/scheduler/jobs", "/invalidapi/jobs", "/scheduler"] {
            assert_eq!(
                send(&app, "GET", uri, None, b"").await.status,
                StatusCode::NOT_FOUND
            );
        }
        // a trailing slash in the configured prefix is the same prefix; "/" is the root
        let (app, _scheduler, _dir) = real_app("/api/", None).await;
        assert_eq!(
            send(&app, "GET", "/api", None, b"").await.status,
            StatusCode::OK
        );
        let (app, _scheduler, _dir) = real_app("/", None).await;
        assert_eq!(
            send(&app, "GET", "/", None, b"").await.status,
            StatusCode::OK
        );
        assert_eq!(
            send(&app, "GET", "/jobs", None, b"").await.status,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn start_pause_resume_shutdown() {
        let (app, _scheduler, _dir) = real_app("/scheduler", None).await;
        let running = |reply: Reply| reply.json()["running"].clone();
        let empty_204 = |reply: &Reply| {
            assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
            assert!(reply.body.is_empty());
        };
        empty_204(&send(&app, "POST", "/scheduler/start", None, b"").await);
        assert_eq!(
            running(send(&app, "GET", "/scheduler", None, b"").await),
            true
        );
        send(&app, "POST", "/scheduler/start", None, b"")
            .await
            .assert_error(StatusCode::BAD_REQUEST, "Scheduler is already running");
        empty_204(&send(&app, "POST", "/scheduler/pause", None, b"").await);
        empty_204(&send(&app, "POST", "/scheduler/pause", None, b"").await);
        // paused still reports running (reference §1.3.1)
        assert_eq!(
            running(send(&app, "GET", "/scheduler", None, b"").await),
            true
        );
        empty_204(&send(&app, "POST", "/scheduler/resume", None, b"").await);
        empty_204(&send(&app, "POST", "/scheduler/resume", None, b"").await);
        let reply = send(
            &app,
            "POST",
            "/scheduler/shutdown",
            None,
            br#"{"wait": false}"#,
        )
        .await;
        empty_204(&reply);
        assert_eq!(
            running(send(&app, "GET", "/scheduler", None, b"").await),
            false
        );
    }

    #[tokio::test]
    async fn auth_guards_the_real_routes() {
        let credentials = Credentials::new(vec![User::plain("guest", "guest")]).unwrap();
        let (app, _scheduler, _dir) = real_app("/scheduler", Some(credentials)).await;
        send(&app, "GET", "/scheduler", None, b"")
            .await
            .assert_denied();
        send(&app, "POST", "/scheduler/jobs", None, b"garbage")
            .await
            .assert_denied();
        let auth = Some("basic Z3Vlc3Q6Z3Vlc3Q=");
        assert_eq!(
            send(&app, "GET", "/scheduler", auth, b"").await.status,
            StatusCode::OK
        );
        let reply = send(&app, "GET", "/scheduler/jobs/none", auth, b"").await;
        assert_eq!(reply.json(), json!({"error_message": "Job none not found"}));
    }

    #[tokio::test]
    async fn job_routes_round_trip() {
        let (app, _scheduler, dir) = real_app("/scheduler", None).await;
        std::fs::write(dir.path().join("test.py"), "print('hi')\n").unwrap();
        assert_eq!(
            send(&app, "POST", "/scheduler/start", None, b"")
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        let body = br#"{"id": "job1", "func": "task:success", "args": ["test.py"],
                        "trigger": "interval", "minutes": 10}"#;
        let added = send(&app, "POST", "/scheduler/jobs", None, body).await;
        assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
        assert_eq!(added.headers[CONTENT_TYPE], "application/json");
        let job = added.json();
        assert_eq!(job["minutes"], 10);
        assert_eq!(job["name"], "job1");
        assert_eq!(job["next_run_time"], job["start_date"]);

        let reply = send(&app, "POST", "/scheduler/jobs", None, body).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(
            reply.json(),
            json!({"error_message": "Job job1 already exists."})
        );

        let reply = send(&app, "GET", "/scheduler/jobs/job1", None, b"").await;
        assert_eq!(reply.json(), job);
        let reply = send(&app, "GET", "/scheduler/jobs", None, b"").await;
        assert_eq!(reply.json(), json!([job]));

        let reply = send(
            &app,
            "PATCH",
            "/scheduler/jobs/job1",
            None,
            br#"{"name": "renamed"}"#,
        )
        .await;
        assert_eq!(reply.json()["name"], "renamed");
        assert_eq!(reply.json()["next_run_time"], job["next_run_time"]);

        let reply = send(&app, "POST", "/scheduler/jobs/job1/pause", None, b"").await;
        assert_eq!(reply.json()["next_run_time"], Value::Null);
        let reply = send(&app, "POST", "/scheduler/jobs/job1/resume", None, b"").await;
        assert!(reply.json()["next_run_time"].is_string());
        // Run-now is checked over the real binary (tests/api.rs, tests/run_errors.rs): a script
        // runs under the tickd binary's supervisor, which this test program is not, and the
        // run-now answers only once the supervisor has said the script started.

        let reply = send(&app, "DELETE", "/scheduler/jobs/job1", None, b"").await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert!(reply.body.is_empty());
        send(&app, "GET", "/scheduler/jobs/job1", None, b"")
            .await
            .assert_error(StatusCode::NOT_FOUND, "Job job1 not found");

        // check 53: a job with no future fire time resumes to the literal null, and is gone
        let dead = br#"{"id": "dead", "func": "task:success", "args": ["test.py"],
                        "trigger": "cron", "minute": 0, "end_date": "2001-01-01"}"#;
        let reply = send(&app, "POST", "/scheduler/jobs", None, dead).await;
        assert_eq!(reply.json()["next_run_time"], Value::Null);
        let reply = send(&app, "POST", "/scheduler/jobs/dead/resume", None, b"").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
        assert_eq!(&reply.body[..], b"null");
        assert_eq!(
            send(&app, "GET", "/scheduler/jobs/dead", None, b"")
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // valid JSON that is not an object reaches the scheduler, which refuses it (400)
        let reply = send(&app, "POST", "/scheduler/jobs", None, b"[1,2]").await;
        reply.assert_error(StatusCode::BAD_REQUEST, "");
        send(
            &app,
            "POST",
            "/scheduler/shutdown",
            None,
            br#"{"wait": false}"#,
        )
        .await;
    }
}
