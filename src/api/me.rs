//! `GET P/me`: who the request was authenticated as, so the console shows only the buttons
//! the user's role allows, and the scheduler's state (`GET P` folds a paused scheduler into
//! `"running": true`, as the reference does; the console's header tells the three apart).
//!
//! ```json
//! {"name": "ana", "role": "operator", "credential": "password", "scheduler_state": "paused"}
//! ```
//!
//! With authentication off every caller is an admin: `{"name": null, "role": "admin",
//! "credential": null, ...}`. A viewer's read.

use axum::Extension;
use axum::extract::State;
use serde_json::json;

use super::openapi::schemas as doc;
use super::roles::{Actor, Role};
use super::state::ApiState;
use super::wire::JsonBody;
use crate::scheduler::RunState;

/// `GET P/me`.
#[utoipa::path(
    get,
    path = "/me",
    tag = "console",
    operation_id = "get_me",
    responses(
        (status = 200, description = "Who is logged in, and the scheduler's state", body = doc::Me),
    ),
)]
pub(crate) async fn me(State(state): State<ApiState>, actor: Option<Extension<Actor>>) -> JsonBody {
    let scheduler_state = match state.scheduler.state() {
        RunState::Running => "running",
        RunState::Paused => "paused",
        RunState::Stopped => "stopped",
    };
    JsonBody(match actor {
        Some(Extension(actor)) => json!({
            "name": actor.name,
            "role": actor.role.as_str(),
            "credential": actor.credential.as_str(),
            "scheduler_state": scheduler_state,
        }),
        None => json!({
            "name": null,
            "role": Role::Admin.as_str(),
            "credential": null,
            "scheduler_state": scheduler_state,
        }),
    })
}
