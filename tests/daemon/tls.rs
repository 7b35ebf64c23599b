//! TLS when asked (issue 15, point 7): with `[server.tls]` the daemon serves HTTPS with the
//! configured certificate (checked by a client that trusts only that certificate), plain HTTP
//! gets no answer on that port, and a key that is not the certificate's stops start-up with a
//! message naming the problem.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::daemon::refused_start;
use crate::common::{TestApp, project_dir};

const TLS: &str = "[server.tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n\
    [auth]\nenabled = true\n[[auth.users]]\nusername = \"guest\"\npassword = \"guest\"\n";

/// Writes a self-signed certificate for localhost and 127.0.0.1 under `dir/tls/`; answers its
/// PEM.
fn certificate(dir: &Path) -> String {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("tls/cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("tls/key.pem"), made.signing_key.serialize_pem()).unwrap();
    made.cert.pem()
}

#[tokio::test]
async fn https_is_served_with_the_configured_certificate() {
    let dir = project_dir();
    let pem = certificate(dir.path());
    let app = TestApp::spawn_in(dir.path(), TLS, None).await;
    let port = app.addr.port();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();

    for host in ["localhost", "127.0.0.1"] {
        let info = client
            .get(format!("https://{host}:{port}/scheduler"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap();
        assert_eq!(info.status(), StatusCode::OK, "{host}");
        let info: Value = info.json().await.unwrap();
        assert_eq!(info["running"], true);
    }
    let added = client
        .post(format!("https://localhost:{port}/scheduler/jobs"))
        .basic_auth("guest", Some("guest"))
        .json(&json!({"id": "t", "func": "task:success", "args": ["test.py"], "trigger": "interval", "hours": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);

    // Plain HTTP on the HTTPS port: no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/scheduler"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // A client that does not trust the certificate refuses the connection.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .unwrap()
        .get(format!("https://localhost:{port}/scheduler"))
        .send()
        .await;
    assert!(untrusting.is_err());
    app.stop().await;
}

#[test]
fn a_key_that_is_not_the_certificates_stops_start_up() {
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path());
    let other_key = dir.path().join("tls/other.pem");
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    let cert = dir.path().join("tls/cert.pem");
    let stderr = refused_start(
        &format!(
            "[server.tls]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            other_key.display().to_string()
        ),
        &[],
    );
    assert!(
        stderr.contains("[server.tls]")
            && stderr.contains("the certificate and key cannot be used together"),
        "{stderr}"
    );
    let stderr = refused_start(
        "[server.tls]\ncert = \"nowhere/cert.pem\"\nkey = \"nowhere/key.pem\"\n",
        &[],
    );
    assert!(
        stderr.contains("the certificate file") && stderr.contains("nowhere/cert.pem"),
        "{stderr}"
    );
}
