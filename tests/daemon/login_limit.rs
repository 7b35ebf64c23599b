//! Guessing slowed (issue 15, point 6), over a bound port on an injected clock: after
//! `max_failures` failed logins from one address, that address gets 429 with `Retry-After`
//! (even with the right password) until the window passes; another address is not slowed.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::Value;
use tickd::clock::ManualClock;

use crate::common::{TestApp, project_dir};

const LIMITED: &str = "[auth]\nenabled = true\nmax_failures = 3\nfailure_window = 60\n\
    [[auth.users]]\nusername = \"guest\"\npassword = \"guest\"\n";

/// `GET P` from `from` as guest with `password`: the status, `Retry-After`, the body.
async fn login(
    app: &TestApp,
    from: Ipv4Addr,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(from))
        .build()
        .unwrap();
    let response = client
        .get(app.url(""))
        .basic_auth("guest", Some(password))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
    (status, retry_after, body)
}

#[tokio::test]
async fn an_address_that_keeps_failing_waits_out_the_window_and_others_do_not() {
    let dir = project_dir();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap(),
    ));
    let app = TestApp::spawn_in(dir.path(), LIMITED, Some(clock.clone())).await;
    let guesser = Ipv4Addr::new(127, 0, 0, 1);
    let neighbour = Ipv4Addr::new(127, 0, 0, 2);

    for _ in 0..3 {
        assert_eq!(
            login(&app, guesser, "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // The limit reached: refused before the password is looked at, right or wrong.
    for password in ["wrong", "guest"] {
        let (status, retry_after, body) = login(&app, guesser, password).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(retry_after.as_deref(), Some("60"));
        assert_eq!(
            body["error_message"],
            "Too many failed logins from this address; try again in 60 s"
        );
    }
    assert_eq!(
        login(&app, neighbour, "guest").await.0,
        StatusCode::OK,
        "another address is not slowed"
    );
    // Asking without credentials is no guess: the neighbour is never counted for it.
    for _ in 0..5 {
        let bare = reqwest::Client::builder()
            .local_address(IpAddr::V4(neighbour))
            .build()
            .unwrap();
        let response = bare.get(app.url("")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&app, neighbour, "wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&app, neighbour, "guest").await.0, StatusCode::OK);

    clock.advance(TimeDelta::seconds(45));
    let (status, retry_after, _) = login(&app, guesser, "guest").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("15"));

    clock.advance(TimeDelta::seconds(15));
    assert_eq!(
        login(&app, guesser, "guest").await.0,
        StatusCode::OK,
        "the window has passed"
    );
    // A success cleared the count: the next failures start from nothing.
    for _ in 0..3 {
        assert_eq!(
            login(&app, guesser, "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn without_a_limit_failures_are_only_401s() {
    let app = TestApp::spawn(
        "[auth]\nenabled = true\nmax_failures = 0\n\
         [[auth.users]]\nusername = \"guest\"\npassword = \"guest\"\n",
    )
    .await;
    for _ in 0..20 {
        assert_eq!(
            login(&app, Ipv4Addr::LOCALHOST, "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&app, Ipv4Addr::LOCALHOST, "guest").await.0,
        StatusCode::OK
    );
    app.stop().await;
}
