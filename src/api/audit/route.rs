//! `GET P/audit?limit=&before=&actor=&target=`: the audit log, newest first, an admin's
//! (`Role::needed`). Paged as a job's runs are: `before` is the id of the last record of the
//! previous page.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::api::extract::{before_id, bounded_count, refuse_nul};
use crate::api::openapi::schemas as doc;
use crate::api::state::ApiState;
use crate::api::wire::JsonBody;
use crate::scheduler::SchedulerError;
use crate::store::{AuditFilter, AuditRecord};
use crate::trigger::isoformat;

/// Records answered when `limit` is not given.
const DEFAULT_LIMIT: u32 = 50;
/// The most records one request may ask for.
const MAX_LIMIT: u32 = 500;

/// The query, read as text so that a bad value gets a message that names it.
#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    limit: Option<String>,
    before: Option<String>,
    actor: Option<String>,
    target: Option<String>,
}

/// `GET P/audit`: a JSON array of records.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "admin",
    operation_id = "get_audit",
    params(
        (
            "limit" = Option<u32>,
            Query,
            description = "at most this many (default 50)",
            minimum = 1,
            maximum = 500,
        ),
        (
            "before" = Option<String>,
            Query,
            pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            description = "only records older than this record id",
        ),
        (
            "actor" = Option<String>,
            Query,
            pattern = "^[^\\x00]*$",
            description = "only this user's or token's",
        ),
        (
            "target" = Option<String>,
            Query,
            pattern = "^[^\\x00]*$",
            description = "only those about this id",
        ),
    ),
    responses(
        (status = 200, description = "Audit records, newest first", body = Vec<doc::AuditRecord>),
        (status = 400, description = "A bad query", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn get_audit(
    State(state): State<ApiState>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<JsonBody, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = bounded_count("limit", query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    before_id(query.before.as_deref(), "an audit record")?;
    for (what, value) in [("actor", &query.actor), ("target", &query.target)] {
        if let Some(value) = value {
            refuse_nul(what, value)?;
        }
    }
    let filter = AuditFilter {
        limit,
        before: query.before.as_deref(),
        actor: query.actor.as_deref(),
        target: query.target.as_deref(),
    };
    let records = state
        .store
        .audit(&filter)
        .await
        .map_err(SchedulerError::from)?;
    Ok(JsonBody(Value::Array(
        records.iter().map(to_json).collect(),
    )))
}

/// A record as the API answers it; its time in UTC, written as the API writes every time
/// (`2026-12-05T01:30:27.135000+00:00`).
fn to_json(record: &AuditRecord) -> Value {
    json!({
        "id": record.id,
        "at": isoformat(&record.at.fixed_offset()),
        "actor": record.actor,
        "credential": record.credential,
        "source": record.source,
        "method": record.method,
        "route": record.route,
        "target": record.target,
        "outcome": record.outcome.as_str(),
        "status": record.status,
    })
}
