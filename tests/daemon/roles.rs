//! Roles over a bound port (issue 15, point 3): every route × every role, with the status each
//! gets. A refused request is 403 naming the role it needs and changes nothing; wrong or
//! missing credentials stay 401.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestApp;

const USERS: &str = "[auth]\nenabled = true\n\
    [[auth.users]]\nusername = \"boss\"\npassword = \"b-pass\"\n\
    [[auth.users]]\nusername = \"ops\"\npassword = \"o-pass\"\nrole = \"operator\"\n\
    [[auth.users]]\nusername = \"wall\"\npassword = \"w-pass\"\nrole = \"viewer\"\n";

/// A request as `user` (its password is the first letter and `-pass`).
async fn call(
    app: &TestApp,
    user: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let password = format!("{}-pass", &user[..1]);
    let mut request = app
        .client
        .request(method, app.url(path))
        .basic_auth(user, Some(password));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn job(id: &str) -> Value {
    json!({"id": id, "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1})
}

/// Every route, in an order each allowed caller can follow on a fresh daemon (the scheduler
/// shut down last), with the status an allowed caller gets and the least role allowed.
fn routes(run: &str) -> Vec<(Method, String, Option<Value>, StatusCode, &'static str)> {
    use StatusCode as S;
    vec![
        (Method::GET, String::new(), None, S::OK, "viewer"),
        (Method::GET, "/jobs".into(), None, S::OK, "viewer"),
        (Method::GET, "/jobs/j".into(), None, S::OK, "viewer"),
        (Method::GET, "/jobs/j/runs".into(), None, S::OK, "viewer"),
        (Method::GET, "/runs".into(), None, S::OK, "viewer"),
        (Method::GET, format!("/runs/{run}"), None, S::OK, "viewer"),
        (
            Method::GET,
            format!("/runs/{run}/output"),
            None,
            S::OK,
            "viewer",
        ),
        (
            Method::GET,
            format!("/runs/{run}/output?follow=true"),
            None,
            S::OK,
            "viewer",
        ),
        (Method::GET, "/cluster".into(), None, S::OK, "viewer"),
        // What the web console asks: who is logged in, the scripts a job may name.
        (Method::GET, "/me".into(), None, S::OK, "viewer"),
        (Method::GET, "/scripts".into(), None, S::OK, "viewer"),
        // The API's own description.
        (Method::GET, "/openapi.json".into(), None, S::OK, "viewer"),
        (Method::GET, "/audit".into(), None, S::OK, "admin"),
        (Method::GET, "/notifications".into(), None, S::OK, "admin"),
        (Method::GET, "/jobs/j/preview".into(), None, S::OK, "viewer"),
        // A preview adds nothing, so it is a read, with a body.
        (
            Method::POST,
            "/preview".into(),
            Some(job("j")),
            S::OK,
            "viewer",
        ),
        (
            Method::POST,
            "/jobs".into(),
            Some(job("k")),
            S::OK,
            "operator",
        ),
        (
            Method::PATCH,
            "/jobs/k".into(),
            Some(json!({"name": "n"})),
            S::OK,
            "operator",
        ),
        (
            Method::POST,
            "/jobs/k/pause".into(),
            None,
            S::OK,
            "operator",
        ),
        (
            Method::POST,
            "/jobs/k/resume".into(),
            None,
            S::OK,
            "operator",
        ),
        (
            Method::POST,
            "/jobs/k/run?wait=true".into(),
            None,
            S::OK,
            "operator",
        ),
        (
            Method::POST,
            format!("/runs/{run}/cancel"),
            None,
            S::CONFLICT,
            "operator",
        ),
        (
            Method::DELETE,
            "/jobs/k".into(),
            None,
            S::NO_CONTENT,
            "operator",
        ),
        (
            Method::POST,
            "/pause".into(),
            None,
            S::NO_CONTENT,
            "operator",
        ),
        (
            Method::POST,
            "/resume".into(),
            None,
            S::NO_CONTENT,
            "operator",
        ),
        (Method::GET, "/tokens".into(), None, S::OK, "admin"),
        (
            Method::POST,
            "/tokens".into(),
            Some(json!({"name": "t", "role": "viewer"})),
            S::CREATED,
            "admin",
        ),
        (
            Method::DELETE,
            "/tokens/0123456789ab".into(),
            None,
            S::NOT_FOUND,
            "admin",
        ),
        (Method::POST, "/start".into(), None, S::BAD_REQUEST, "admin"),
        (
            Method::POST,
            "/shutdown".into(),
            None,
            S::NO_CONTENT,
            "admin",
        ),
    ]
}

#[tokio::test]
async fn every_route_by_every_role() {
    let rank = |role: &str| {
        ["viewer", "operator", "admin"]
            .iter()
            .position(|r| *r == role)
    };
    for (user, role) in [("wall", "viewer"), ("ops", "operator"), ("boss", "admin")] {
        let app = TestApp::spawn(USERS).await;
        assert_eq!(
            call(&app, "boss", Method::POST, "/jobs", Some(job("j")))
                .await
                .0,
            StatusCode::OK
        );
        let (status, ran) = call(&app, "boss", Method::POST, "/jobs/j/run?wait=true", None).await;
        assert_eq!(status, StatusCode::OK, "{ran}");
        let run = ran["id"].as_str().unwrap().to_owned();
        for (method, path, body, allowed, least) in routes(&run) {
            let (status, answer) = call(&app, user, method.clone(), &path, body).await;
            if rank(role) >= rank(least) {
                assert_eq!(status, allowed, "{user} ({role}) {method} {path}: {answer}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{user} ({role}) {method} {path}"
                );
                assert_eq!(
                    answer["error_message"],
                    format!(
                        "Forbidden: this needs the {least} role; user \"{user}\" has the {role} role"
                    ),
                );
            }
        }
        // What a refused caller asked for did not happen.
        let (_, info) = call(&app, "boss", Method::GET, "", None).await;
        assert_eq!(
            info["running"],
            role != "admin",
            "{role}: shut down only by an admin"
        );
        let (_, tokens) = call(&app, "boss", Method::GET, "/tokens", None).await;
        assert_eq!(
            tokens.as_array().unwrap().len(),
            usize::from(role == "admin"),
            "{role}: a token made by an admin only"
        );
        let (status, _) = call(&app, "boss", Method::GET, "/jobs/k", None).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{role}: k removed again, or never added"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn wrong_credentials_stay_401_whatever_the_role() {
    let app = TestApp::spawn(USERS).await;
    for (user, password) in [("wall", "nope"), ("nobody", "w-pass")] {
        let response = app
            .client
            .get(app.url("/jobs"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{user}");
    }
    app.stop().await;
}

/// One request on an open connection: its status and body. Reads the head, then
/// `content-length` bytes, leaving the connection open for the next one.
async fn on_connection(
    connection: &mut tokio::io::BufReader<tokio::net::TcpStream>,
    method: &str,
    path: &str,
    login: Option<(&str, &str)>,
) -> (u16, Value) {
    use base64::Engine as _;
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let authorization = login.map_or_else(String::new, |(user, password)| {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Authorization: Basic {encoded}\r\n")
    });
    let request = format!(
        "{method} /scheduler{path} HTTP/1.1\r\nHost: localhost\r\n{authorization}Content-Length: 0\r\n\r\n"
    );
    connection
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    let mut status_line = String::new();
    connection.read_line(&mut status_line).await.unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        connection.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    connection.read_exact(&mut body).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The gate remembers the Basic login a connection proved (`remembered.rs`), so that the
/// same header on its next requests is not checked again: every request is still who its
/// own header says, however the connection began.
#[tokio::test]
async fn each_request_on_one_connection_is_who_its_own_credentials_say() {
    let app = TestApp::spawn(USERS).await;
    let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut connection = tokio::io::BufReader::new(stream);
    let wall = Some(("wall", "w-pass"));
    let (status, me) = on_connection(&mut connection, "GET", "/me", wall).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("wall")));
    // The same header again: remembered.
    let (status, me) = on_connection(&mut connection, "GET", "/me", wall).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("viewer")));
    // No credentials, or a wrong password, on the same connection: refused.
    assert_eq!(
        on_connection(&mut connection, "GET", "/me", None).await.0,
        401
    );
    let wrong = Some(("wall", "w-pas"));
    assert_eq!(
        on_connection(&mut connection, "GET", "/me", wrong).await.0,
        401
    );
    // The remembered viewer still may not pause; another user on the connection is itself.
    assert_eq!(
        on_connection(&mut connection, "POST", "/pause", wall)
            .await
            .0,
        403
    );
    let ops = Some(("ops", "o-pass"));
    assert_eq!(
        on_connection(&mut connection, "POST", "/pause", ops)
            .await
            .0,
        204
    );
    let (status, me) = on_connection(&mut connection, "GET", "/me", ops).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("ops")));
    let (status, me) = on_connection(&mut connection, "GET", "/me", wall).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("wall")));
    assert_eq!(
        on_connection(&mut connection, "POST", "/resume", wall)
            .await
            .0,
        403
    );
    app.stop().await;
}
