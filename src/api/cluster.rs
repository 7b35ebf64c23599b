//! `GET P/cluster` (extension, CONTRACT §6): the daemons sharing the store.

use axum::extract::State;
use serde_json::{Value, json};

use super::error::ApiError;
use super::openapi::schemas as doc;
use super::state::ApiState;
use super::wire::JsonBody;
use crate::trigger::isoformat;

/// The daemons with their last heartbeat, most recent first.
#[utoipa::path(
    get,
    path = "/cluster",
    tag = "scheduler",
    operation_id = "get_cluster",
    responses(
        (
            status = 200,
            description = "The daemons sharing the store, most recent heartbeat first",
            body = Vec<doc::ClusterNode>,
        ),
    ),
)]
pub(crate) async fn get_cluster(State(state): State<ApiState>) -> Result<JsonBody, ApiError> {
    let nodes = state.scheduler.nodes().await?;
    Ok(JsonBody(Value::Array(
        nodes
            .iter()
            .map(|node| {
                json!({
                    "id": node.id,
                    "host": node.host,
                    "pid": node.pid,
                    "started_at": isoformat(&node.started_at.fixed_offset()),
                    "last_heartbeat": isoformat(&node.heartbeat_at.fixed_offset()),
                })
            })
            .collect(),
    )))
}
