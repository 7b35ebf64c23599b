//! Any bytes in a path or a query get a 400 or a 404, never a 500, on every store (issue 13,
//! item 7: PostgreSQL answered 500 to a NUL byte in an id). The real binary on SQLite,
//! MariaDB/MySQL, PostgreSQL and Redis (the last three when their variables name a server),
//! asked every route that takes an id, a run id or `before=` with a table of hostile values.

use crate::common;

use std::time::Duration;

use common::daemon::{call, free_port, start_with, stop, write_config};
use common::db::{Server, in_fresh_database};
use common::project_dir;
use redis::Commands;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Path segments as sent (percent-encoded where they must be), and what each is.
fn hostile() -> Vec<(String, &'static str)> {
    let mut values: Vec<(String, &'static str)> = [
        ("%00", "NUL"),
        ("a%00b", "NUL inside"),
        ("%00%00%00%00", "NULs"),
        ("%FF", "not UTF-8"),
        ("%C3%28", "a broken UTF-8 sequence"),
        ("%ED%A0%80", "a UTF-16 surrogate"),
        ("%C0%80", "an overlong NUL"),
        ("%0A", "a newline"),
        (
            "x%0D%0A2031-01-01%20INFO%20forged",
            "CR LF and a forged line",
        ),
        ("%1B%5B2J", "a terminal escape"),
        ("%7F%01%08", "DEL and C0 controls"),
        ("..", "dot dot"),
        ("%2E%2E", "encoded dot dot"),
        (".", "dot"),
        ("%2F", "an encoded slash"),
        ("%5C", "a backslash"),
        ("%25", "a percent sign"),
        ("%20", "a space"),
        ("%27%3B%20DROP%20TABLE%20tickd_jobs%3B--", "SQL"),
        ("%E2%9C%93%20%F0%9F%98%80", "unicode"),
        ("%F4%8F%BF%BF", "the last code point"),
        ("%EF%BB%BF", "a byte order mark"),
        ("%E2%80%AE", "a right-to-left override"),
        ("*", "a glob (Redis patterns)"),
        ("runs:x", "a Redis key separator"),
    ]
    .into_iter()
    .map(|(value, what)| (value.to_owned(), what))
    .collect();
    values.push(("i".repeat(192), "one byte past the longest id"));
    values.push(("x".repeat(16 * 1024), "16 KB"));
    values
}

/// Sends one request exactly as given (a client's URL parser would resolve `..` and
/// re-encode bytes) with the shipped credentials; answers the status and the body as JSON
/// (`Value::Null` when it is not).
async fn raw(port: u16, method: &Method, path: &[u8], body: Option<&Value>) -> (u16, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!("{method} /scheduler").into_bytes();
    request.extend_from_slice(path);
    request.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// Every route with an id, a run id or `before=` in it, for one hostile segment.
fn routes(value: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/jobs/{value}"), None),
        (
            Method::PATCH,
            format!("/jobs/{value}"),
            Some(json!({"name": "n"})),
        ),
        (Method::DELETE, format!("/jobs/{value}"), None),
        (Method::POST, format!("/jobs/{value}/pause"), None),
        (Method::POST, format!("/jobs/{value}/resume"), None),
        (Method::POST, format!("/jobs/{value}/run"), None),
        (Method::POST, format!("/jobs/{value}/run?wait=true"), None),
        (Method::GET, format!("/jobs/{value}/runs"), None),
        (
            Method::GET,
            format!("/jobs/{value}/runs?before={value}"),
            None,
        ),
        (
            Method::GET,
            format!("/jobs/present/runs?before={value}"),
            None,
        ),
        (
            Method::GET,
            format!("/jobs/present/runs?limit={value}"),
            None,
        ),
        (Method::GET, format!("/runs/{value}"), None),
        (Method::POST, format!("/runs/{value}/cancel"), None),
    ]
}

/// The whole table against a daemon on `store_url`: 400 or 404 everywhere (a page of an
/// existing job's runs aside), a 400 naming the field for a NUL, and bodies with a NUL in an
/// id or a name refused naming the field.
async fn asks_every_route(store_url: &str) {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut daemon = start_with(dir.path(), port, &[("TICKD_STORE__URL", store_url)]).await;
    let (status, body) = call(
        port,
        Method::POST,
        "/jobs",
        Some(
            json!({"id": "present", "func": "task:success", "args": ["test.py"],
                    "trigger": "interval", "hours": 1}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, run) = call(port, Method::POST, "/jobs/present/run?wait=true", None).await;
    assert_eq!(status, 200, "{run}");

    let mut answers = Vec::new();
    for (value, what) in hostile() {
        for (method, path, body) in routes(&value) {
            let (status, answer) = raw(port, &method, path.as_bytes(), body.as_ref()).await;
            let shown = format!("{method} {} ({what})", &path[..path.len().min(80)]);
            // A page of an existing job's runs before any text is a page (200).
            let answers_ok = status == 400
                || status == 404
                || (status == 200 && path.starts_with("/jobs/present/runs?before="));
            assert!(answers_ok, "{shown}: {status} {answer}");
            if value.contains("%00") && !path.contains("limit=") {
                assert_eq!(status, 400, "{shown}: {answer}");
                let message = answer["error_message"].as_str().unwrap();
                let field = if path.contains("before=") && path.starts_with("/jobs/present") {
                    "before"
                } else if path.starts_with("/runs/") {
                    "run id"
                } else {
                    "job id"
                };
                assert!(message.contains(field), "{shown}: {message}");
                assert!(message.contains("NUL"), "{shown}: {message}");
            }
            answers.push(status);
        }
    }
    assert!(answers.len() > 300, "{} requests", answers.len());
    // Bytes no client would send unencoded: hyper refuses the request line itself.
    for bytes in [
        &b"/jobs/\xff"[..],
        b"/jobs/a\x00b",
        b"/runs/\x7f",
        b"/jobs/\xc3\x28/run",
    ] {
        let (status, _) = raw(port, &Method::GET, bytes, None).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(bytes));
    }

    // The same bytes inside bodies: ids and names with a NUL are refused naming the field;
    // everything else that is text is a job like any other.
    for (field, value) in [("id", "a\u{0}b"), ("name", "\u{0}")] {
        let mut body = json!({"id": "nul", "func": "task:success", "args": ["test.py"],
                              "trigger": "interval", "hours": 1});
        body[field] = json!(value);
        let (status, answer) = call(port, Method::POST, "/jobs", Some(body)).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(
            answer["error_message"],
            format!("{field} must not contain a NUL character")
        );
    }
    let (status, answer) = call(
        port,
        Method::PATCH,
        "/jobs/present",
        Some(json!({"name": "a\u{0}"})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    for id in [
        "..",
        "/",
        "%00",
        "\n\r\u{1b}[2J\u{7f}",
        "✓ 😀 \u{10ffff}",
        "' OR 1=1; --",
        "*",
    ] {
        let body = json!({"id": id, "name": id, "func": "task:success", "args": ["test.py"],
                          "trigger": "interval", "hours": 1, "kwargs": {"k\u{0}": "\u{0}"}});
        let (status, answer) = call(port, Method::POST, "/jobs", Some(body)).await;
        assert_eq!(status, 200, "{id:?}: {answer}");
        assert_eq!(answer["id"], id);
    }
    let (status, jobs) = call(port, Method::GET, "/jobs", None).await;
    assert_eq!(status, 200, "{jobs}");
    assert_eq!(jobs.as_array().unwrap().len(), 8, "{jobs}");
    stop(&mut daemon);
}

#[tokio::test]
async fn sqlite_answers_400_or_404_to_any_bytes() {
    asks_every_route("sqlite://tickd.db").await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_mysql), ignore = "needs TICKD_TEST_MYSQL_URL")]
async fn mysql_answers_400_or_404_to_any_bytes() {
    in_fresh_database(Server::MySql, |url| async move {
        asks_every_route(&url).await;
    })
    .await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn postgres_answers_400_or_404_to_any_bytes() {
    in_fresh_database(Server::Postgres, |url| async move {
        asks_every_route(&url).await;
    })
    .await;
}

/// A Redis key prefix of this test's own, its keys deleted at the end however it ends.
struct RedisSpace {
    server: String,
    prefix: String,
}

impl Drop for RedisSpace {
    fn drop(&mut self) {
        let mut con = redis::Client::open(self.server.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let keys: Vec<String> = con
            .scan_match::<_, String>(format!("{}*", self.prefix))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        if !keys.is_empty() {
            let _: () = con.del(keys).unwrap();
        }
    }
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn redis_answers_400_or_404_to_any_bytes() {
    let space = RedisSpace {
        server: common::setup::required("TICKD_TEST_REDIS_URL"),
        prefix: format!("tickd-test-{}:", uuid::Uuid::now_v7().simple()),
    };
    let sep = if space.server.contains('?') { '&' } else { '?' };
    asks_every_route(&format!("{}{sep}prefix={}", space.server, space.prefix)).await;
}
