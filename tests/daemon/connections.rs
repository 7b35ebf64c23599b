//! Connections cannot exhaust the daemon: idle and half-sent connections are closed after
//! `server.header_timeout`, slow bodies after `server.body_timeout`, connections beyond
//! `server.max_connections` are answered 503, and under the usual 1,024-descriptor limit two
//! thousand idle connections leave room for the scripts' descriptors and, once they time out,
//! for requests. Over the real binary, as an attacker would find it.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{answering, call, free_port, start, start_with, stop, write_config};
use common::project_dir;
use serde_json::json;

/// Reads what the server sends until it closes the connection or `limit` passes.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&answer).into_owned(), true),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&answer).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_the_envelope() {
    let dir = project_dir();
    let port = free_port();
    // write_config has a [server] table already: the key comes through the environment.
    write_config(dir.path(), port, "");
    let mut child = start_with(dir.path(), port, &[("TICKD_SERVER__MAX_CONNECTIONS", "4")]).await;
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (answer, closed) = read_until_closed(&mut fifth, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("{\"error_message\":\"Too many connections"),
        "{answer}"
    );
    assert!(closed, "the refused connection is closed");
    drop(held);
    // Room again once they are gone.
    let mut status = None;
    for _ in 0..50 {
        status = answering(port).await;
        if status.is_some_and(|s| s.is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status.is_some_and(|s| s.is_success()), "{status:?}");
    stop(&mut child);
}

#[tokio::test]
async fn idle_half_sent_and_slow_body_connections_are_closed() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let env = [
        ("TICKD_SERVER__HEADER_TIMEOUT", "1"),
        ("TICKD_SERVER__BODY_TIMEOUT", "1"),
    ];
    let mut child = start_with(dir.path(), port, &env).await;

    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(b"GET /scheduler HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(
        b"POST /scheduler/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\
          Content-Length: 100\r\n\r\n{\"id\":",
    )
    .unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(closed && answer.is_empty(), "idle: {answer:?}");
    let (_, closed) = read_until_closed(&mut half, Duration::from_secs(10));
    assert!(closed, "half-sent head");
    let (answer, _) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));
    stop(&mut child);
}

/// Under a 1,024-descriptor limit, 2,000 idle connections neither stop scripts from running
/// (their descriptors are kept back) nor the daemon from answering once they time out.
#[tokio::test]
async fn two_thousand_idle_connections_under_1024_descriptors() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut child = Command::new("prlimit")
        .arg("--nofile=1024:1024")
        .arg(env!("CARGO_BIN_EXE_tickd"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .env("TICKD_SERVER__HEADER_TIMEOUT", "3")
        .env_remove("TICKD_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prlimit (util-linux) runs the daemon under a descriptor limit");
    assert!(answering(port).await.is_some_and(|s| s.is_success()));
    let (status, _) = call(
        port,
        reqwest::Method::POST,
        "/jobs",
        Some(json!({"id": "tick", "func": "task:success", "args": ["test.py"], "trigger": "interval", "seconds": 1})),
    )
    .await;
    assert_eq!(status, 200);

    let mut held = Vec::new();
    for _ in 0..2000 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            held.push(stream);
        }
    }
    // Runs go on meanwhile: each second's run needs descriptors the connections cannot take.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let answered = answering(port).await;
    assert!(answered.is_some_and(|s| s.is_success()), "{answered:?}");
    let (status, runs) = call(port, reqwest::Method::GET, "/jobs/tick/runs?limit=20", None).await;
    assert_eq!(status, 200);
    let runs = runs.as_array().unwrap();
    let succeeded = runs.iter().filter(|r| r["status"] == "succeeded").count();
    let failed: Vec<_> = runs.iter().filter(|r| r["status"] == "failed").collect();
    assert!(succeeded >= 2, "{runs:?}");
    assert!(
        failed.is_empty(),
        "no run fails for lack of descriptors: {failed:?}"
    );
    drop(held);
    stop(&mut child);
}

#[tokio::test]
async fn hostile_bodies_are_refused_before_they_are_built() {
    let dir = project_dir();
    let port = free_port();
    write_config(dir.path(), port, "");
    let mut child = start(dir.path(), port).await;
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(format!("http://127.0.0.1:{port}/scheduler/jobs"))
            .basic_auth("guest", Some("guest"))
            .body(body)
            .send()
    };
    let keys: Vec<String> = (0..80_000).map(|i| format!("\"k{i}\":1")).collect();
    let wide = post(format!("{{{}}}", keys.join(","))).await.unwrap();
    assert_eq!(wide.status(), 400);
    let text = wide.text().await.unwrap();
    assert!(text.contains("more than 10000 keys"), "{text}");
    let deep = post("[".repeat(100)).await.unwrap();
    assert_eq!(deep.status(), 400);
    // Refused from its Content-Length, before the body is read.
    let mut big = TcpStream::connect(("127.0.0.1", port)).unwrap();
    big.write_all(
        b"POST /scheduler/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\
          Content-Length: 2097152\r\n\r\n\"xxxx",
    )
    .unwrap();
    let (answer, _) = read_until_closed(&mut big, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("larger than the limit of 1048576 bytes"),
        "{answer}"
    );
    stop(&mut child);
}
