//! The baseline of issue 17's speed bound: a bare axum handler answering `GET /scheduler`
//! with the same bytes tickd's `GET P` answers, on hyper's HTTP/1 with no layer at all, so
//! that `wrk` can run both side by side on one machine.
//!
//! `cargo run --release --example bare_axum -- PORT BODY_FILE` (the body: what
//! `curl http://127.0.0.1:5000/scheduler` answered).
#![allow(clippy::expect_used)]

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: bare_axum PORT BODY_FILE");
    let body: &'static [u8] = std::fs::read(args.next().expect("usage: bare_axum PORT BODY_FILE"))
        .expect("reading the body file")
        .leak();
    let app = Router::new().route(
        "/scheduler",
        get(move || async move { ([(CONTENT_TYPE, "application/json")], body) }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("binding the port");
    axum::serve(listener, app).await.expect("serving");
}
