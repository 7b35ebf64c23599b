//! `GET P/scripts`: the scripts a job may name, for the console's New-job form.
//!
//! ```json
//! {"scripts": ["report.py", "tools/backup.sh"], "truncated": false}
//! ```
//!
//! The files under the workspace that the executor would run (inside it, links included when
//! their target is; an extension with an interpreter), sorted, at most [`MAX_SCRIPTS`];
//! `truncated` says more exist. A viewer's read: the names are what jobs show in `args`.

use axum::extract::State;
use serde_json::json;

use super::error::ApiError;
use super::openapi::schemas as doc;
use super::state::ApiState;
use super::wire::JsonBody;

/// Names answered at most: a form's list, not an inventory.
pub const MAX_SCRIPTS: usize = 1000;

/// `GET P/scripts`.
#[utoipa::path(
    get,
    path = "/scripts",
    tag = "console",
    operation_id = "list_scripts",
    responses(
        (status = 200, description = "The scripts a job may name", body = doc::Scripts),
    ),
)]
pub(crate) async fn list_scripts(State(state): State<ApiState>) -> Result<JsonBody, ApiError> {
    let scheduler = state.scheduler.clone();
    let found = tokio::task::spawn_blocking(move || scheduler.scripts(MAX_SCRIPTS))
        .await
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("listing the scripts: {err}")))?;
    Ok(JsonBody(json!({
        "scripts": found.names,
        "truncated": found.truncated,
    })))
}
