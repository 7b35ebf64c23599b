//! The web console (issue 16, part 4): its page and files over a bound port (headers, behind
//! the login, the size budget), `GET P/me` and `GET P/scripts`, `[console]` switched off or
//! colliding with the API, and the console itself end to end in a real headless Chromium
//! (`TICKD_TEST_CHROMEDRIVER`, as `browser`): create a job through the form and see it fire,
//! follow a run's output live, pause, resume, delete; a viewer sees no button that changes
//! anything. `screenshots` (ignored: run with `--ignored`) writes docs/screenshots/.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use serde_json::{Value, json};

use crate::common::browser::{Driver, PATIENCE};
use crate::common::setup::required;
use crate::common::{TestApp, config_in, project_dir};

/// Three users, one per role.
const USERS: &str = "[auth]\nenabled = true\n\
    [[auth.users]]\nusername = \"boss\"\npassword = \"b-pass\"\n\
    [[auth.users]]\nusername = \"op\"\npassword = \"o-pass\"\nrole = \"operator\"\n\
    [[auth.users]]\nusername = \"vic\"\npassword = \"v-pass\"\nrole = \"viewer\"\n";

/// The console's files and page, gzipped, may weigh this much in all (the brief's budget).
const GZIP_BUDGET: usize = 200 * 1024;

/// A script that prints a line, then waits for the file named by its first argument.
const WAITER: &str = "import os, sys, time\n\
    print('\\x1b[32mfirst line\\x1b[0m', flush=True)\n\
    deadline = time.time() + 60\n\
    while not os.path.exists(sys.argv[1]) and time.time() < deadline:\n    time.sleep(0.05)\n\
    print('done', flush=True)\n";

/// `GET path` on the app's root (not under the API's prefix) as `user`, or anonymously.
async fn get_raw(
    app: &TestApp,
    path: &str,
    user: Option<(&str, &str)>,
    headers: &[(reqwest::header::HeaderName, &str)],
) -> reqwest::Response {
    let mut request = app.client.get(format!("http://{}{path}", app.addr));
    if let Some((name, password)) = user {
        request = request.basic_auth(name, Some(password));
    }
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    request.send().await.unwrap()
}

/// `GET P/me` as `user`.
async fn me(app: &TestApp, user: &str, password: &str) -> Value {
    let answer = app
        .client
        .get(app.url("/me"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

fn header<'a>(answer: &'a reqwest::Response, name: &reqwest::header::HeaderName) -> &'a str {
    answer
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_console_is_served_with_its_headers_behind_the_login() {
    let app = TestApp::spawn(USERS).await;
    let boss = Some(("boss", "b-pass"));

    // No credentials: the browser's login prompt, for the page and its files alike.
    for path in ["/", "/assets/app.js"] {
        let answer = get_raw(&app, path, None, &[]).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            header(&answer, &reqwest::header::WWW_AUTHENTICATE).starts_with("Basic"),
            "{path}"
        );
    }

    let page = get_raw(&app, "/", boss, &[]).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, &CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&page, &CACHE_CONTROL), "no-cache");
    let etag = header(&page, &ETAG).to_owned();
    let text = page.text().await.unwrap();
    assert!(text.contains(r#"<meta name="tickd-prefix" content="/scheduler">"#));
    assert!(!text.contains("<script>"), "no inline script");

    let types = [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
        ("/assets/icon.svg", "image/svg+xml"),
    ];
    for (path, content_type) in types {
        let answer = get_raw(&app, path, boss, &[]).await;
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&answer, &CONTENT_TYPE), content_type, "{path}");
        // The headers every console answer carries.
        let csp = header(&answer, &CONTENT_SECURITY_POLICY);
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header(&answer, &X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(&answer, &X_FRAME_OPTIONS), "DENY");
        assert_eq!(header(&answer, &REFERRER_POLICY), "no-referrer");
        assert_eq!(header(&answer, &CACHE_CONTROL), "no-cache");
    }
    // A viewer reads them too.
    let answer = get_raw(&app, "/assets/app.js", Some(("vic", "v-pass")), &[]).await;
    assert_eq!(answer.status(), StatusCode::OK);

    // Revalidation: the same ETag answers 304 with the same headers and no body.
    let again = get_raw(&app, "/", boss, &[(IF_NONE_MATCH, etag.as_str())]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, &X_FRAME_OPTIONS), "DENY");
    assert!(again.text().await.unwrap().is_empty());

    // Unknown files are the JSON 404; writes are 405 (and an operator's, so the viewer gets
    // 403 first).
    let answer = get_raw(&app, "/assets/nope.js", boss, &[]).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let body = answer.json::<Value>().await.unwrap();
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{body}"
    );
    let answer = app
        .client
        .post(format!("http://{}/", app.addr))
        .basic_auth("boss", Some("b-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[tokio::test]
async fn the_console_is_small() {
    // flate2 is not a dependency: the raw bound is the budget itself, which the gzipped size
    // (about a fifth of it; `gzip -9 | wc -c`, reported in the docs) is far under.
    let raw: usize = tickd::api::CONSOLE_ASSETS
        .iter()
        .map(|(_, _, body)| body.len())
        .sum::<usize>()
        + include_str!("../../console/index.html").len();
    assert!(
        raw <= GZIP_BUDGET,
        "the console is {raw} bytes, over {GZIP_BUDGET}"
    );
}

#[tokio::test]
async fn me_says_who_is_logged_in_and_the_schedulers_state() {
    let app = TestApp::spawn(USERS).await;
    for (user, password, role) in [
        ("boss", "b-pass", "admin"),
        ("op", "o-pass", "operator"),
        ("vic", "v-pass", "viewer"),
    ] {
        assert_eq!(
            me(&app, user, password).await,
            json!({"name": user, "role": role, "credential": "password", "scheduler_state": "running"})
        );
    }
    let (status, _) = app.post("/pause", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&app, "vic", "v-pass").await["scheduler_state"], "paused");
    let answer = app.client.get(app.url("/me")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;

    // Authentication off: everyone is an admin, nobody in particular.
    let app = TestApp::spawn("").await;
    let (status, body) = app.get("/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"name": null, "role": "admin", "credential": null, "scheduler_state": "running"})
    );
    app.stop().await;
}

#[tokio::test]
async fn scripts_lists_what_a_job_may_run() {
    let dir = project_dir();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(workspace.join("tools/deep")).unwrap();
    std::fs::write(workspace.join("tools/deep/backup.py"), "").unwrap();
    std::fs::write(workspace.join("notes.txt"), "not a script").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.py"), "").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.py"), workspace.join("out.py")).unwrap();
    let app = TestApp::spawn_in(dir.path(), USERS, None).await;
    let answer = app
        .client
        .get(app.url("/scripts"))
        .basic_auth("vic", Some("v-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({"scripts": ["echo.py", "fail.py", "slow.py", "test.py", "tools/deep/backup.py"],
               "truncated": false})
    );
    app.stop().await;
}

#[tokio::test]
async fn the_console_can_be_switched_off_or_moved_with_the_prefix() {
    let app = TestApp::spawn("[console]\nenabled = false\n").await;
    for path in ["/", "/assets/app.js"] {
        let answer = get_raw(&app, path, None, &[]).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The API's own routes are there.
    assert_eq!(app.get("/me").await.0, StatusCode::OK);
    app.stop().await;

    let app =
        TestApp::spawn("[api]\nprefix = \"/api/v1\"\n[console]\npath = \"/console/\"\n").await;
    let page = get_raw(&app, "/console", None, &[]).await;
    assert_eq!(page.status(), StatusCode::OK);
    let text = page.text().await.unwrap();
    assert!(text.contains(r#"<meta name="tickd-prefix" content="/api/v1">"#));
    assert!(text.contains(r#"src="/console/assets/app.js""#));
    let answer = get_raw(&app, "/console/assets/style.css", None, &[]).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        get_raw(&app, "/", None, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;

    // Outside the API's prefix, a path is the console's: a viewer reads a console at `/audit`
    // (the API's audit log, at `P/audit`, stays an admin's).
    let app = TestApp::spawn(&format!("[console]\npath = \"/audit\"\n{USERS}")).await;
    let vic = Some(("vic", "v-pass"));
    assert_eq!(
        get_raw(&app, "/audit", vic, &[]).await.status(),
        StatusCode::OK
    );
    let answer = get_raw(&app, "/scheduler/audit", vic, &[]).await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[test]
fn a_console_path_colliding_with_the_api_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (config, why) in [
        (
            "[api]\nprefix = \"/ui\"\n[console]\npath = \"/ui\"\n",
            "both are at the same path",
        ),
        (
            "[api]\nprefix = \"/\"\n[console]\nenabled = true\n",
            "both are at the same path",
        ),
        (
            "[api]\nprefix = \"/\"\n[console]\npath = \"/ui\"\n",
            "the console would be inside the API's paths",
        ),
        (
            "[console]\npath = \"/scheduler/ui\"\n",
            "the console would be inside the API's paths",
        ),
        (
            "[api]\nprefix = \"/assets/api\"\n[console]\npath = \"/\"\n",
            "the API would be inside the console's assets/ folder",
        ),
    ] {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        let error = tickd::config::Config::load(&path, Vec::<(String, String)>::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("[console] path"), "{config}: {error}");
        assert!(error.contains(why), "{config}: {error}");
        assert!(error.contains("[console] enabled = false"), "{error}");
    }
    // Switched off, the API off, or the console not asked for (a config written before it,
    // with the API at the root, keeps working; the console stays off): nothing to refuse.
    let config = config_in(dir.path(), "[api]\nprefix = \"/\"\n");
    assert_eq!(config.console_path(), None);
    let config = config_in(dir.path(), "");
    assert_eq!(config.console_path(), Some("/"));
    let _ = config_in(
        dir.path(),
        "[api]\nprefix = \"/\"\n[console]\nenabled = false\n",
    );
    let _ = config_in(dir.path(), "[api]\nenabled = false\nprefix = \"/\"\n");
    let _ = config_in(dir.path(), "[console]\npath = \"/schedulerx\"\n");
}

// ---- In the browser ------------------------------------------------------------------------

/// Waits until `css` matches an element; answers it.
async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(found) = browser.find(Locator::Css(css)).await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {css} after {PATIENCE:?}; the page: {}",
            body_text(browser).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the text of `css` contains `needle`, as shown (CSS may upper-case it: the
/// comparison ignores case).
async fn wait_text(browser: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(found) = browser.find(Locator::Css(css)).await
            && let Ok(text) = found.text().await
            && text.to_lowercase().contains(&needle.to_lowercase())
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {needle:?}; the page: {}",
            body_text(browser).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `check` holds, polling the API.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn body_text(browser: &Client) -> String {
    match browser.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(e) => format!("(no body: {e})"),
    }
}

/// Opens the console at `hash` and waits until it has loaded who is logged in.
async fn open(browser: &Client, app: &TestApp, hash: &str) {
    browser
        .goto(&format!("http://{}/{hash}", app.addr))
        .await
        .unwrap();
    wait_for(browser, "body[data-ready='true']").await;
}

/// Logs in as the browser's user does: the address with the credentials, which the browser
/// then keeps for the origin.
async fn log_in(browser: &Client, app: &TestApp, user: &str, password: &str) {
    browser
        .goto(&format!("http://{user}:{password}@{}/", app.addr))
        .await
        .unwrap();
    wait_for(browser, "body[data-ready='true']").await;
    open(browser, app, "").await;
    wait_text(browser, "#who", user).await;
}

/// The buttons that would change something, shown on the page.
async fn mutating_buttons(browser: &Client) -> Vec<String> {
    let mut found = Vec::new();
    for action in [
        "pause", "resume", "run", "delete", "cancel", "shutdown", "start",
    ] {
        let css = format!("button[data-action='{action}']");
        if !browser
            .find_all(Locator::Css(&css))
            .await
            .unwrap()
            .is_empty()
        {
            found.push(action.to_owned());
        }
    }
    for css in ["form.job-form", "a[href='#/new']:not([hidden])"] {
        for element in browser.find_all(Locator::Css(css)).await.unwrap() {
            if element.is_displayed().await.unwrap_or(false) {
                found.push(css.to_owned());
            }
        }
    }
    found
}

/// Clicks the element `css` matches (waiting for it), scrolled to the middle of the window:
/// the header stays on top of the page's first lines.
async fn click(browser: &Client, css: &str) {
    let element = wait_for(browser, css).await;
    let arg = serde_json::to_value(&element).unwrap();
    browser
        .execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg])
        .await
        .unwrap();
    element.click().await.unwrap();
}

/// Types `text` into the form's input `name`.
async fn type_into(browser: &Client, name: &str, text: &str) {
    let input = wait_for(browser, &format!("form.job-form [name='{name}']")).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// `GET P/jobs/<id>`, `id` as written in a URL.
async fn job_state(app: &TestApp, id: &str) -> (StatusCode, Value) {
    app.get(&format!("/jobs/{id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tickd_test_chromium),
    ignore = "needs TICKD_TEST_CHROMEDRIVER (Debian's chromium-driver; .ci/run installs it)"
)]
async fn the_console_drives_tickd_end_to_end_in_chromium() {
    let chromedriver = required("TICKD_TEST_CHROMEDRIVER");
    let driver = Driver::start(&chromedriver).await;
    let app = TestApp::spawn(USERS).await;
    std::fs::write(app.dir.join("workspace/wait.py"), WAITER).unwrap();
    let browser = driver.browser(&["--window-size=1280,800".to_owned()]).await;
    log_in(&browser, &app, "boss", "b-pass").await;
    wait_text(&browser, "#who", "admin").await;
    wait_text(&browser, "#sched-state", "running").await;

    // A cron job through the form, previewed as it is typed.
    open(&browser, &app, "#/new").await;
    type_into(&browser, "id", "tick <b>2</b>").await;
    type_into(&browser, "script", "test.py").await;
    type_into(&browser, "second", "*/2").await;
    wait_text(&browser, ".preview .description", "every 2 seconds").await;
    wait_for(&browser, ".preview .fire-times li:nth-child(5)").await;
    wait_for(&browser, "datalist#script-names option[value='wait.py']").await;
    click(&browser, "form.job-form button[type='submit']").await;
    let id = "tick <b>2</b>";
    let path = "tick%20%3Cb%3E2%3C%2Fb%3E";
    eventually("the job is created", || async {
        job_state(&app, path).await.0 == StatusCode::OK
    })
    .await;
    // Its page: the id shown as text (no <b> element made of it), its next fire times, then
    // its runs as it fires.
    let title = wait_text(&browser, "h1", id).await;
    assert_eq!(title, id);
    assert!(browser.find(Locator::Css("h1 b")).await.is_err());
    wait_for(&browser, ".fire-times li:nth-child(10)").await;
    wait_text(&browser, ".card table", "succeeded").await;

    // The edit form: a new name, retries and an overlap policy, previewed and saved with
    // PATCH; the schedule stays.
    let before = job_state(&app, path).await.1;
    type_into(&browser, "name", "Tick two").await;
    type_into(&browser, "retries", "3").await;
    type_into(&browser, "retry_delay", "5").await;
    wait_for(&browser, "form.job-form select[name='overlap']")
        .await
        .select_by_value("queue")
        .await
        .unwrap();
    wait_text(&browser, ".preview .description", "every 2 seconds").await;
    click(&browser, "form.job-form button[type='submit']").await;
    eventually("the new name is saved", || async {
        job_state(&app, path).await.1["name"] == "Tick two"
    })
    .await;
    let after = job_state(&app, path).await.1;
    assert_eq!(after["second"], before["second"]);
    assert_eq!(after["trigger"], "cron");
    assert_eq!(
        (
            &after["retry"]["limit"],
            &after["retry"]["delay"],
            &after["overlap"]
        ),
        (&json!(3), &json!(5), &json!("queue"))
    );

    // Pause and resume from the job's page.
    click(&browser, "button[data-action='pause']").await;
    wait_for(&browser, "button[data-action='resume']").await;
    assert_eq!(job_state(&app, path).await.1["next_run_time"], Value::Null);
    click(&browser, "button[data-action='resume']").await;
    wait_for(&browser, "button[data-action='pause']").await;
    assert!(job_state(&app, path).await.1["next_run_time"].is_string());

    // A run's output, live: the first line shows while the script still waits.
    let flag = app.dir.join("go");
    let (status, _) = app
        .post(
            "/jobs",
            json!({"id": "waiter", "func": "task:run_script",
                   "args": ["wait.py", flag.display().to_string()], "next_run_time": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, _) = app
        .call(reqwest::Method::POST, "/jobs/waiter/run", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let location = headers["location"].to_str().unwrap();
    let run_id = location.rsplit('/').next().unwrap().to_owned();
    open(&browser, &app, &format!("#/runs/{run_id}")).await;
    wait_text(&browser, "#stdout", "first line").await;
    // The colour is a span's class, not an escape sequence.
    let green = wait_for(&browser, "#stdout span.fg2").await;
    assert_eq!(green.text().await.unwrap(), "first line");
    let (_, run) = app.get(&format!("/runs/{run_id}")).await;
    assert_eq!(run["status"], "running", "the line came before the end");
    wait_for(&browser, "button[data-action='cancel']").await;
    std::fs::write(&flag, "").unwrap();
    wait_for(&browser, "#run-facts[data-status='succeeded']").await;
    wait_text(&browser, "#stdout", "done").await;

    // Delete from the jobs table, confirmed in the dialog.
    open(&browser, &app, "#/jobs").await;
    let row = "tr[data-job='tick <b>2</b>']";
    click(&browser, &format!("{row} button[data-action='delete']")).await;
    click(&browser, "dialog[open] button[data-confirm='yes']").await;
    eventually("the job is deleted", || async {
        job_state(&app, path).await.0 == StatusCode::NOT_FOUND
    })
    .await;

    // Nothing overflows sideways at 360 px.
    browser.set_window_size(360, 800).await.unwrap();
    for hash in [
        "#/",
        "#/jobs",
        "#/jobs/waiter",
        "#/new",
        &format!("#/runs/{run_id}"),
    ] {
        open(&browser, &app, hash).await;
        wait_for(&browser, "main h1").await;
        let wide = browser
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            wide.as_i64().unwrap() <= 0,
            "{hash} is {wide} px too wide at 360 px"
        );
    }

    // A viewer sees no button that would be refused.
    let viewer = driver.browser(&["--window-size=1280,800".to_owned()]).await;
    log_in(&viewer, &app, "vic", "v-pass").await;
    wait_text(&viewer, "#who", "viewer").await;
    let run_hash = format!("#/runs/{run_id}");
    for (hash, drawn) in [
        ("#/", "paused"),
        ("#/jobs", "waiter"),
        ("#/jobs/waiter", "task:run_script"),
        (run_hash.as_str(), "succeeded"),
    ] {
        open(&viewer, &app, hash).await;
        // The screen's data is drawn, with whatever buttons it would have.
        wait_text(&viewer, "main", drawn).await;
        assert_eq!(
            mutating_buttons(&viewer).await,
            Vec::<String>::new(),
            "{hash}"
        );
    }
    wait_for(&viewer, "button[data-action='download']").await;

    viewer.close().await.unwrap();
    browser.close().await.unwrap();
    drop(driver);
    app.stop().await;
}

/// Sizes the window so that the page itself is `width` x `height`.
async fn viewport(browser: &Client, width: u32, height: u32) {
    browser.set_window_size(width, height).await.unwrap();
    let inner = browser
        .execute("return [window.innerWidth, window.innerHeight]", vec![])
        .await
        .unwrap();
    let (w, h) = (inner[0].as_u64().unwrap(), inner[1].as_u64().unwrap());
    let width = width + (u64::from(width) - w) as u32;
    let height = height + (u64::from(height) - h) as u32;
    browser.set_window_size(width, height).await.unwrap();
}

/// Where the screenshots go: `TICKD_SCREENSHOTS`, else docs/screenshots.
fn screenshot_dir() -> PathBuf {
    match std::env::var_os("TICKD_SCREENSHOTS").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/screenshots/ (or TICKD_SCREENSHOTS): run with --ignored; needs TICKD_TEST_CHROMEDRIVER"]
async fn screenshots() {
    let chromedriver = required("TICKD_TEST_CHROMEDRIVER");
    let driver = Driver::start(&chromedriver).await;
    let app = TestApp::spawn(
        "[scheduler]\ntimezone = \"Europe/Berlin\"\n\
         [auth]\nenabled = true\n[[auth.users]]\nusername = \"ana\"\npassword = \"a-pass\"\nrole = \"operator\"\n",
    )
    .await;
    let workspace = app.dir.join("workspace");
    std::fs::write(
        workspace.join("report.py"),
        "import sys\nprint('\\x1b[1mNightly report\\x1b[0m')\nprint('rows read:   \\x1b[32m12,480\\x1b[0m')\n\
         print('rows failed: \\x1b[31m3\\x1b[0m')\nprint('warning: 3 rows skipped', file=sys.stderr)\n",
    )
    .unwrap();
    let jobs = [
        json!({"id": "nightly-report", "name": "Nightly report", "func": "task:run_script",
               "args": ["report.py"], "trigger": "cron", "hour": "2", "minute": "30",
               "timezone": "Europe/Berlin"}),
        json!({"id": "sync-inventory", "name": "Inventory sync", "func": "task:run_script",
               "args": ["test.py"], "trigger": "interval", "minutes": 15}),
        json!({"id": "weekday-digest", "func": "task:run_script", "args": ["test.py"],
               "trigger": "cron", "day_of_week": "mon-fri", "hour": "9", "timezone": "America/New_York"}),
        json!({"id": "billing-export", "func": "task:run_script", "args": ["fail.py"],
               "trigger": "cron", "minute": "*/30"}),
        json!({"id": "year-end", "func": "task:success", "args": ["test.py"], "trigger": "date",
               "run_date": "2030-12-31 23:00:00", "next_run_time": null}),
        json!({"id": "long-backup", "func": "task:run_script", "args": ["slow.py", "120"],
               "trigger": "cron", "hour": "3"}),
    ];
    for job in jobs {
        let (status, body) = app.post("/jobs", job).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for id in [
        "nightly-report",
        "billing-export",
        "sync-inventory",
        "nightly-report",
    ] {
        app.call(
            reqwest::Method::POST,
            &format!("/jobs/{id}/run?wait=true"),
            None,
        )
        .await;
    }
    app.post("/jobs/weekday-digest/pause", json!({})).await;
    let (_, headers, _) = app
        .call(reqwest::Method::POST, "/jobs/long-backup/run", None)
        .await;
    let backup_run = headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (_, runs) = app.get("/runs?job=nightly-report&limit=1").await;
    let report_run = runs[0]["id"].as_str().unwrap().to_owned();

    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let browser = driver.browser(&["--window-size=1280,800".to_owned()]).await;
    log_in(&browser, &app, "ana", "a-pass").await;
    viewport(&browser, 1280, 800).await;
    let screens = [
        ("overview", "#/".to_owned(), "main table"),
        ("jobs", "#/jobs".to_owned(), "tr[data-job]"),
        ("job", "#/jobs/nightly-report".to_owned(), ".fire-times li"),
        ("new-job", "#/new".to_owned(), ".preview"),
        ("run", format!("#/runs/{report_run}"), "#run-facts"),
        ("cluster", "#/cluster".to_owned(), "main table tbody tr"),
    ];
    for theme in ["light", "dark"] {
        browser
            .execute(
                "localStorage.setItem('tickd-theme', arguments[0])",
                vec![json!(theme)],
            )
            .await
            .unwrap();
        browser.refresh().await.unwrap();
        for (name, hash, ready) in &screens {
            open(&browser, &app, hash).await;
            wait_for(&browser, ready).await;
            if *name == "new-job" {
                type_into(&browser, "id", "cleanup-tmp").await;
                type_into(&browser, "script", "test.py").await;
                type_into(&browser, "minute", "0").await;
                type_into(&browser, "hour", "*/6").await;
                wait_for(&browser, ".preview .fire-times").await;
            }
            // Lazy parts (the jobs' triggers in words, the output) settle.
            tokio::time::sleep(Duration::from_millis(800)).await;
            let png = browser.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{theme}.png")), png).unwrap();
        }
    }
    viewport(&browser, 360, 800).await;
    for (name, hash) in [("jobs", "#/jobs"), ("overview", "#/")] {
        open(&browser, &app, hash).await;
        wait_for(&browser, "main table").await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let png = browser.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}-360-dark.png")), png).unwrap();
    }
    browser.close().await.unwrap();
    drop(driver);
    app.call(
        reqwest::Method::POST,
        &format!("/runs/{backup_run}/cancel"),
        None,
    )
    .await;
    app.stop().await;
}
