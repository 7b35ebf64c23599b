//! The scheduler as a whole: `GET P`, `POST P/pause`, `P/resume`, `P/start`, `P/shutdown`
//! (reference §1.3.1–1.3.5).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{RawBody, shutdown_wait};
use super::state::ApiState;
use super::wire::{JsonBody, info_to_json};
use crate::scheduler::RunState;

/// `GET P`: `running` is true whenever the scheduler is not stopped, paused included.
pub(crate) async fn info(State(state): State<ApiState>) -> JsonBody {
    let running = state.scheduler.state() != RunState::Stopped;
    JsonBody(info_to_json(
        &state.allowed_hosts,
        &state.current_host,
        running,
    ))
}

/// `POST P/pause`: 204, idempotent; the body is ignored.
pub(crate) async fn pause(State(state): State<ApiState>) -> Result<StatusCode, ApiError> {
    state.scheduler.pause()?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST P/resume`: 204, idempotent; the body is ignored.
pub(crate) async fn resume(State(state): State<ApiState>) -> Result<StatusCode, ApiError> {
    state.scheduler.resume()?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST P/start`: 204; the body is ignored.
pub(crate) async fn start(State(state): State<ApiState>) -> Result<StatusCode, ApiError> {
    state.scheduler.start().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST P/shutdown`: 204. The body is optional and read leniently: only `{"wait": false}`
/// skips waiting for running scripts.
pub(crate) async fn shutdown(
    State(state): State<ApiState>,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    state.scheduler.shutdown(shutdown_wait(&body)).await?;
    Ok(StatusCode::NO_CONTENT)
}
