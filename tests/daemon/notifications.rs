//! Failure notifications (issue 19): webhooks told of failed, timed-out, missed, recovered and
//! long runs, through the store's outbox, signed, retried until the receiver takes them,
//! delivered once by daemons sharing a store. Real scripts, a real daemon and a real HTTP
//! receiver started by the test; no assertion on wall time.

use crate::common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::db::{Server, in_fresh_database};
use common::{TestApp, project_dir};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "a-secret-of-32-characters-or-so!";

/// What the receiver was sent: the headers that matter, the body, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    event: String,
    timestamp: String,
    signature: String,
    hub_signature: String,
    body: String,
    answered: u16,
}

/// An HTTP receiver on 127.0.0.1: answers the statuses queued in `script` in turn (then 200),
/// and keeps every request.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    /// Serves on `addr` (port 0: any) until the test ends; answers where.
    async fn serve(&self, addr: SocketAddr) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let bound = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        bound
    }

    fn answering(self, statuses: &[u16]) -> Self {
        self.script.lock().unwrap().extend(statuses);
        self
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds for what was received.
    async fn until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..600 {
            let got = self.got();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver never got {what}: {:#?}", self.got());
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> AxumStatus {
    let answer = receiver.script.lock().unwrap().pop_front().unwrap_or(200);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    receiver.got.lock().unwrap().push(Received {
        delivery: header("x-tickd-delivery"),
        event: header("x-tickd-event"),
        timestamp: header("x-tickd-timestamp"),
        signature: header("x-tickd-signature"),
        hub_signature: header("x-hub-signature-256"),
        body,
        answered: answer,
    });
    AxumStatus::from_u16(answer).unwrap()
}

/// Checks a request's signatures as a receiver would: HMAC-SHA256 of `<timestamp>.<body>`
/// (tickd's), and of the body alone (GitHub's form).
fn signed(received: &Received) -> bool {
    let hmac = |text: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        hex
    };
    let stamped = format!("{}.{}", received.timestamp, received.body);
    received.signature == format!("v1={}", hmac(&stamped))
        && received.hub_signature == format!("sha256={}", hmac(&received.body))
}

/// A config with one webhook, `ops`, at `receiver`, and `extra` TOML after it.
fn config(receiver: SocketAddr, webhook_extra: &str) -> String {
    format!(
        "[notify]\nretry_delay = 0.1\n[[notify.webhooks]]\nname = \"ops\"\n\
         url = \"http://{receiver}/hook\"\nsecret = \"{SECRET}\"\n{webhook_extra}\n"
    )
}

fn job(id: &str, args: Value, extra: Value) -> Value {
    let mut body =
        json!({"id": id, "func": "task:success", "args": args, "trigger": "interval", "hours": 1});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn body_of(received: &Received) -> Value {
    serde_json::from_str(&received.body).unwrap()
}

/// Fails its first `argv[2]` runs, then succeeds (counting in the file `argv[1]`).
const FLAKY: &str = "import pathlib, sys\np = pathlib.Path(sys.argv[1])\n\
n = int(p.read_text()) + 1 if p.exists() else 1\np.write_text(str(n))\n\
sys.exit(1 if n <= int(sys.argv[2]) else 0)\n";

#[tokio::test]
async fn failing_twice_then_succeeding_with_retries_sends_one_recovered_notification_signed() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let dir = project_dir();
    std::fs::write(dir.path().join("workspace/flaky.py"), FLAKY).unwrap();
    let counter = dir.path().join("count").display().to_string();
    let app = TestApp::spawn_in(dir.path(), &config(at, ""), None).await;
    let (status, body) = app
        .post(
            "/jobs",
            job(
                "flaky",
                json!(["flaky.py", counter, 2]),
                json!({"retry": {"limit": 3, "delay": 0.1, "backoff": 1}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.post("/jobs/flaky/run", json!(null)).await;
    receiver.until("recovered", |got| !got.is_empty()).await;
    let (_, runs) = app.get("/jobs/flaky/runs").await;
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "failed", "failed"], "three records");
    // The failures were not final (a retry followed each): only the recovery is told.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.got();
    let events: Vec<&str> = got.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events[0], "recovered");
    assert!(got.iter().all(|r| r.event == "recovered"), "{events:?}");
    let received = &got[0];
    assert!(signed(received), "a valid signature: {received:?}");
    let body = body_of(received);
    assert_eq!(body["event"], "recovered");
    assert_eq!(body["job"]["id"], "flaky");
    assert_eq!(body["run"]["attempt"], 3);
    assert_eq!(body["run"]["status"], "succeeded");
    assert_eq!(body["run"]["id"], runs[0]["id"]);
    assert!(
        body["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("#/runs/{}", runs[0]["id"].as_str().unwrap())),
        "{body}"
    );
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("tickd: job \"flaky\" succeeded again after failing (attempt 3)"),
        "{text}"
    );

    let (status, deliveries) = app.get("/notifications").await;
    assert_eq!(status, StatusCode::OK);
    let first = &deliveries.as_array().unwrap()[0];
    assert_eq!(first["status"], "delivered");
    assert_eq!(first["webhook"], "ops");
    assert_eq!(first["id"], received.delivery.as_str());
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_answering_500_twice_gets_the_event_on_the_third_delivery() {
    let receiver = Receiver::default().answering(&[500, 500]);
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let app = TestApp::spawn(&config(at, "")).await;
    app.post("/jobs", job("fails", json!(["fail.py"]), json!({})))
        .await;
    let (_, run) = app.post("/jobs/fails/run?wait=true", json!(null)).await;
    let got = receiver
        .until("a delivery answered 200", |got| {
            got.iter().any(|r| r.answered == 200)
        })
        .await;
    let answers: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [500, 500, 200]);
    assert!(got.iter().all(signed), "each attempt signed afresh");
    assert!(
        got.iter().all(|r| r.delivery == got[0].delivery),
        "one delivery, three attempts"
    );
    let body = body_of(&got[2]);
    assert_eq!(
        (body["event"].as_str(), body["run"]["id"].as_str()),
        (Some("failed"), run["id"].as_str())
    );
    assert_eq!(body["run"]["exit_code"], 3);
    assert!(body["run"]["stderr_tail"].as_str().unwrap().contains("bad"));
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("failed (exit code 3)")
    );

    let delivered = async {
        for _ in 0..100 {
            let (_, deliveries) = app.get("/notifications").await;
            let first = deliveries[0].clone();
            if first["status"] == "delivered" {
                return first;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never recorded delivered");
    }
    .await;
    assert_eq!(delivered["attempts"], 3);
    assert_eq!(delivered["last_error"], Value::Null);
    assert_eq!(delivered["body"], body);
    let metrics = app
        .client
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "tickd_notification_deliveries_total{webhook=\"ops\",outcome=\"failed\"} 2",
        "tickd_notification_deliveries_total{webhook=\"ops\",outcome=\"delivered\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_down_while_the_daemon_restarts_still_gets_the_event() {
    // A port with nobody on it (taken, then let go).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = project_dir();
    let app = TestApp::spawn_in(dir.path(), &config(port, ""), None).await;
    app.post("/jobs", job("fails", json!(["fail.py"]), json!({})))
        .await;
    app.post("/jobs/fails/run?wait=true", json!(null)).await;
    let failed_once = async {
        for _ in 0..200 {
            let (_, deliveries) = app.get("/notifications").await;
            if deliveries[0]["attempts"].as_u64() >= Some(1) {
                return deliveries[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never attempted");
    }
    .await;
    assert_eq!(failed_once["status"], "pending");
    assert!(
        !failed_once["last_error"]
            .as_str()
            .unwrap()
            .contains("/hook"),
        "the error never shows the URL: {failed_once}"
    );
    app.stop().await;

    let receiver = Receiver::default();
    receiver.serve(port).await;
    let app = TestApp::spawn_in(dir.path(), &config(port, ""), None).await;
    let got = receiver.until("the event", |got| !got.is_empty()).await;
    assert_eq!(got[0].event, "failed");
    assert_eq!(got[0].delivery, failed_once["id"].as_str().unwrap());
    assert!(signed(&got[0]));
    app.stop().await;
}

#[tokio::test]
async fn rules_choose_the_events_long_runs_missed_fire_times_and_failures_in_a_row() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    // The webhook's own rule hears only of `missed`; jobs that name it use theirs.
    let app = TestApp::spawn(&config(at, "events = [\"missed\"]")).await;
    let (status, refused) = app
        .post(
            "/jobs",
            job(
                "x",
                json!(["test.py"]),
                json!({"notify": {"webhooks": ["pager"]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["error_message"]
            .as_str()
            .unwrap()
            .contains("\"pager\", which no [[notify.webhooks]]")
    );
    // `slow` runs 2 s, past its expected second; `fails` and `quiet` end well within it,
    // even on a loaded host.
    let rule = json!({"webhooks": ["ops"], "events": ["failed", "long_running"],
                      "after_consecutive_failures": 2, "expected_duration": 1});
    let (status, body) = app
        .post(
            "/jobs",
            job("fails", json!(["fail.py"]), json!({"notify": rule})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["notify"]["after_consecutive_failures"], 2);
    app.post(
        "/jobs",
        job("slow", json!(["slow.py", "2"]), json!({"notify": rule})),
    )
    .await;
    app.post("/jobs", job("quiet", json!(["fail.py"]), json!({})))
        .await;
    // A fire time long gone: missed at once (grace 1 s), told by the webhook's own rule.
    let late = json!({"id": "late", "func": "task:success", "args": ["test.py"],
                      "trigger": "date", "run_date": "2020-01-01T00:00:00+00:00"});
    assert_eq!(app.post("/jobs", late).await.0, StatusCode::OK);

    app.post("/jobs/fails/run?wait=true", json!(null)).await;
    app.post("/jobs/quiet/run?wait=true", json!(null)).await;
    let (_, second) = app.post("/jobs/fails/run?wait=true", json!(null)).await;
    app.post("/jobs/slow/run?wait=true", json!(null)).await;
    receiver.until("three events", |got| got.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.got();
    let mut events: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let body = body_of(r);
            (
                r.event.clone(),
                body["job"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            ("failed".to_owned(), "fails".to_owned()),
            ("long_running".to_owned(), "slow".to_owned()),
            ("missed".to_owned(), "late".to_owned()),
        ],
        "the first failure of `fails` was one in a row; `quiet` is no one's"
    );
    let failed = got.iter().find(|r| r.event == "failed").unwrap();
    assert_eq!(body_of(failed)["run"]["id"], second["id"]);
    let long = got.iter().find(|r| r.event == "long_running").unwrap();
    assert_eq!(
        body_of(long)["run"]["status"],
        "running",
        "told while it runs"
    );
    app.stop().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn three_daemons_on_postgres_deliver_each_event_once() {
    in_fresh_database(Server::Postgres, |url| async move {
        // Every delivery is refused at first, so that all three daemons find them due again
        // at the same moments and race for them.
        let receiver = Receiver::default().answering(&[503; 20]);
        let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
        let mut apps = Vec::new();
        for _ in 0..3 {
            apps.push(TestApp::spawn_with_store(&config(at, ""), &url).await);
        }
        for i in 0..10 {
            let id = format!("fails-{i}");
            let (status, body) = apps[0]
                .post("/jobs", job(&id, json!(["fail.py"]), json!({})))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            apps[i % 3]
                .post(&format!("/jobs/{id}/run?wait=true"), json!(null))
                .await;
        }
        receiver
            .until("ten deliveries taken", |got| {
                got.iter().filter(|r| r.answered == 200).count() >= 10
            })
            .await;
        // Let any duplicate arrive before counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = receiver.got();
        let mut taken: HashMap<&str, usize> = HashMap::new();
        for r in got.iter().filter(|r| r.answered == 200) {
            *taken.entry(r.delivery.as_str()).or_default() += 1;
        }
        assert_eq!(taken.len(), 10, "every event delivered");
        assert!(taken.values().all(|n| *n == 1), "each once: {taken:?}");
        assert!(got.iter().filter(|r| r.answered != 200).count() >= 20);
        let (_, deliveries) = apps[1].get("/notifications").await;
        assert_eq!(deliveries.as_array().unwrap().len(), 10);
        assert!(
            deliveries
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] == "delivered")
        );
        for app in apps {
            app.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_job_with_a_target_of_its_own_is_told_and_never_shows_its_secret() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    // No [[notify.webhooks]]; another receiver's unnamed webhook would be `webhook-1`.
    let app = TestApp::spawn("").await;
    let url = format!("http://{at}/hook");
    let rule = json!({"url": url, "secret": SECRET, "events": ["failed"]});
    let (status, body) = app
        .post(
            "/jobs",
            job("own", json!(["fail.py"]), json!({"notify": rule})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["notify"]["url"], format!("http://{at}/<redacted>"));
    assert_eq!(body["notify"]["secret"], "<redacted>");
    assert!(!body.to_string().contains(SECRET));
    let (status, refused) = app
        .patch("/jobs/own", json!({"notify": body["notify"].clone()}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the shown form is not a URL: {refused}"
    );

    let (_, run) = app.post("/jobs/own/run?wait=true", json!(null)).await;
    let got = receiver.until("the failure", |got| !got.is_empty()).await;
    assert_eq!(got[0].event, "failed");
    assert!(signed(&got[0]), "signed with the job's own secret");
    assert_eq!(body_of(&got[0])["run"]["id"], run["id"]);
    let (_, deliveries) = app.get("/notifications").await;
    assert_eq!(deliveries[0]["webhook"], "job:own");
    assert!(!deliveries.to_string().contains("/hook"), "{deliveries}");
    app.stop().await;
}

#[tokio::test]
async fn a_webhooks_jobs_list_chooses_whose_failures_and_timeouts_it_hears_of() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let app = TestApp::spawn(&config(at, "jobs = [\"chosen\", \"slowpoke\"]")).await;
    app.post("/jobs", job("chosen", json!(["fail.py"]), json!({})))
        .await;
    app.post("/jobs", job("other", json!(["fail.py"]), json!({})))
        .await;
    app.post(
        "/jobs",
        job(
            "slowpoke",
            json!(["slow.py", "30"]),
            json!({"timeout": 0.3}),
        ),
    )
    .await;
    for id in ["other", "chosen", "slowpoke"] {
        app.post(&format!("/jobs/{id}/run?wait=true"), json!(null))
            .await;
    }
    receiver.until("two events", |got| got.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut heard: Vec<(String, String)> = receiver
        .got()
        .iter()
        .map(|r| {
            let body = body_of(r);
            (
                body["job"]["id"].as_str().unwrap().to_owned(),
                r.event.clone(),
            )
        })
        .collect();
    heard.sort();
    assert_eq!(
        heard,
        [
            ("chosen".to_owned(), "failed".to_owned()),
            ("slowpoke".to_owned(), "timed_out".to_owned()),
        ],
        "`other` is not in the webhook's jobs"
    );
    app.stop().await;
}
