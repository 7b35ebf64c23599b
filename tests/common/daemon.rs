//! The `tickd` binary as a user runs it: a config file in a project folder, a free port, the
//! process started and stopped with signals, and calls over HTTP with the shipped credentials.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use super::project_dir;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn write_config(dir: &Path, port: u16, extra: &str) {
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[server]\nport = {port}\n[auth]\nenabled = true\n[[auth.users]]\nusername = \"guest\"\npassword = \"guest\"\n[scheduler]\ntimezone = \"UTC\"\n{extra}"
        ),
    )
    .unwrap();
}

pub fn tickd(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tickd"));
    command
        .arg("--config")
        .arg(dir.join("config.toml"))
        .env_remove("TICKD_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Waits (bounded, 10 s) until a daemon on `port` answers `GET /scheduler` with the shipped
/// credentials; answers the status, `None` if it never answered.
pub async fn answering(port: u16) -> Option<reqwest::StatusCode> {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let answer = client
            .get(format!("http://127.0.0.1:{port}/scheduler"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await;
        if let Ok(response) = answer {
            return Some(response.status());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Starts the binary and waits (bounded) until it answers.
pub async fn start(dir: &Path, port: u16) -> Child {
    start_with(dir, port, &[]).await
}

/// [`start`] with `env` set (a store URL, say).
pub async fn start_with(dir: &Path, port: u16, env: &[(&str, &str)]) -> Child {
    let mut child = tickd(dir).envs(env.iter().copied()).spawn().unwrap();
    if answering(port)
        .await
        .is_some_and(|status| status.is_success())
    {
        return child;
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    panic!(
        "tickd did not answer on port {port}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub async fn call(
    port: u16,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://127.0.0.1:{port}/scheduler{path}"))
        .basic_auth("guest", Some("guest"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Adds (or replaces) a job that never fires by itself (a date far ahead) calling `func` with
/// `args`, plus the fields in `extra`; runs it now and waits for its end: the run record.
pub async fn run_now_waiting(port: u16, id: &str, func: &str, args: Value, extra: Value) -> Value {
    let mut body = serde_json::json!({
        "id": id, "func": func, "args": args,
        "trigger": "date", "run_date": "2099-01-01T00:00:00+00:00", "replace_existing": true,
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    let (status, answer) = call(port, reqwest::Method::POST, "/jobs", Some(body)).await;
    assert_eq!(status, 200, "{id}: {answer}");
    let path = format!("/jobs/{id}/run?wait=true");
    let (status, record) = call(port, reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 200, "{id}: {record}");
    record
}

pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("tickd did not exit");
}

/// Stops a daemon with SIGTERM, as systemd does, and checks it exits cleanly (status 0).
pub fn stop(child: &mut Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_exit(child);
    assert!(
        status.success(),
        "tickd exits cleanly on SIGTERM, not {status}"
    );
}

/// Ends the scripts this test started that are still running. Scripts die with a SIGKILLed
/// daemon (tests/daemon/isolation.rs proves it); this is the safety net should that ever fail.
pub fn kill_scripts_under(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Starts the daemon with `extra` in its config and `env` set, expects it to refuse to start,
/// and answers what it printed on stderr.
pub fn refused_start(extra: &str, env: &[(&str, &str)]) -> String {
    refusal(extra, env).0
}

/// [`refused_start`], answering what it printed on stderr and what its log file holds (empty
/// when it wrote none).
pub fn refusal(extra: &str, env: &[(&str, &str)]) -> (String, String) {
    let dir = project_dir();
    write_config(dir.path(), free_port(), extra);
    let output = tickd(dir.path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let log = std::fs::read_to_string(dir.path().join("logs/runserver.log")).unwrap_or_default();
    (String::from_utf8_lossy(&output.stderr).into_owned(), log)
}
