//! The cross-site attack of issue 15 in a real headless Chromium, driven over WebDriver by its
//! ChromeDriver: a user logs in to tickd in the browser, then opens a page of another origin
//! that submits a `text/plain` form and calls `fetch` against tickd with the cached Basic
//! credentials (to create a job, run one, shut down, through a 307 of its own server, and from
//! a sandboxed frame). Nothing may change. The same page against a tickd that lists its origin in
//! `[server] cors_origins` does create the jobs: that shows the browser really attached the
//! credentials, so the refusal is tickd's cross-site check and not a missing login.
//!
//! Needs `TICKD_TEST_CHROMEDRIVER` (Debian's `/usr/bin/chromedriver`; `.ci/run` installs
//! `chromium` and `chromium-driver`) and optionally `TICKD_TEST_CHROMIUM`, the browser binary.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::TestApp;
use crate::common::browser::{Driver, PATIENCE, page_text};
use crate::common::setup::required;

/// The user who logs in in the browser.
const USER: &str = "boss";
const PASSWORD: &str = "b-pass";

/// A daemon with authentication on and one admin.
const AUTH: &str = "[auth]\nenabled = true\n\
    [[auth.users]]\nusername = \"boss\"\npassword = \"b-pass\"\n";

/// A name the browser resolves to 127.0.0.1, as a DNS-rebinding attacker's name would.
const REBOUND: &str = "rebound.test";

/// A job as JSON, as the attack page sends it.
fn job(id: &str) -> Value {
    json!({"id": id, "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1})
}

/// `text` escaped for an HTML attribute's double quotes.
fn attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// `value` as a JavaScript literal inside a `<script>`: no `</script>` can end it early.
fn script_value(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// A form that posts the JSON of job `id` as `enctype=text/plain` to `action`, into `target`.
///
/// That encoding writes `name=value`: the field's name holds the job's JSON up to an open
/// string and its value closes it, so the body is that job's JSON (its `name` is `x=y`).
fn job_form(id: &str, action: &str, target: &str) -> String {
    let mut form_job = job(id);
    form_job["name"] = json!("x=y");
    let body = form_job.to_string();
    let (name, value) = body
        .split_once("x=y")
        .map(|(name, value)| (format!("{name}x"), format!("y{value}")))
        .unwrap();
    format!(
        r#"<form method="post" enctype="text/plain" action="{action}" target="{target}"><input type="hidden" name="{}" value="{}"></form>"#,
        attr(&name),
        attr(&value)
    )
}

/// The attack page, served by the attacker at `attacker`, against the tickd on `port`.
///
/// It submits a `text/plain` form for job `by-form` into the iframe `sink` and waits for its
/// answer, then calls `fetch` without CORS but with the user's credentials for job `by-fetch`.
/// With `harm` it goes on: `fetch`es that run the job `victim` and shut the scheduler down,
/// one for job `by-redirect` sent to the attacker's own server, which answers 307 to tickd
/// (the browser then sends `Origin: null`), and a form for job `by-sandbox` from a sandboxed
/// frame (an opaque origin, `Origin: null` too). When all is answered its title is `done`.
fn attack_page(attacker: SocketAddr, port: u16, harm: bool) -> String {
    let target = format!("http://127.0.0.1:{port}/scheduler");
    let mut requests = vec![(format!("{target}/jobs"), job("by-fetch").to_string())];
    let mut sandbox = String::new();
    if harm {
        requests.push((format!("{target}/jobs/victim/run"), String::new()));
        requests.push((format!("{target}/shutdown"), String::new()));
        requests.push((
            format!("http://{attacker}/redirect/{port}/jobs"),
            job("by-redirect").to_string(),
        ));
        let form = job_form("by-sandbox", &format!("{target}/jobs"), "_self");
        sandbox = format!("{form}<script>onload = () => document.forms[0].submit()</script>");
    }
    format!(
        r#"<!doctype html>
<html><head><title>waiting</title></head><body>
<iframe name="sink"></iframe>
{form}
<pre id="log"></pre>
<script>
const requests = {requests};
const sandbox = {sandbox};
const log = (line) => {{ document.getElementById("log").textContent += line + "\n"; }};
const loaded = (frame, count) => new Promise((done) => {{
  let seen = 0;
  frame.addEventListener("load", () => {{ if (++seen === count) done(); }});
}});
window.addEventListener("load", async () => {{
  const posted = loaded(document.querySelector("iframe"), 1);
  document.forms[0].submit();
  await posted;
  log("form answered");
  for (const [url, body] of requests) {{
    try {{
      const answer = await fetch(url, {{
        method: "POST", mode: "no-cors", credentials: "include",
        headers: {{ "Content-Type": "text/plain" }}, body,
      }});
      log(url + ": " + answer.type);
    }} catch (error) {{
      log(url + ": " + error);
    }}
  }}
  if (sandbox) {{
    const frame = document.createElement("iframe");
    frame.setAttribute("sandbox", "allow-forms allow-scripts");
    const answered = loaded(frame, 2); // its own page, then tickd's answer
    frame.srcdoc = sandbox;
    document.body.appendChild(frame);
    await answered;
    log("sandboxed form answered");
  }}
  document.title = "done";
}});
</script>
</body></html>"#,
        form = job_form("by-form", &format!("{target}/jobs"), "sink"),
        requests = script_value(&json!(requests)),
        sandbox = script_value(&json!(sandbox)),
    )
}

/// The attacker's web server: another origin (`http://127.0.0.1:OTHER`).
///
/// `GET /attack/PORT` answers [`attack_page`] against the tickd on `PORT`, `/attack/PORT/harm`
/// the one that does harm too; `/redirect/PORT/PATH` answers 307 to that tickd's
/// `/scheduler/PATH`; anything else is 404.
async fn attacker() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(path) = read_request(&mut stream).await else {
                    return;
                };
                let answer = answer_attack(addr, &path);
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// Reads one request (its head and its `Content-Length` body); returns its path.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if data.len() > 64 * 1024 {
            return None;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    head.split_whitespace().nth(1).map(str::to_owned)
}

/// The attacker server's answer to `path`.
fn answer_attack(addr: SocketAddr, path: &str) -> String {
    let (status, location, body) = if let Some(rest) = path.strip_prefix("/attack/") {
        let (port, harm) = match rest.strip_suffix("/harm") {
            Some(port) => (port, true),
            None => (rest, false),
        };
        match port.parse() {
            Ok(port) => ("200 OK", None, attack_page(addr, port, harm)),
            Err(_) => ("404 Not Found", None, String::new()),
        }
    } else if let Some((port, rest)) = path
        .strip_prefix("/redirect/")
        .and_then(|rest| rest.split_once('/'))
    {
        let location = format!("http://127.0.0.1:{port}/scheduler/{rest}");
        ("307 Temporary Redirect", Some(location), String::new())
    } else {
        ("404 Not Found", None, String::new())
    };
    let location = location.map_or(String::new(), |to| format!("Location: {to}\r\n"));
    format!(
        "HTTP/1.1 {status}\r\n{location}Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Logs in to `app` the way a user does: opens `GET /scheduler` with the credentials, which
/// the browser then keeps for that origin. Checks that the scheduler's info is shown.
async fn log_in(browser: &Client, app: &TestApp) {
    let url = format!("http://{USER}:{PASSWORD}@{}{}", app.addr, app.prefix);
    browser.goto(&url).await.unwrap();
    let text = page_text(browser).await;
    assert!(text.contains("\"running\""), "login did not work: {text}");
    // The credentials are now the browser's, not the address's: the bare address works too.
    browser.goto(&app.url("")).await.unwrap();
    let text = page_text(browser).await;
    assert!(text.contains("\"running\""), "credentials not kept: {text}");
}

/// Opens the attack page at `url` and waits until all its requests are answered; returns what
/// each of its frames shows (tickd's answers to its forms).
async fn attack(browser: &Client, url: &str) -> Vec<String> {
    browser.goto(url).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    while browser.title().await.unwrap() != "done" {
        if Instant::now() > deadline {
            let log = browser.find(Locator::Id("log")).await.unwrap();
            let log = log.text().await.unwrap();
            panic!("the attack page did not finish in {PATIENCE:?}; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let frames = browser.find_all(Locator::Css("iframe")).await.unwrap();
    let mut answers = Vec::new();
    for index in 0..frames.len() {
        browser
            .enter_frame(u16::try_from(index).unwrap())
            .await
            .unwrap();
        answers.push(page_text(browser).await);
        browser.enter_parent_frame().await.unwrap();
    }
    answers
}

/// The ids of `app`'s jobs, asked with the credentials (from the test, not the browser).
async fn job_ids(app: &TestApp) -> Vec<String> {
    let (status, jobs) = app.get("/jobs").await;
    assert_eq!(status, StatusCode::OK);
    let mut ids: Vec<String> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tickd_test_chromium),
    ignore = "needs TICKD_TEST_CHROMEDRIVER (Debian's chromium-driver; .ci/run installs it)"
)]
async fn a_page_of_another_origin_cannot_change_anything_in_a_logged_in_browser() {
    let chromedriver = required("TICKD_TEST_CHROMEDRIVER");
    let driver = Driver::start(&chromedriver).await;
    let attacker = attacker().await;
    // The victim: a default tickd. The control: one that lets the attacker's origin in.
    let victim = TestApp::spawn(AUTH).await;
    let control = TestApp::spawn(&format!(
        "[server]\ncors_origins = [\"http://{attacker}\"]\n{AUTH}"
    ))
    .await;
    let (status, _) = victim.post("/jobs", job("victim")).await;
    assert_eq!(status, StatusCode::OK);

    let browser = driver
        .browser(&[format!("--host-resolver-rules=MAP {REBOUND} 127.0.0.1")])
        .await;
    log_in(&browser, &victim).await;
    log_in(&browser, &control).await;

    // The attack: forms and `fetch`es from the attacker's origin. First from another port of
    // 127.0.0.1 (another origin of the same site, as any local web server is): Chromium
    // attaches the cached credentials there (the control below shows it), so only tickd's
    // check stands in the way. Then from `localhost`, another site: Chromium 156 keeps the
    // credentials from it itself (without tickd's check the answer is 401), but tickd refuses
    // it first all the same, as it must for browsers that do attach them.
    let port = victim.addr.port();
    for page in [
        format!("http://{attacker}/attack/{port}/harm"),
        format!("http://localhost:{}/attack/{port}/harm", attacker.port()),
    ] {
        let answers = attack(&browser, &page).await;
        assert_eq!(answers.len(), 2, "the form's frame and the sandboxed one");
        for answer in answers {
            assert!(
                answer.contains("Cross-site request refused"),
                "{page}: a form's answer is not tickd's cross-site refusal: {answer}"
            );
        }
        assert_eq!(job_ids(&victim).await, ["victim"], "{page} changed jobs");
        let (status, runs) = victim.get("/jobs/victim/runs").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(runs, json!([]), "{page} ran a job");
        assert_eq!(victim.get("").await.1["running"], true, "{page} shut down");
    }

    // The control: the same page against a tickd that lets its origin in. The jobs are
    // created, so the browser did send the user's credentials from that page.
    let port = control.addr.port();
    let answers = attack(&browser, &format!("http://{attacker}/attack/{port}")).await;
    assert!(
        answers[0].contains("\"by-form\""),
        "the control's form: {answers:?}"
    );
    assert_eq!(job_ids(&control).await, ["by-fetch", "by-form"]);

    // DNS rebinding: a page on the attacker's name, re-pointed at 127.0.0.1, reaches tickd's
    // port as its own origin; tickd answers 421 for the foreign Host, even to the right
    // password (as an attacker has for the shipped guest/guest).
    let rebound = format!(
        "http://{USER}:{PASSWORD}@{REBOUND}:{}{}/jobs",
        victim.addr.port(),
        victim.prefix
    );
    browser.goto(&rebound).await.unwrap();
    let text = page_text(&browser).await;
    assert!(text.contains("[server] host_names"), "{text}");
    assert!(
        !text.contains("\"victim\""),
        "a rebound page read the jobs: {text}"
    );

    browser.close().await.unwrap();
    drop(driver);
    victim.stop().await;
    control.stop().await;
}
