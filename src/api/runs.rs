//! Run history (extension, CONTRACT §6): `P/jobs/{id}/runs`, `P/runs/{run_id}` and
//! `P/runs/{run_id}/cancel`. The runs of every job, `P/runs`, are in `run_listing`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::extract::{JobIdPath, RunIdPath, bounded_count, refuse_nul};
use super::openapi::schemas as doc;
use super::state::ApiState;
use super::wire::{JsonBody, run_to_json};
use crate::job::RunId;

/// Runs answered when `limit` is not given.
const DEFAULT_LIMIT: u32 = 20;
/// The most runs one request may ask for.
const MAX_LIMIT: u32 = 500;

/// `?limit=&before=`, read as text so a bad value gets a message that names it.
#[derive(Debug, Deserialize)]
pub(crate) struct RunsQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// `GET P/jobs/{id}/runs?limit=&before=`: newest first.
#[utoipa::path(
    get,
    path = "/jobs/{id}/runs",
    tag = "runs",
    operation_id = "get_job_runs",
    params(
        ("id" = String, Path, description = "the job id, percent-decoded", min_length = 1),
        (
            "limit" = Option<u32>,
            Query,
            description = "at most this many (default 20)",
            minimum = 1,
            maximum = 500,
        ),
        (
            "before" = Option<String>,
            Query,
            pattern = "^[^\\x00]*$",
            description = "only runs older than this run id (the last of the previous page)",
        ),
    ),
    responses(
        (status = 200, description = "The job's runs, newest first", body = Vec<doc::RunRecord>),
        (status = 400, description = "A bad query", body = doc::ErrorEnvelope),
        (
            status = 404,
            description = "No such job, and it never had a run",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn get_runs(
    State(state): State<ApiState>,
    JobIdPath(id): JobIdPath,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<JsonBody, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (limit, before) = page(query.limit.as_deref(), query.before)?;
    let runs = state
        .scheduler
        .get_runs(&id, limit, before.as_ref())
        .await?;
    Ok(JsonBody(Value::Array(
        runs.iter().map(run_to_json).collect(),
    )))
}

/// A page's `limit` (default [`DEFAULT_LIMIT`], 1 to [`MAX_LIMIT`]) and `before` (a run id),
/// read from their query text: the same for a job's runs and the runs of every job.
pub(crate) fn page(
    limit: Option<&str>,
    before: Option<String>,
) -> Result<(u32, Option<RunId>), ApiError> {
    let limit = bounded_count("limit", limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    if let Some(before) = &before {
        refuse_nul("before (a run id)", before)?;
    }
    Ok((limit, before.map(RunId::from)))
}

/// `GET P/runs/{run_id}`: one run with its output.
#[utoipa::path(
    get,
    path = "/runs/{id}",
    tag = "runs",
    operation_id = "get_run",
    params(
        ("id" = String, Path, description = "the run id", min_length = 1),
    ),
    responses(
        (status = 200, description = "The run", body = doc::RunRecord),
        (status = 400, description = "A NUL in the id", body = doc::ErrorEnvelope),
        (status = 404, description = "No such run", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn get_run(
    State(state): State<ApiState>,
    RunIdPath(run_id): RunIdPath,
) -> Result<JsonBody, ApiError> {
    let run = state.scheduler.get_run(&run_id).await?;
    Ok(JsonBody(run_to_json(&run)))
}

/// `POST P/runs/{run_id}/cancel`: stops a running script; answers the ended run
/// (`cancelled`), 409 when it is not running.
#[utoipa::path(
    post,
    path = "/runs/{id}/cancel",
    tag = "runs",
    operation_id = "cancel_run",
    params(
        ("id" = String, Path, description = "the run id", min_length = 1),
    ),
    responses(
        (status = 200, description = "The ended run, `cancelled`", body = doc::RunRecord),
        (status = 400, description = "A NUL in the id", body = doc::ErrorEnvelope),
        (status = 404, description = "No such run", body = doc::ErrorEnvelope),
        (
            status = 409,
            description = "The run is not running (in this daemon)",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn cancel_run(
    State(state): State<ApiState>,
    RunIdPath(run_id): RunIdPath,
) -> Result<JsonBody, ApiError> {
    let run = state.scheduler.cancel_run(&run_id).await?;
    Ok(JsonBody(run_to_json(&run)))
}
