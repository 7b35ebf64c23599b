//! A run's output (extension, issue 16): `GET P/runs/{run_id}/output`, at once as JSON, or
//! followed with `?follow=true` as Server-Sent Events until the run ends.
//!
//! The events, each `event:` then one `data:` line per line of its text (the SSE way: a client
//! joins them with `\n`, so a chunk's text comes back exactly, its line ends included):
//!
//! | event | data |
//! |---|---|
//! | `stdout`, `stderr` | a chunk of that output, as text (`\r\n` read as `\n`) |
//! | `truncated` | `{"stream": "stdout"}`: the output that follows is a tail, its beginning was not kept |
//! | `dropped` | `{"chunks": n, "bytes": b}`: this follower read too slowly and lost that much |
//! | `remote` | `{"node": ..., "message": ...}`: the run is on another daemon; its output comes when it ends |
//! | `end` | `{"status": ..., "exit_code": ..., "reason": ...}`: the run ended; the stream closes |
//! | `gone` | `{"message": ...}`: the run's record was removed before its end was seen |
//! | `refused` | `{"message": ...}`: the run, found running only after the stream began, already has as many followers as it takes |
//!
//! Every stream ends with `end`, `gone` or `refused`. A run that has its 64 followers
//! ([`crate::executor::MAX_WATCHERS`]) when the request comes is a 503 instead.
//!
//! Between events, a `: keep-alive` comment every [`KEEP_ALIVE`] keeps proxies from closing
//! an idle stream; `X-Accel-Buffering: no` asks nginx not to buffer it, and
//! `Cache-Control: no-cache` (axum's) any cache not to keep it.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::RunIdPath;
use super::openapi::schemas as doc;
use super::state::ApiState;
use super::wire::JsonBody;
use crate::executor::{LiveEnd, LiveEvent};
use crate::scheduler::{OutputEvent, RunOutput};

/// How often an idle stream gets a keep-alive comment: below the 60 s most proxies allow an
/// idle upstream.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `?follow=`.
#[derive(Debug, Deserialize)]
pub(crate) struct OutputQuery {
    follow: Option<String>,
}

/// `GET P/runs/{run_id}/output[?follow=true]`.
#[utoipa::path(
    get,
    path = "/runs/{id}/output",
    tag = "runs",
    operation_id = "get_run_output",
    params(
        ("id" = String, Path, description = "the run id", min_length = 1),
        (
            "follow" = Option<doc::Flag>,
            Query,
            description = "stream the output as Server-Sent Events until the run ends",
        ),
    ),
    responses(
        (
            status = 200,
            description = "The output; with `follow`, Server-Sent Events (`stdout`, `stderr`, `truncated`, `dropped`, `remote`, then `end`, `gone` or `refused`)",
            content(
                (doc::RunOutput = "application/json"),
                (doc::OutputEvent = "text/event-stream"),
            ),
        ),
        (
            status = 400,
            description = "A bad `follow`, or a NUL in the id",
            body = doc::ErrorEnvelope,
        ),
        (status = 404, description = "No such run", body = doc::ErrorEnvelope),
        (
            status = 503,
            description = "The run has as many followers as it takes, or the store is unavailable",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn get_output(
    State(state): State<ApiState>,
    RunIdPath(run_id): RunIdPath,
    query: Result<Query<OutputQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let follow = match query.follow.as_deref() {
        None | Some("false" | "0" | "") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "follow must be true or false, not {other:?}"
            )));
        }
    };
    if !follow {
        let output = state.scheduler.run_output(&run_id).await?;
        return Ok(JsonBody(output_to_json(&output)).into_response());
    }
    let events = state.scheduler.follow_output(&run_id).await?;
    let events = events.map(|event| Ok::<_, Infallible>(sse_event(event)));
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"));
    Ok(([("x-accel-buffering", "no")], sse).into_response())
}

/// The answer without `follow`.
fn output_to_json(output: &RunOutput) -> serde_json::Value {
    json!({
        "run_id": output.run_id,
        "status": output.status.as_str(),
        "exit_code": output.exit_code,
        "reason": output.reason,
        "stdout": output.stdout,
        "stderr": output.stderr,
        "stdout_truncated": output.stdout_truncated,
        "stderr_truncated": output.stderr_truncated,
    })
}

fn sse_event(event: OutputEvent) -> Event {
    match event {
        OutputEvent::Live(LiveEvent::Output { stream, text }) => {
            Event::default().event(stream.as_str()).data(text)
        }
        OutputEvent::Live(LiveEvent::Truncated { stream }) => {
            json_event("truncated", &json!({ "stream": stream.as_str() }))
        }
        OutputEvent::Live(LiveEvent::Dropped { chunks, bytes }) => {
            json_event("dropped", &json!({ "chunks": chunks, "bytes": bytes }))
        }
        OutputEvent::Live(LiveEvent::End(LiveEnd {
            status,
            exit_code,
            reason,
        })) => json_event(
            "end",
            &json!({ "status": status.as_str(), "exit_code": exit_code, "reason": reason }),
        ),
        OutputEvent::Remote { node } => json_event(
            "remote",
            &json!({
                "node": node,
                "message": format!(
                    "The run is running on another daemon ({node}); its output is shown when \
                     it ends"
                ),
            }),
        ),
        OutputEvent::Refused(message) => json_event("refused", &json!({ "message": message })),
        OutputEvent::Gone => json_event(
            "gone",
            &json!({ "message": "The run's record was removed before it was seen to end" }),
        ),
    }
}

/// An event whose data is one line of JSON (serde_json escapes every line break).
fn json_event(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}
