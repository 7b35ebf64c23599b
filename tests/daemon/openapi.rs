//! The OpenAPI document (issue 17, point 1) over a bound port: served at `P/openapi.json`
//! behind the API's authentication, declaring OpenAPI 3.1, both auth schemes and only
//! `$ref`s that resolve; and in parity with the route table, both ways: every operation it
//! lists is routed (no 404 from the router, no 405), and every method it leaves out of a
//! routed path is a 405. Under each prefix tickd takes: `/scheduler`, another, the root.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::TestApp;

const AUTH: &str = "[auth]\nenabled = true\n\
    [[auth.users]]\nusername = \"boss\"\npassword = \"b-pass\"\n\
    [[auth.users]]\nusername = \"wall\"\npassword = \"w-pass\"\nrole = \"viewer\"\n";

/// The router's own 404 (no route has the path), told from a handler's (no such job).
const NO_ROUTE: &str = "The requested URL was not found on the server. If you entered the URL \
                        manually please check your spelling and try again.";

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The served document, as the viewer `wall` reads it.
async fn document(app: &TestApp) -> Value {
    // The root prefix is configured as `/`.
    let prefix = app.prefix.trim_end_matches('/');
    let response = app
        .client
        .get(format!("http://{}{prefix}/openapi.json", app.addr))
        .basic_auth("wall", Some("w-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// `(path, methods)` of every operation in `doc`.
fn operations(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (*m).to_owned())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// `path` with every `{param}` filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "nope")
}

/// Sends `method` to `path` (under no prefix: the document's paths carry it) as admin.
async fn send(app: &TestApp, method: &str, path: &str) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let response = app
        .client
        .request(method, format!("http://{}{}", app.addr, concrete(path)))
        .basic_auth("boss", Some("b-pass"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn parity_under(prefix: &str, console: &str) {
    let app = TestApp::spawn(&format!(
        "[api]\nprefix = \"{prefix}\"\n[console]\nenabled = {console}\n{AUTH}"
    ))
    .await;
    let doc = document(&app).await;
    let listed = operations(&doc);
    let routed: BTreeSet<String> = tickd::api::route_templates(prefix).into_iter().collect();
    assert_eq!(
        listed.keys().cloned().collect::<BTreeSet<_>>(),
        routed,
        "the document's paths are the route table's ({prefix:?})"
    );
    for (path, methods) in &listed {
        for method in METHODS {
            let (status, answer) = send(&app, method, path).await;
            if methods.contains(method) {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    status != StatusCode::NOT_FOUND || answer["error_message"] != NO_ROUTE,
                    "{method} {path} is in the document but not routed"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is routed but not in the document: {answer}"
                );
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_document_lists_every_route_and_only_routes() {
    parity_under("/scheduler", "false").await;
}

#[tokio::test]
async fn parity_holds_under_another_prefix_and_at_the_root() {
    parity_under("/api/v1", "true").await;
    // At the root the info route is `/` itself (the console elsewhere or off).
    parity_under("/", "false").await;
}

/// Every `{"$ref": ...}` in `value`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_both_schemes_and_whole() {
    let app = TestApp::spawn(AUTH).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["basicAuth"]["type"], "http");
    assert_eq!(schemes["basicAuth"]["scheme"], "basic");
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(
        doc["security"],
        serde_json::json!([{"basicAuth": []}, {"bearerAuth": []}])
    );
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 50, "{} refs", found.len());
    for target in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
    // Every operation names the statuses the layers in front of it may answer, and the job
    // object is a oneOf by trigger.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["401", "403", "421", "429", "500", "503"] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
    let job = &doc["components"]["schemas"]["Job"];
    assert_eq!(job["discriminator"]["propertyName"], "trigger");
    assert_eq!(job["oneOf"].as_array().unwrap().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn the_document_is_behind_authentication_and_says_when_it_is_off() {
    let app = TestApp::spawn(AUTH).await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;

    let app = TestApp::spawn("").await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc.get("security").is_none(),
        "no credentials are asked for"
    );
    assert!(doc["components"]["securitySchemes"]["basicAuth"].is_object());
    app.stop().await;
}
