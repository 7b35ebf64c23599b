//! Jobs: `P/jobs` and `P/jobs/{id}` with its `/pause`, `/resume` and `/run` actions
//! (reference §1.3.6–1.3.13). Each handler is one scheduler call and one rendering. A body is
//! read here, with the scheduler's [`JobParser`](crate::job::JobParser), into the typed job or
//! change the scheduler takes, or refused with the reference's text before anything is looked
//! up.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::audit::Created;
use super::error::ApiError;
use super::extract::{ApiJson, JobIdPath};
use super::openapi::schemas as doc;
use super::state::ApiState;
use super::wire::{JsonBody, JsonListing, JsonText, job_to_json, run_to_json};
use crate::job::JobError;
use crate::telemetry::logged;

/// `POST P/jobs`: the new job (its id on the response too, for the audit log).
#[utoipa::path(
    post,
    path = "/jobs",
    tag = "jobs",
    operation_id = "add_job",
    request_body(content = doc::JobSpec, content_type = "application/json"),
    responses(
        (status = 200, description = "The job added", body = doc::Job),
        (
            status = 400,
            description = "The body is not an acceptable job",
            body = doc::ErrorEnvelope,
        ),
        (status = 409, description = "The id is taken", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn add_job(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson,
) -> Result<(Extension<Created>, JsonText), ApiError> {
    let spec = state.scheduler.job_parser().spec(&body).map_err(refused)?;
    let created = Created(spec.job.id.to_string());
    Ok((
        Extension(created),
        JsonText(state.scheduler.add_job_json(spec).await?),
    ))
}

/// `GET P/jobs`: every job, in the scheduler's (the contract's) order, as rendered when each
/// last changed.
#[utoipa::path(
    get,
    path = "/jobs",
    tag = "jobs",
    operation_id = "get_jobs",
    responses(
        (status = 200, description = "Every job, the next to run first", body = Vec<doc::Job>),
    ),
)]
pub(crate) async fn get_jobs(State(state): State<ApiState>) -> Result<JsonListing, ApiError> {
    Ok(JsonListing(state.scheduler.list_jobs_json().await?))
}

/// `GET P/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    tag = "jobs",
    operation_id = "get_job",
    params(
        ("id" = String, Path, description = "the job id, percent-decoded", min_length = 1),
    ),
    responses(
        (status = 200, description = "The job", body = doc::Job),
        (status = 400, description = "A NUL in the id", body = doc::ErrorEnvelope),
        (status = 404, description = "No such job", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn get_job(
    State(state): State<ApiState>,
    JobIdPath(id): JobIdPath,
) -> Result<JsonText, ApiError> {
    Ok(JsonText(state.scheduler.get_job_json(&id).await?))
}

/// `PATCH P/jobs/{id}`: the job after the change (all or nothing).
#[utoipa::path(
    patch,
    path = "/jobs/{id}",
    tag = "jobs",
    operation_id = "modify_job",
    params(
        ("id" = String, Path, description = "the job id, percent-decoded", min_length = 1),
    ),
    request_body(content = doc::JobChanges, content_type = "application/json"),
    responses(
        (status = 200, description = "The job after the change", body = doc::Job),
        (status = 400, description = "The change is not acceptable", body = doc::ErrorEnvelope),
        (status = 404, description = "No such job", body = doc::ErrorEnvelope),
        (
            status = 409,
            description = "Another request changed the job meanwhile",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn modify_job(
    State(state): State<ApiState>,
    JobIdPath(id): JobIdPath,
    ApiJson(body): ApiJson,
) -> Result<JsonBody, ApiError> {
    let changes = state
        .scheduler
        .job_parser()
        .changes(&body)
        .map_err(refused)?;
    let job = state.scheduler.modify_job(&id, changes).await?;
    Ok(JsonBody(job_to_json(&job)))
}

/// `DELETE P/jobs/{id}`: 204.
#[utoipa::path(
    delete,
    path = "/jobs/{id}",
    tag = "jobs",
    operation_id = "remove_job",
    params(
        ("id" = String, Path, description = "the job id, percent-decoded", min_length = 1),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A NUL in the id", body = doc::ErrorEnvelope),
        (status = 404, description = "No such job", body = doc::ErrorEnvelope),
        (
            status = 409,
            description = "Another request changed the job meanwhile",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn remove_job(
    State(state): State<ApiState>,
    JobIdPath(id): JobIdPath,
) -> Result<StatusCode, ApiError> {
    state.scheduler.remove_job(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST P/jobs/{id}/pause`: the job, `next_run_time: null`.
#[utoipa::path(
    post,
    path = "/jobs/{id}/pause",
    tag = "jobs",
    operation_id = "pause_job",
    params(
        ("id" = String, Path, description = "the job id, percent-decoded", min_length = 1),
    ),
    responses(
        (status = 200, description = "The job, `next_run_time` null", body = doc::Job),
        (status = 400, description = "A NUL in the id", body = doc::ErrorEnvelope),
        (status = 404, description = "No such job", body = doc::ErrorEnvelope),
        (
            status = 409,
            description = "Another request changed the job meanwhile",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn pause_job(
    State(state): State<ApiState>,
    JobIdPath(id): JobIdPath,
) -> Result<JsonBody, ApiError> {
    let job = state.scheduler.pause_job(&id).await?;
    Ok(JsonBody(job_to_json(&job)))
}

/// `POST P/jobs/{id}/resume`: the job, or the literal `null` when it had no future fire time
/// and was deleted.
#[utoipa::path(
    post,
    path = "/jobs/{id}/resume",
    tag = "jobs",
    operation_id = "resume_job",
    params(
        ("id" = String, Path, description = "the job id, percent-decoded", min_length = 1),
    ),
    responses(
        (
            status = 200,
            description = "The job, or null when its trigger had no future fire time and it was deleted",
            body = doc::JobOrNull,
        ),
        (status = 400, description = "A NUL in the id", body = doc::ErrorEnvelope),
        (status = 404, description = "No such job", body = doc::ErrorEnvelope),
        (
            status = 409,
            description = "Another request changed the job meanwhile",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn resume_job(
    State(state): State<ApiState>,
    JobIdPath(id): JobIdPath,
) -> Result<JsonBody, ApiError> {
    let job = state.scheduler.resume_job(&id).await?;
    Ok(JsonBody(job.as_ref().map_or(Value::Null, job_to_json)))
}

/// `?wait=true` on run-now.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct RunQuery {
    wait: Option<String>,
}

/// `POST P/jobs/{id}/run`: answers once the script has started, with the job (its
/// `next_run_time` unchanged) and `Location: P/runs/<run_id>` (CONTRACT §4, §6). With
/// `?wait=true` it answers when the run has ended, with the run record. A script that cannot
/// start leaves a `failed` record: without `wait` the 400 names it (`run_id` and `Location`),
/// with `wait` it is the answer; one the server could not start is a 500 that names it either
/// way.
#[utoipa::path(
    post,
    path = "/jobs/{id}/run",
    tag = "jobs",
    operation_id = "run_job",
    params(
        ("id" = String, Path, description = "the job id, percent-decoded", min_length = 1),
        (
            "wait" = Option<doc::Flag>,
            Query,
            description = "answer when the run has ended, with the run record",
        ),
    ),
    responses(
        (
            status = 200,
            description = "The job (the run record with `wait`); `Location` names the run",
            body = doc::JobOrRun,
            headers(("Location" = String, description = "P/runs/<run_id>")),
        ),
        (
            status = 400,
            description = "A bad `wait`, or the script cannot start (`run_id` names the failed run)",
            body = doc::ErrorEnvelope,
        ),
        (status = 404, description = "No such job", body = doc::ErrorEnvelope),
        (status = 409, description = "The job is at its max_instances", body = doc::ErrorEnvelope),
        (
            status = 500,
            description = "tickd could not start the script (`run_id` names the failed run)",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn run_job(
    State(state): State<ApiState>,
    JobIdPath(id): JobIdPath,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let wait = match query.wait.as_deref() {
        None | Some("false" | "0" | "") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "wait must be true or false, not {other:?}"
            )));
        }
    };
    let (job, run) = match state.scheduler.run_job(&id, wait).await {
        Ok(done) => done,
        Err(error) => {
            // A script that could not start left a record: the answer says where it is.
            let headers = match error.failed_run() {
                Some(run_id) => run_location(&state.prefix, run_id),
                None => HeaderMap::new(),
            };
            return Ok((headers, ApiError::from(error)).into_response());
        }
    };
    let body = if wait {
        run_to_json(&run)
    } else {
        job_to_json(&job)
    };
    Ok((run_location(&state.prefix, &run.id), JsonBody(body)).into_response())
}

/// A refused job body: 400 with the job's own text (the reference's).
fn refused(error: JobError) -> ApiError {
    ApiError::BadRequest(error.to_string())
}

/// `Location: P/runs/<run_id>`.
fn run_location(prefix: &str, run_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    match HeaderValue::try_from(format!("{prefix}/runs/{run_id}")) {
        Ok(location) => {
            headers.insert(LOCATION, location);
        }
        Err(_) => tracing::warn!(
            run_id = %logged(run_id),
            "run id cannot be sent in a Location header"
        ),
    }
    headers
}
