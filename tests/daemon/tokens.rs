//! API tokens over a bound port (issue 15, point 4): a token's whole life (created by an
//! admin only, used with its role's limits, `last_used_at`, expiry on the daemon's clock,
//! revocation), its revocation seen at once by a second daemon on PostgreSQL, and
//! `tickd token` against a SQLite store with and without the daemon running.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tickd::clock::ManualClock;

use crate::common::db::{Server, in_fresh_database};
use crate::common::{TestApp, daemon, project_dir};

const USERS: &str = "[auth]\nenabled = true\n\
    [[auth.users]]\nusername = \"boss\"\npassword = \"b-pass\"\n\
    [[auth.users]]\nusername = \"ops\"\npassword = \"o-pass\"\nrole = \"operator\"\n\
    [[auth.users]]\nusername = \"wall\"\npassword = \"w-pass\"\nrole = \"viewer\"\n";

/// Who makes a request.
enum As<'a> {
    User(&'a str),
    Token(&'a str),
}

async fn call(
    app: &TestApp,
    who: As<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let request = app.client.request(method, app.url(path));
    let mut request = match who {
        As::User(user) => request.basic_auth(user, Some(format!("{}-pass", &user[..1]))),
        As::Token(token) => request.bearer_auth(token),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    (
        status,
        challenge,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn job(id: &str) -> Value {
    json!({"id": id, "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1})
}

/// Creates a token as the admin; answers its text and id.
async fn create(app: &TestApp, body: Value) -> (String, String) {
    let (status, _, created) =
        call(app, As::User("boss"), Method::POST, "/tokens", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    (token, id)
}

async fn listed(app: &TestApp, id: &str) -> Value {
    let (status, _, list) = call(app, As::User("boss"), Method::GET, "/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
    list.as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn iso(at: DateTime<Utc>) -> String {
    tickd::trigger::isoformat(&at.fixed_offset())
}

#[tokio::test]
async fn a_tokens_whole_life() {
    let start = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let dir = project_dir();
    let app = TestApp::spawn_in(dir.path(), USERS, Some(clock.clone())).await;

    // Only an admin manages tokens.
    let body = json!({"name": "ci", "role": "operator", "expires_at": "2030-01-01T01:00:00Z"});
    for user in ["ops", "wall"] {
        let (status, _, _) = call(
            &app,
            As::User(user),
            Method::POST,
            "/tokens",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{user}");
        let (status, _, _) = call(&app, As::User(user), Method::GET, "/tokens", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{user}");
    }
    let (status, _, created) =
        call(&app, As::User("boss"), Method::POST, "/tokens", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let ci = created["token"].as_str().unwrap().to_owned();
    let ci_id = created["id"].as_str().unwrap().to_owned();
    assert!(ci.starts_with(&format!("tickd_{ci_id}_")), "{ci}");
    assert_eq!(created["prefix"], format!("tickd_{ci_id}"));
    assert_eq!(created["name"], "ci");
    assert_eq!(created["role"], "operator");
    assert_eq!(created["created_at"], iso(start));
    assert_eq!(created["expires_at"], iso(start + TimeDelta::hours(1)));
    assert_eq!(created["last_used_at"], Value::Null);

    // The listing never shows the secret.
    let (_, _, list) = call(&app, As::User("boss"), Method::GET, "/tokens", None).await;
    let secret = &ci[ci.len() - 64..];
    assert!(!list.to_string().contains(secret), "{list}");
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("token");
    assert_eq!(list, json!([expected]));

    // An operator token runs jobs but manages no tokens; a viewer token only reads.
    let (status, _, _) = call(&app, As::Token(&ci), Method::POST, "/jobs", Some(job("a"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&app, As::Token(&ci), Method::GET, "/tokens", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (wall, wall_id) = create(&app, json!({"name": "wall screen", "role": "viewer"})).await;
    let (status, _, jobs) = call(&app, As::Token(&wall), Method::GET, "/jobs", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs[0]["id"], "a");
    let (status, _, refused) = call(
        &app,
        As::Token(&wall),
        Method::POST,
        "/jobs",
        Some(job("b")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused["error_message"],
        "Forbidden: this needs the operator role; user \"wall screen\" has the viewer role"
    );
    // An admin token manages tokens.
    let (root, _) = create(&app, json!({"name": "root", "role": "admin"})).await;
    let (status, _, _) = call(&app, As::Token(&root), Method::GET, "/tokens", None).await;
    assert_eq!(status, StatusCode::OK);

    // last_used_at: written by a use, then at most once a minute.
    assert_eq!(listed(&app, &ci_id).await["last_used_at"], iso(start));
    clock.advance(TimeDelta::seconds(30));
    call(&app, As::Token(&ci), Method::GET, "/jobs", None).await;
    assert_eq!(listed(&app, &ci_id).await["last_used_at"], iso(start));
    clock.advance(TimeDelta::seconds(31));
    call(&app, As::Token(&ci), Method::GET, "/jobs", None).await;
    assert_eq!(
        listed(&app, &ci_id).await["last_used_at"],
        iso(start + TimeDelta::seconds(61))
    );

    // Anything wrong with a token is the same 401 as a wrong password.
    let mut wrong = ci.clone();
    let last = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(wrong.len() - 1.., last);
    let unknown = format!("tickd_000000000000_{secret}");
    for bad in [wrong.as_str(), unknown.as_str(), "tickd_", "abc", ""] {
        let (status, challenge, _) = call(&app, As::Token(bad), Method::GET, "/jobs", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(challenge, tickd::api::CHALLENGE);
    }

    // Expired on the daemon's clock: 401.
    clock.set(start + TimeDelta::hours(1));
    let (status, _, _) = call(&app, As::Token(&ci), Method::GET, "/jobs", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&app, As::Token(&wall), Method::GET, "/jobs", None).await;
    assert_eq!(status, StatusCode::OK, "a token without expiry lives on");

    // Revoked: 401 at once; revoking again is 404.
    let path = format!("/tokens/{wall_id}");
    let (status, _, _) = call(&app, As::User("boss"), Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, As::Token(&wall), Method::GET, "/jobs", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, gone) = call(&app, As::User("boss"), Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone["error_message"], format!("Token {wall_id} not found"));
    assert_eq!(listed(&app, &wall_id).await, Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn bad_token_requests_are_400_with_a_reason() {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    ));
    let dir = project_dir();
    let app = TestApp::spawn_in(dir.path(), USERS, Some(clock)).await;
    for (body, says) in [
        (json!({"role": "viewer"}), "name is required"),
        (
            json!({"name": " ", "role": "viewer"}),
            "name must not be empty",
        ),
        (
            json!({"name": "x".repeat(101), "role": "viewer"}),
            "at most 100",
        ),
        (
            json!({"name": "a\nb", "role": "viewer"}),
            "control characters",
        ),
        (json!({"name": "x"}), "role is required"),
        (
            json!({"name": "x", "role": "root"}),
            "viewer, operator or admin",
        ),
        (
            json!({"name": "x", "role": "viewer", "expires_at": "tomorrow"}),
            "RFC 3339",
        ),
        (
            json!({"name": "x", "role": "viewer", "expires_at": "2029-12-31T23:59:59Z"}),
            "in the future",
        ),
        (
            json!({"name": "x", "role": "viewer", "secret": "mine"}),
            "Unknown field",
        ),
        (json!(["x"]), "JSON object"),
    ] {
        let (status, _, answer) = call(
            &app,
            As::User("boss"),
            Method::POST,
            "/tokens",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let message = answer["error_message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    let (_, _, list) = call(&app, As::User("boss"), Method::GET, "/tokens", None).await;
    assert_eq!(list, json!([]));
    app.stop().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn a_revocation_on_one_daemon_holds_at_once_on_another_on_postgres() {
    in_fresh_database(Server::Postgres, |url| async move {
        let a = TestApp::spawn_with_store(USERS, &url).await;
        let b = TestApp::spawn_with_store(USERS, &url).await;
        let (token, id) = create(&a, json!({"name": "shared", "role": "operator"})).await;
        let (status, _, _) =
            call(&b, As::Token(&token), Method::POST, "/jobs", Some(job("x"))).await;
        assert_eq!(status, StatusCode::OK, "a token made on A works on B");
        assert!(
            listed(&a, &id).await["last_used_at"].is_string(),
            "B's use is seen on A"
        );
        let (status, _, _) = call(
            &a,
            As::User("boss"),
            Method::DELETE,
            &format!("/tokens/{id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _, _) = call(&b, As::Token(&token), Method::GET, "/jobs", None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "revoked on A, refused on B at once"
        );
        a.stop().await;
        b.stop().await;
    })
    .await;
}

/// Runs `tickd token ...` with the config in `dir`; answers its status, stdout and stderr.
fn tickd_token(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tickd"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("token")
        .args(args)
        .env_remove("TICKD_CONFIG")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

async fn jobs_with(port: u16, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/scheduler/jobs"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_command_line_manages_tokens_with_and_without_the_daemon() {
    let dir = project_dir();
    let port = daemon::free_port();
    daemon::write_config(dir.path(), port, "[store]\nurl = \"sqlite://tokens.db\"\n");

    // No daemon running: the store is created and the token printed alone on stdout.
    let (ok, stdout, stderr) = tickd_token(
        dir.path(),
        &[
            "create",
            "--name",
            "ci",
            "--role",
            "operator",
            "--expires",
            "30d",
        ],
    );
    assert!(ok, "{stderr}");
    let token = stdout.trim().to_owned();
    assert_eq!(stdout, format!("{token}\n"));
    assert!(token.starts_with("tickd_"), "{token}");
    assert!(
        !stderr.contains(&token[token.len() - 64..]),
        "the secret is printed once: {stderr}"
    );
    let (ok, listing, _) = tickd_token(dir.path(), &["list", "--json"]);
    assert!(ok);
    let listing: Value = serde_json::from_str(&listing).unwrap();
    let id = listing[0]["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("tickd_{id}_")));
    assert_eq!(listing[0]["role"], "operator");
    assert!(listing[0]["expires_at"].is_string());

    // The daemon accepts it; the command line works beside the running daemon too.
    let mut child = daemon::start(dir.path(), port).await;
    assert_eq!(jobs_with(port, &token).await, StatusCode::OK);
    let (ok, second, stderr) = tickd_token(
        dir.path(),
        &["create", "--name", "wall", "--role", "viewer"],
    );
    assert!(ok, "while the daemon runs: {stderr}");
    assert_eq!(jobs_with(port, second.trim()).await, StatusCode::OK);
    let (ok, table, _) = tickd_token(dir.path(), &["list"]);
    assert!(ok);
    assert!(
        table.contains(&id) && table.contains("wall\tviewer"),
        "{table}"
    );
    let (ok, _, stderr) = tickd_token(dir.path(), &["revoke", &id]);
    assert!(ok, "{stderr}");
    assert_eq!(jobs_with(port, &token).await, StatusCode::UNAUTHORIZED);
    let (ok, _, stderr) = tickd_token(dir.path(), &["revoke", &id]);
    assert!(!ok && stderr.contains("no token has the id"), "{stderr}");
    daemon::stop(&mut child);
}
