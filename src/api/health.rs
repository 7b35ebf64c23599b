//! The probes, outside the API's prefix (`[health]`): `GET /healthz` answers 200 while the
//! process serves (liveness: nothing is asked of the store), `GET /readyz` answers 200 only
//! when the store answers a cheap question within [`STORE_TIMEOUT`] and the scheduler's driver
//! loop completed a turn within its bound (`scheduler::DriverHealth`), else 503 naming each
//! failing check. Both report the version and the age of the loop's last completed turn.
//!
//! A paused or stopped scheduler is ready: its loop still turns (it runs no pass), it is idle
//! by an operator's decision, and restarting or rerouting would not change it. A failed pass
//! (the store away) does not count as a turn, and the store check fails with it.
//!
//! They reveal nothing else and change nothing, so they are open by default; with
//! `require_auth` they are served behind the API's authentication (any role). The `Host`
//! check applies to them as to every route (see `guard.rs`): a Kubernetes probe sends the
//! pod's address as `Host`, which must then be in `[server] host_names`, or the probe must
//! send `Host: localhost` (its `httpHeaders`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::wire::JsonBody;
use crate::scheduler::Scheduler;
use crate::store::{Store, StoreError};

/// Longest a readiness probe waits for the store.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// tickd's version, as `tickd --version` prints it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the probes answer.
#[derive(Debug, Clone)]
pub struct HealthPaths {
    /// Liveness (`/healthz`).
    pub healthz: String,
    /// Readiness (`/readyz`).
    pub readyz: String,
}

/// What the probes read.
#[derive(Debug, Clone)]
struct Probes {
    scheduler: Scheduler,
    store: Arc<dyn Store>,
}

/// The probes' routes, to be mounted with [`super::SideRoutes`].
pub fn routes(paths: &HealthPaths, scheduler: Scheduler, store: Arc<dyn Store>) -> Router {
    Router::new()
        .route(&paths.healthz, get(healthz))
        .route(&paths.readyz, get(readyz))
        .with_state(Probes { scheduler, store })
}

/// `GET /healthz`: the process answers.
async fn healthz(State(probes): State<Probes>) -> JsonBody {
    let mut body = common(&probes.scheduler);
    body["status"] = json!("ok");
    JsonBody(body)
}

/// `GET /readyz`: 200 when every check passes, else 503 with the failing ones named.
async fn readyz(State(probes): State<Probes>) -> Response {
    let store = match tokio::time::timeout(STORE_TIMEOUT, probes.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(store_failure(&error)),
        Err(_) => Err(format!(
            "the job store did not answer within {} s",
            STORE_TIMEOUT.as_secs()
        )),
    };
    let driver = probes.scheduler.driver_health();
    let scheduler = if driver.is_fresh() {
        Ok(())
    } else {
        Err(match driver.last_pass_age {
            None => "the scheduler's loop has not completed a turn yet".to_owned(),
            Some(age) => format!(
                "the scheduler's loop last completed a turn {} s ago (more than {} s)",
                age.as_secs(),
                driver.bound.as_secs()
            ),
        })
    };
    let mut body = common(&probes.scheduler);
    let mut failing = Vec::new();
    let mut checks = serde_json::Map::new();
    for (name, outcome) in [("store", store), ("scheduler", scheduler)] {
        let shown = match outcome {
            Ok(()) => "ok".to_owned(),
            Err(message) => {
                failing.push(format!("{name}: {message}"));
                message
            }
        };
        checks.insert(name.to_owned(), Value::String(shown));
    }
    body["checks"] = Value::Object(checks);
    if failing.is_empty() {
        body["status"] = json!("ready");
        return JsonBody(body).into_response();
    }
    body["status"] = json!("unavailable");
    body["error_message"] = json!(format!("not ready: {}", failing.join("; ")));
    (StatusCode::SERVICE_UNAVAILABLE, JsonBody(body)).into_response()
}

/// What both probes report: the version and the age of the loop's last completed turn
/// (seconds, `null` before the first).
fn common(scheduler: &Scheduler) -> Value {
    let age = scheduler
        .driver_health()
        .last_pass_age
        .map(|age| (age.as_secs_f64() * 1000.0).round() / 1000.0);
    json!({
        "status": "",
        "version": VERSION,
        "last_pass_age_seconds": age,
    })
}

/// A store failure as the probe shows it: its kind, never the database's own text (which may
/// name hosts or users); the detail goes to the debug log.
fn store_failure(error: &StoreError) -> String {
    tracing::debug!("Readiness: the store did not answer: {error:#}");
    match error {
        StoreError::Unavailable(_) => "the job store is unavailable".to_owned(),
        _ => "the job store answered with an error".to_owned(),
    }
}
