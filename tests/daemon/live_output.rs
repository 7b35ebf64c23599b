//! A run's output over a bound port (issue 16, part 2): `GET P/runs/<id>/output` as JSON, and
//! followed with `?follow=true` as Server-Sent Events while real scripts run. A script that
//! must still be running waits for a file the test creates only after it has seen what it
//! expects, so "before the script ends" is proven, not timed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::db::{Server, in_fresh_database};
use crate::common::{TestApp, err};

/// Prints a line to each stream, waits for the file `argv[1]` (a minute at most), prints
/// another line.
const LIVE: &str = "import os, sys, time
print('first line', flush=True)
print('a warning', file=sys.stderr, flush=True)
deadline = time.time() + 60
while not os.path.exists(sys.argv[1]) and time.time() < deadline:
    time.sleep(0.02)
print('second line', flush=True)
";

/// Waits for the file `argv[1]`, prints 32 MiB as fast as it can, then creates `argv[2]`.
const FLOOD: &str = "import os, sys, time
deadline = time.time() + 60
while not os.path.exists(sys.argv[1]) and time.time() < deadline:
    time.sleep(0.02)
block = ('x' * 1023 + '\\n') * 64
for _ in range(512):
    sys.stdout.write(block)
sys.stdout.flush()
open(sys.argv[2], 'w').close()
";

const FLOOD_BYTES: usize = 512 * 64 * 1024;

/// The longest a test waits for one event or one file.
const PATIENCE: Duration = Duration::from_secs(30);

/// Writes `script` as `name` in the daemon's workspace, adds a job running it with `args`,
/// runs it now and answers the run's id.
async fn start(app: &TestApp, name: &str, script: &str, args: Value) -> String {
    std::fs::write(app.dir.join("workspace").join(name), script).unwrap();
    let mut argv = vec![json!(name)];
    argv.extend(args.as_array().unwrap().iter().cloned());
    let job = json!({"id": name, "func": "task:success", "args": argv,
                     "trigger": "interval", "hours": 1});
    let (status, body) = app.post("/jobs", job).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = app
        .call(Method::POST, &format!("/jobs/{name}/run"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let location = headers["location"].to_str().unwrap();
    location.rsplit('/').next().unwrap().to_owned()
}

/// A file in the test's folder, outside the workspace, that no script has made yet.
fn flag(app: &TestApp, name: &str) -> PathBuf {
    app.dir.join(name)
}

fn touch(path: &Path) {
    std::fs::write(path, "").unwrap();
}

/// One server-sent event: its name and its data (its `data:` lines joined with `\n`).
#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    event: String,
    data: String,
}

impl SseEvent {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// A follower: reads the stream as it comes, one event at a time.
struct Follower {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl Follower {
    async fn open(app: &TestApp, run_id: &str) -> Follower {
        let response = app
            .client
            .get(app.url(&format!("/runs/{run_id}/output?follow=true")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["x-accel-buffering"], "no");
        Follower {
            response,
            buf: Vec::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream has closed.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(self.buf[..at].to_vec()).unwrap();
                self.buf.drain(..at + 2);
                let mut event = None;
                let mut data: Vec<&str> = Vec::new();
                for line in block.split('\n') {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = Some(name.to_owned());
                    } else if let Some(text) = line.strip_prefix("data:") {
                        data.push(text.strip_prefix(' ').unwrap_or(text));
                    } else {
                        assert!(line.starts_with(':'), "not SSE: {line:?} in {block:?}");
                    }
                }
                match event {
                    Some(event) => {
                        return Some(SseEvent {
                            event,
                            data: data.join("\n"),
                        });
                    }
                    None => assert!(data.is_empty(), "data without an event: {block:?}"),
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("no event within 30 s")
                .unwrap();
            match chunk {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => {
                    assert!(self.buf.is_empty(), "a partial event at the end");
                    return None;
                }
            }
        }
    }

    /// Reads events until `stream`'s text so far contains `text`; answers every event read.
    async fn until(&mut self, stream: &str, text: &str) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await.expect("the stream closed early");
            events.push(event);
            if joined(&events, stream).contains(text) {
                return events;
            }
        }
    }

    /// Every event to the end of the stream, which must close after `end`.
    async fn rest(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        assert_eq!(
            events.last().map(|e| e.event.as_str()),
            Some("end"),
            "{events:?}"
        );
        events
    }
}

/// The text of every `stream` event, in order.
fn joined(events: &[SseEvent], stream: &str) -> String {
    events
        .iter()
        .filter(|e| e.event == stream)
        .map(|e| e.data.as_str())
        .collect()
}

async fn wait_for_file(path: &Path) {
    for _ in 0..(PATIENCE.as_millis() / 20) {
        if path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} did not appear", path.display());
}

#[tokio::test]
async fn a_follower_sees_lines_before_the_script_ends_then_the_end() {
    let app = TestApp::spawn("").await;
    let go = flag(&app, "go");
    let run_id = start(&app, "live.py", LIVE, json!([go.to_str().unwrap()])).await;

    let mut follower = Follower::open(&app, &run_id).await;
    let mut events = follower.until("stdout", "first line\n").await;
    // The script is still waiting for `go`: nothing has ended it.
    let (status, run) = app.get(&format!("/runs/{run_id}")).await;
    assert_eq!(
        (status, run["status"].as_str()),
        (StatusCode::OK, Some("running"))
    );
    // Without `follow`: the output read so far.
    let (status, output) = app.get(&format!("/runs/{run_id}/output")).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    assert_eq!(output["status"], "running");
    assert_eq!(output["stdout"], "first line\n");
    assert_eq!(output["exit_code"], Value::Null);

    touch(&go);
    events.extend(follower.rest().await);
    assert_eq!(joined(&events, "stdout"), "first line\nsecond line\n");
    assert_eq!(joined(&events, "stderr"), "a warning\n", "tagged as stderr");
    let end = events.last().unwrap().json();
    assert_eq!(
        end,
        json!({"status": "succeeded", "exit_code": 0, "reason": null})
    );
    assert!(
        events.iter().all(|e| e.event != "dropped"),
        "a reader that keeps up loses nothing: {events:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn two_followers_at_once_each_get_everything() {
    let app = TestApp::spawn("").await;
    let go = flag(&app, "go");
    let run_id = start(&app, "live.py", LIVE, json!([go.to_str().unwrap()])).await;

    let mut first = Follower::open(&app, &run_id).await;
    let mut second = Follower::open(&app, &run_id).await;
    let mut first_events = first.until("stdout", "first line\n").await;
    let mut second_events = second.until("stdout", "first line\n").await;
    touch(&go);
    first_events.extend(first.rest().await);
    second_events.extend(second.rest().await);
    for events in [first_events, second_events] {
        assert_eq!(joined(&events, "stdout"), "first line\nsecond line\n");
        assert_eq!(joined(&events, "stderr"), "a warning\n");
        assert_eq!(events.last().unwrap().json()["status"], "succeeded");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_finished_run_gives_its_tail_and_its_end_at_once() {
    let app = TestApp::spawn("").await;
    let job = json!({"id": "fail", "func": "task:success", "args": ["fail.py"],
                     "trigger": "interval", "hours": 1});
    app.post("/jobs", job).await;
    let (status, run) = app.post("/jobs/fail/run?wait=true", json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let run_id = run["id"].as_str().unwrap();

    let events = Follower::open(&app, run_id).await.rest().await;
    assert_eq!(
        events,
        vec![
            SseEvent {
                event: "stderr".into(),
                data: "bad\n".into()
            },
            SseEvent {
                event: "end".into(),
                data: json!({"status": "failed", "exit_code": 3,
                             "reason": "the script exited with code 3"})
                .to_string()
            },
        ]
    );

    let (status, output) = app.get(&format!("/runs/{run_id}/output")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        output,
        json!({
            "run_id": run_id,
            "status": "failed",
            "exit_code": 3,
            "reason": "the script exited with code 3",
            "stdout": "",
            "stderr": "bad\n",
            "stdout_truncated": false,
            "stderr_truncated": false,
        })
    );
    app.stop().await;
}

#[tokio::test]
async fn a_slow_follower_is_told_what_it_lost_and_the_daemon_keeps_going() {
    let app = TestApp::spawn("").await;
    let (go, printed) = (flag(&app, "go"), flag(&app, "printed"));
    let run_id = start(
        &app,
        "flood.py",
        FLOOD,
        json!([go.to_str().unwrap(), printed.to_str().unwrap()]),
    )
    .await;
    // Subscribed (the answer's head has come), then not read while the script prints 32 MiB.
    let mut slow = Follower::open(&app, &run_id).await;
    touch(&go);
    wait_for_file(&printed).await;
    let mut ended = false;
    for _ in 0..(PATIENCE.as_millis() / 20) {
        let (_, run) = app.get(&format!("/runs/{run_id}")).await;
        if run["status"] != "running" {
            assert_eq!(run["status"], "succeeded", "{run}");
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ended, "the run ended while its follower did not read");

    let events = slow.rest().await;
    let dropped: Vec<Value> = events
        .iter()
        .filter(|e| e.event == "dropped")
        .map(SseEvent::json)
        .collect();
    assert!(!dropped.is_empty(), "no dropped marker");
    let lost: u64 = dropped.iter().map(|d| d["bytes"].as_u64().unwrap()).sum();
    assert!(dropped.iter().all(|d| d["chunks"].as_u64().unwrap() > 0));
    let received = joined(&events, "stdout").len() as u64;
    assert!(lost > 0 && received > 0, "lost {lost}, received {received}");
    assert_eq!(
        received + lost,
        FLOOD_BYTES as u64,
        "every byte is either sent or counted as dropped"
    );
    assert_eq!(events.last().unwrap().json()["status"], "succeeded");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_run_is_404_and_a_bad_follow_400() {
    let app = TestApp::spawn("").await;
    for path in ["/runs/nope/output", "/runs/nope/output?follow=true"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, err("Run nope not found"), "{path}");
    }
    let (status, body) = app.get("/runs/nope/output?follow=yes").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, err("follow must be true or false, not \"yes\""));
    app.stop().await;
}

/// A run on another daemon of a shared store: the follower says so at once, then, when the
/// run has ended there, gives its stored tail and its end (it reads the store every 2 s).
#[tokio::test]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn a_run_on_another_daemon_is_said_to_be_there_then_ends_on_postgres() {
    in_fresh_database(Server::Postgres, |url| async move {
        let a = TestApp::spawn_with_store("", &url).await;
        let b = TestApp::spawn_with_store("", &url).await;
        let go = flag(&a, "go");
        let run_id = start(&a, "live.py", LIVE, json!([go.to_str().unwrap()])).await;

        let mut follower = Follower::open(&b, &run_id).await;
        let remote = follower.next().await.unwrap();
        assert_eq!(remote.event, "remote", "{remote:?}");
        assert!(remote.json()["node"].is_string(), "{remote:?}");
        let (status, output) = b.get(&format!("/runs/{run_id}/output")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(output["status"], "running", "B answers what the store says");

        touch(&go);
        let events = follower.rest().await;
        assert_eq!(joined(&events, "stdout"), "first line\nsecond line\n");
        assert_eq!(joined(&events, "stderr"), "a warning\n");
        assert_eq!(events.last().unwrap().json()["status"], "succeeded");
        a.stop().await;
        b.stop().await;
    })
    .await;
}
