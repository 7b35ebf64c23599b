//! The scheduler as a whole: `GET P`, `POST P/pause`, `P/resume`, `P/start`, `P/shutdown`
//! (reference §1.3.1–1.3.5).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;

use super::error::ApiError;
use super::extract::{RawBody, shutdown_wait};
use super::openapi::schemas as doc;
use super::state::ApiState;
use super::wire::{encode, info_to_json, json_response};
use crate::scheduler::RunState;

/// `GET P`'s two possible bodies, encoded once: what it reports (the allowed hosts, this
/// host's name) does not change while the daemon runs, only `running` does, and `GET P` is
/// what monitors and load balancers poll.
#[derive(Debug, Clone)]
pub struct SchedulerInfo {
    /// The body with `"running": false`, then with `true`.
    bodies: [Bytes; 2],
}

impl SchedulerInfo {
    /// The bodies for `allowed_hosts` (`[scheduler] allowed_hosts`) and this machine's name.
    pub fn new(allowed_hosts: &[String], current_host: &str) -> SchedulerInfo {
        let body = |running| {
            let value = info_to_json(allowed_hosts, current_host, running);
            // A `Value` of strings and a boolean always encodes.
            Bytes::from(encode(&value).unwrap_or_default())
        };
        SchedulerInfo {
            bodies: [body(false), body(true)],
        }
    }
}

/// `GET P`: `running` is true whenever the scheduler is not stopped, paused included.
#[utoipa::path(
    get,
    path = "/",
    tag = "scheduler",
    operation_id = "get_scheduler_info",
    responses(
        (status = 200, description = "The scheduler", body = doc::SchedulerInfo),
    ),
)]
pub(crate) async fn info(State(state): State<ApiState>) -> Response {
    let running = state.scheduler.state() != RunState::Stopped;
    json_response(state.info.bodies[usize::from(running)].clone())
}

/// `POST P/pause`: 204, idempotent; the body is ignored.
#[utoipa::path(
    post,
    path = "/pause",
    tag = "scheduler",
    operation_id = "pause_scheduler",
    description = "Pause job processing (idempotent)",
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "The scheduler is stopped", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn pause(State(state): State<ApiState>) -> Result<StatusCode, ApiError> {
    state.scheduler.pause()?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST P/resume`: 204, idempotent; the body is ignored.
#[utoipa::path(
    post,
    path = "/resume",
    tag = "scheduler",
    operation_id = "resume_scheduler",
    description = "Resume job processing (idempotent)",
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "The scheduler is stopped", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn resume(State(state): State<ApiState>) -> Result<StatusCode, ApiError> {
    state.scheduler.resume()?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST P/start`: 204; the body is ignored.
#[utoipa::path(
    post,
    path = "/start",
    tag = "scheduler",
    operation_id = "start_scheduler",
    responses(
        (status = 204, description = "Started"),
        (status = 400, description = "Already running", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn start(State(state): State<ApiState>) -> Result<StatusCode, ApiError> {
    state.scheduler.start().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST P/shutdown`: 204. The body is optional and read leniently: only `{"wait": false}`
/// skips waiting for running scripts.
#[utoipa::path(
    post,
    path = "/shutdown",
    tag = "scheduler",
    operation_id = "shutdown_scheduler",
    description = "Stops scheduling (not the daemon); then job routes see only pending jobs, `start` starts it again and `pause`, `resume`, `shutdown` answer 400.",
    request_body(content = Option<doc::ShutdownRequest>, content_type = "application/json", description = "optional; only `{\"wait\": false}` skips waiting for running scripts"),
    responses(
        (status = 204, description = "Stopped"),
        (status = 400, description = "Already stopped", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn shutdown(
    State(state): State<ApiState>,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    state.scheduler.shutdown(shutdown_wait(&body)).await?;
    Ok(StatusCode::NO_CONTENT)
}
