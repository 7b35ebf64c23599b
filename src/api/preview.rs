//! The schedule preview (issue 16): `GET P/jobs/{id}/preview` and `POST P/preview`, each
//! `?count=N` (default 10, 1 to 100). Both are reads: nothing is created or changed, so a
//! viewer may ask (`roles.rs`); `POST P/preview` is still a POST for the cross-site guard,
//! which refuses it from another site's page as it refuses every POST.
//!
//! `POST P/preview` takes exactly a `POST P/jobs` body and reads it with the same parser, so
//! it refuses what an add refuses, with the same status and text (a taken id aside: nothing
//! is added). The answer:
//!
//! ```json
//! {"trigger": "cron", "description": "at 09:30, Monday to Friday, Asia/Shanghai",
//!  "timezone": "Asia/Shanghai", "jitter": null, "paused": false, "pending": false,
//!  "overdue_since": null,
//!  "fire_times": [{"time": "2030-01-02T09:30:00+08:00", "utc": "2030-01-02T01:30:00+00:00",
//!                  "dst": null}]}
//! ```
//!
//! `time` is the fire time as the job JSON shows `next_run_time` (a cron time in a
//! spring-forward gap keeps the offset from before the jump); `utc` the same instant in UTC;
//! `dst` is `"moved"` (the wanted wall time does not exist: the run happens at the same clock
//! reading after the jump), `"repeated"` (the wall time occurs twice, the fall-back hour) or
//! null. `jitter` (seconds, or null) is left out of the times, which a client may show as
//! "± N s".

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiJson, JobIdPath, bounded_count};
use super::openapi::schemas as doc;
use super::state::ApiState;
use super::wire::JsonBody;
use crate::scheduler::{MAX_PREVIEW_TIMES, Preview};
use crate::trigger::{dst_mark, isoformat};

/// Fire times answered when `count` is not given.
const DEFAULT_COUNT: u32 = 10;

/// `?count=`, read as text so a bad value gets a message that names it.
#[derive(Debug, Deserialize)]
pub(crate) struct PreviewQuery {
    count: Option<String>,
}

/// `GET P/jobs/{id}/preview?count=N`: a stored job's next fire times.
#[utoipa::path(
    get,
    path = "/jobs/{id}/preview",
    tag = "jobs",
    operation_id = "preview_job",
    params(
        ("id" = String, Path, description = "the job id, percent-decoded", min_length = 1),
        (
            "count" = Option<u32>,
            Query,
            description = "how many fire times (default 10)",
            minimum = 1,
            maximum = 100,
        ),
    ),
    responses(
        (status = 200, description = "The job's next fire times", body = doc::Preview),
        (
            status = 400,
            description = "A bad `count`, or a NUL in the id",
            body = doc::ErrorEnvelope,
        ),
        (status = 404, description = "No such job", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn preview_job(
    State(state): State<ApiState>,
    JobIdPath(id): JobIdPath,
    query: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<JsonBody, ApiError> {
    let count = count(query)?;
    let preview = state.scheduler.preview(&id, count).await?;
    Ok(JsonBody(preview_to_json(&preview)))
}

/// `POST P/preview?count=N` with a `POST P/jobs` body: the fire times that job would have.
#[utoipa::path(
    post,
    path = "/preview",
    tag = "jobs",
    operation_id = "preview_job_spec",
    params(
        (
            "count" = Option<u32>,
            Query,
            description = "how many fire times (default 10)",
            minimum = 1,
            maximum = 100,
        ),
    ),
    request_body(content = doc::JobSpec, content_type = "application/json", description = "a `POST P/jobs` body; nothing is added"),
    responses(
        (status = 200, description = "The fire times that job would have", body = doc::Preview),
        (
            status = 400,
            description = "A bad `count`, or a body an add would refuse",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn preview_spec(
    State(state): State<ApiState>,
    query: Result<Query<PreviewQuery>, QueryRejection>,
    ApiJson(body): ApiJson,
) -> Result<JsonBody, ApiError> {
    let count = count(query)?;
    let spec = state
        .scheduler
        .job_parser()
        .spec(&body)
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let preview = state.scheduler.preview_spec(&spec, count)?;
    Ok(JsonBody(preview_to_json(&preview)))
}

/// `count`: a whole number from 1 to [`MAX_PREVIEW_TIMES`], 10 when absent.
fn count(query: Result<Query<PreviewQuery>, QueryRejection>) -> Result<usize, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let max = u32::try_from(MAX_PREVIEW_TIMES).unwrap_or(u32::MAX);
    let count = bounded_count("count", query.count.as_deref(), DEFAULT_COUNT, max)?;
    Ok(count as usize)
}

/// The answer (see the module doc).
pub(crate) fn preview_to_json(preview: &Preview) -> Value {
    let trigger = &preview.trigger;
    let zone = trigger.timezone();
    let fire_times: Vec<Value> = preview
        .fire_times
        .iter()
        .map(|time| {
            json!({
                "time": isoformat(time),
                "utc": isoformat(&time.to_utc().fixed_offset()),
                "dst": dst_mark(time, zone).map(|mark| mark.as_str()),
            })
        })
        .collect();
    json!({
        "trigger": trigger.kind(),
        "description": trigger.describe(),
        "timezone": zone.name(),
        "jitter": trigger.jitter(),
        "paused": preview.paused,
        "pending": preview.pending,
        "overdue_since": preview.overdue_since.as_ref().map(isoformat),
        "fire_times": fire_times,
    })
}
