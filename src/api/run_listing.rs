//! `GET P/runs` (extension): the runs of every job, newest first, paged as a job's runs are
//! (`limit`, `before`), narrowed by `status`, `job`, `since` and `until` — "what failed last
//! night" in one request, for the console's overview and history.
//!
//! The runs come without their output (`stdout` and `stderr` are left out; the
//! `*_truncated` flags stay): a page of 500 runs would otherwise carry up to 64 KiB per
//! stream of each. `GET P/runs/{run_id}` answers one run with its output.
//!
//! `since` and `until` bound when a run began — its record's creation, the start of a script
//! that ran or the moment a missed or skipped run was recorded, the time runs are ordered
//! by — as `since <= began < until`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::extract::refuse_nul;
use super::openapi::schemas as doc;
use super::runs::page;
use super::state::ApiState;
use super::wire::{JsonBody, run_to_json};
use crate::job::{RunRecord, RunStatus};
use crate::scheduler::RunFilter;

/// `?limit=&before=&status=&job=&since=&until=`, read as text so a bad value gets a message
/// that names it.
#[derive(Debug, Deserialize)]
pub(crate) struct RunListingQuery {
    limit: Option<String>,
    before: Option<String>,
    status: Option<String>,
    job: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// `GET P/runs`: runs of every job, newest first (see the module doc).
#[utoipa::path(
    get,
    path = "/runs",
    tag = "runs",
    operation_id = "list_runs",
    params(
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
        (
            "status" = Option<String>,
            Query,
            pattern = "^(running|succeeded|failed|timed_out|missed|skipped|interrupted|cancelled)(,(running|succeeded|failed|timed_out|missed|skipped|interrupted|cancelled))*$",
            description = "comma-separated statuses: running, succeeded, failed, timed_out, missed, skipped, interrupted, cancelled, queued",
        ),
        (
            "job" = Option<String>,
            Query,
            description = "one job's runs",
            min_length = 1,
            pattern = "^[^\\x00]*$",
        ),
        (
            "since" = Option<String>,
            Query,
            format = DateTime,
            description = "runs that began at or after this RFC 3339 time",
        ),
        (
            "until" = Option<String>,
            Query,
            format = DateTime,
            description = "runs that began before this RFC 3339 time",
        ),
    ),
    responses(
        (
            status = 200,
            description = "Runs of every job, newest first, without their output",
            body = Vec<doc::RunSummary>,
        ),
        (status = 400, description = "A bad query", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn list_runs(
    State(state): State<ApiState>,
    query: Result<Query<RunListingQuery>, QueryRejection>,
) -> Result<JsonBody, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = filter(query)?;
    let runs = state.scheduler.list_runs(&filter).await?;
    Ok(JsonBody(Value::Array(runs.iter().map(summary).collect())))
}

/// The store's filter for a query, or the 400 naming the first bad parameter.
fn filter(query: RunListingQuery) -> Result<RunFilter, ApiError> {
    let (limit, before) = page(query.limit.as_deref(), query.before)?;
    let statuses = match query.status.as_deref() {
        None => Vec::new(),
        Some(text) => statuses(text)?,
    };
    if let Some(job) = &query.job {
        if job.is_empty() {
            return Err(ApiError::BadRequest(
                "job must be a job id, not empty".to_owned(),
            ));
        }
        refuse_nul("job (a job id)", job)?;
    }
    let since = query
        .since
        .as_deref()
        .map(|t| time("since", t))
        .transpose()?;
    let until = query
        .until
        .as_deref()
        .map(|t| time("until", t))
        .transpose()?;
    if let (Some(since), Some(until)) = (since, until)
        && until <= since
    {
        return Err(ApiError::BadRequest(format!(
            "until ({}) must be later than since ({})",
            until.to_rfc3339(),
            since.to_rfc3339()
        )));
    }
    Ok(RunFilter {
        job: query.job,
        statuses,
        since,
        until,
        before: before.map(|id| id.to_string()),
        limit,
    })
}

/// `status=failed,timed_out`: one or several run statuses, comma-separated.
fn statuses(text: &str) -> Result<Vec<RunStatus>, ApiError> {
    let accepted = || {
        RunStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut statuses = Vec::new();
    for name in text.split(',').map(str::trim) {
        let Some(status) = RunStatus::parse(name) else {
            let what = if name.is_empty() {
                format!("an empty status in {text:?}")
            } else {
                format!("unknown run status {name:?}")
            };
            return Err(ApiError::BadRequest(format!(
                "status takes one or more of {}, comma-separated: {what}",
                accepted()
            )));
        };
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(statuses)
}

/// `since` or `until`: an RFC 3339 date and time with its offset, as the API takes times
/// elsewhere (a token's `expires_at`).
fn time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be an RFC 3339 date and time with its offset \
                 (2030-01-02T03:04:05Z or 2030-01-02T11:04:05+08:00), not {text:?}"
            ))
        })
}

/// A run as `GET P/jobs/{id}/runs` shows it, without `stdout` and `stderr`.
fn summary(run: &RunRecord) -> Value {
    let mut json = run_to_json(run);
    if let Value::Object(fields) = &mut json {
        fields.remove("stdout");
        fields.remove("stderr");
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query string as axum reads it (`+` in an offset written `%2B`).
    fn query(text: &str) -> RunListingQuery {
        let uri: axum::http::Uri = format!("/runs?{text}").parse().unwrap();
        Query::try_from_uri(&uri).unwrap().0
    }

    fn refused(text: &str) -> String {
        match filter(query(text)) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("{text:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn statuses_are_comma_separated_and_deduplicated() {
        let filter = filter(query("status=failed,%20timed_out,failed")).unwrap();
        assert_eq!(filter.statuses, [RunStatus::Failed, RunStatus::TimedOut]);
        assert_eq!(filter.limit, 20);
    }

    #[test]
    fn bad_parameters_are_named() {
        let text = refused("status=failed,bogus");
        assert!(text.contains("unknown run status \"bogus\""), "{text}");
        assert!(
            text.contains("running, succeeded, failed, timed_out"),
            "{text}"
        );
        assert!(refused("status=failed,").contains("an empty status"));
        assert!(refused("since=yesterday").starts_with("since must be an RFC 3339"));
        assert!(refused("until=2030-01-02").starts_with("until must be an RFC 3339"));
        let text = refused("since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z");
        assert!(
            text.starts_with("until (2030-01-01T00:00:00+00:00) must be later"),
            "{text}"
        );
        assert!(refused("limit=0").starts_with("limit must be a whole number"));
        assert_eq!(refused("job="), "job must be a job id, not empty");
    }

    #[test]
    fn times_keep_their_instant() {
        let filter = filter(query("since=2030-01-02T11:04:05%2B08:00")).unwrap();
        assert_eq!(
            filter.since.unwrap().to_rfc3339(),
            "2030-01-02T03:04:05+00:00"
        );
    }
}
