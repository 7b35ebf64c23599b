//! `GET P/notifications?limit=&before=`: the webhook deliveries tickd owes and made, newest
//! first, an admin's (`Role::needed`): each with its event, run, webhook (by name: its URL
//! and secret are the config's), status, attempts and last error, and the body sent. Paged
//! as the audit log is.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::api::extract::{before_id, bounded_count};
use crate::api::openapi::schemas as doc;
use crate::api::state::ApiState;
use crate::api::wire::JsonBody;
use crate::scheduler::SchedulerError;
use crate::store::NotificationRecord;
use crate::trigger::isoformat;

/// Deliveries answered when `limit` is not given.
const DEFAULT_LIMIT: u32 = 50;
/// The most one request may ask for.
const MAX_LIMIT: u32 = 500;

/// The query, read as text so that a bad value gets a message that names it.
#[derive(Debug, Deserialize)]
pub(crate) struct NotificationQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// `GET P/notifications`: a JSON array of deliveries.
#[utoipa::path(
    get,
    path = "/notifications",
    tag = "admin",
    operation_id = "list_notifications",
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
            description = "only deliveries older than this one (its id)",
        ),
    ),
    responses(
        (status = 200, description = "Deliveries, newest first", body = Vec<doc::Notification>),
        (status = 400, description = "A bad query", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn list_notifications(
    State(state): State<ApiState>,
    query: Result<Query<NotificationQuery>, QueryRejection>,
) -> Result<JsonBody, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = bounded_count("limit", query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    before_id(query.before.as_deref(), "a delivery")?;
    let records = state
        .store
        .list_notifications(limit, query.before.as_deref())
        .await
        .map_err(SchedulerError::from)?;
    Ok(JsonBody(Value::Array(
        records.iter().map(to_json).collect(),
    )))
}

/// A delivery as the API answers it; its times in UTC, written as the API writes every time.
fn to_json(record: &NotificationRecord) -> Value {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| isoformat(&t.fixed_offset()));
    json!({
        "id": record.id,
        "event": record.event,
        "job_id": record.job_id,
        "run_id": record.run_id,
        "webhook": record.webhook,
        "status": record.status.as_str(),
        "attempts": record.attempts,
        "created_at": time(Some(record.created_at)),
        "next_attempt_at": time(record.next_attempt_at),
        "delivered_at": time(record.delivered_at),
        "last_error": record.last_error,
        // Written by tickd as JSON; text that does not parse is shown as text.
        "body": serde_json::from_str::<Value>(&record.body)
            .unwrap_or_else(|_| Value::String(record.body.clone())),
    })
}
