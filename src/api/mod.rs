//! The HTTP API: Flask-APScheduler's REST routes under a prefix (CONTRACT §1), answered from
//! the [`Scheduler`](crate::scheduler::Scheduler).
//!
//! # Layout
//! - [`router`] (here): the whole route table on one screen, the 404/405 fallbacks, the layers.
//! - `state`: [`ApiState`], what handlers share, and its builder.
//! - `auth`: HTTP Basic and Bearer tokens as a middleware that runs before any body is read.
//! - `bearer`: API tokens as text (`tickd_<id>_<secret>`), and checking one against the store.
//! - `tokens`: `P/tokens` (list, create) and `P/tokens/{id}` (revoke); [`issue_token`].
//! - `error`: [`ApiError`], the only place a status code is chosen.
//! - `extract`: body and path extractors whose rejections are [`ApiError`]s.
//! - `wire`: a job as JSON ([`job_to_json`]), the info object, the error envelope.
//! - `control`: the scheduler as a whole (`GET P`, pause, resume, start, shutdown).
//! - `jobs`: `P/jobs` and `P/jobs/{id}[/pause|/resume|/run]`.
//! - `runs`: run history; `output`: a run's output, followed live as Server-Sent Events.
//! - `preview`: a job's next fire times, `P/jobs/{id}/preview` and `P/preview` (a body).
//! - `server`: the accept loop, with its connection limit and timeouts; `tls`: HTTPS.
//! - `guard`, `roles`, `throttle`: where requests come from, what a role allows, failed
//!   logins slowed.
//! - `audit`: the audit log's layer, its writer task and `GET P/audit`.
//! - `metrics`: `GET /metrics` (outside the prefix) and the layer counting requests.
//!
//! Requests pass, outermost first: request counting (when metrics are on) → tracing → panic catcher (500 envelope) → audit log →
//! origin and Host check → CORS (when sites are allowed) → failed-login throttle, Basic or
//! Bearer authentication and roles (when configured; an open `/metrics` is mounted here,
//! after them) → routes (bodies read under
//! `BodyRules`, a request extension), or the JSON 404/405 fallbacks.

mod audit;
mod auth;
mod bearer;
mod body;
mod cluster;
mod control;
mod error;
mod extract;
mod guard;
mod jobs;
mod metrics;
mod output;
mod preview;
mod roles;
mod run_listing;
mod runs;
mod server;
mod state;
mod throttle;
mod tls;
mod tokens;
pub mod view;
mod wire;

use std::any::Any;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use axum::http::{Method, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;

use crate::scheduler::Scheduler;
use crate::store::TokenStore;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use audit::{AuditSettings, AuditWriter, Auditor};
pub use auth::{CHALLENGE, Credentials, CredentialsError, DENIED, Secret, User, hash_password};
pub use bearer::TOKEN_PREFIX;
pub use error::ApiError;
pub use guard::Origins;
pub use metrics::MetricsEndpoint;
pub use roles::{Actor, Credential, Role};
pub use server::{ServerLimits, serve};
pub use state::{
    ApiState, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_PREFIX, local_host_name,
};
pub use throttle::{FailureLimit, Throttle};
pub use tls::{TlsError, acceptor as tls_acceptor};
pub use tokens::{
    IssueError, IssuedToken, MAX_TOKEN_NAME, TokenRequest, issue_token, token_to_json,
};
pub use wire::{info_to_json, job_to_json, run_to_json};

use body::BodyRules;
use state::normalize_prefix;

/// The API's router, every route under `state.prefix`, ready to serve.
///
/// | method | path | handler |
/// |---|---|---|
/// | GET | `P` | scheduler info |
/// | POST | `P/pause`, `P/resume`, `P/start`, `P/shutdown` | scheduler control, 204 |
/// | GET, POST | `P/jobs` | list, add |
/// | GET, PATCH, DELETE | `P/jobs/{id}` | get, modify, remove |
/// | POST | `P/jobs/{id}/pause`, `/resume`, `/run` | job actions |
/// | GET | `P/jobs/{id}/preview` | a job's next fire times |
/// | POST | `P/preview` | the next fire times of a `POST P/jobs` body, nothing added |
/// | GET, POST | `P/tokens` | API tokens: list, create (an admin's) |
/// | DELETE | `P/tokens/{id}` | revoke a token |
/// | GET | `P/audit` | the audit log (admin) |
/// | GET | `/metrics` (`[metrics] path`) | Prometheus metrics, open unless `require_auth` |
///
/// Trailing slashes are not routed (404), as in the reference. Extension routes (runs,
/// cluster) are added to [`routes`]. With `metrics`, requests are counted and `/metrics`
/// is served (kept out of [`ApiState`], which every handler clones).
pub fn router(state: ApiState, metrics: Option<MetricsEndpoint>) -> Router {
    let prefix = normalize_prefix(&state.prefix);
    let auth = state.auth.clone();
    let body = BodyRules::new(state.body_limit, state.body_timeout);
    let origins = state.origins.clone();
    let throttle = state.throttle.clone();
    let audit = Some(state.audit.clone());
    let state = ApiState {
        prefix: prefix.as_str().into(),
        ..state
    };
    let mut routes = routes(&prefix);
    let mut open = None;
    if let Some(endpoint) = &metrics {
        let route = metrics_route(endpoint, &state.scheduler);
        if endpoint.require_auth {
            routes = routes.merge(route.with_state(()));
        } else {
            open = Some(route);
        }
    }
    let guards = Guards {
        auth,
        origins,
        throttle,
        prefix: prefix.as_str().into(),
        tokens: Some((state.store.clone(), state.scheduler.clone())),
        audit,
        open,
    };
    let counted = metrics.map(|m| m.metrics);
    let router = mount(routes.with_state(state), body, guards);
    match counted {
        Some(metrics) => router.layer(metrics::CountRequests::new(metrics)),
        None => router,
    }
}

/// `GET /metrics` alone, for a daemon whose API is off ([`router`] mounts it otherwise).
pub fn metrics_router(endpoint: &MetricsEndpoint, scheduler: &Scheduler) -> Router {
    metrics_route(endpoint, scheduler).layer(metrics::CountRequests::new(endpoint.metrics.clone()))
}

fn metrics_route(endpoint: &MetricsEndpoint, scheduler: &Scheduler) -> Router {
    Router::new()
        .route(&endpoint.path, get(metrics::get_metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state((endpoint.clone(), scheduler.clone()))
}

/// The route templates of [`router`]'s table under `prefix`, as axum matches them: what the
/// request counters label requests by.
pub fn route_templates(prefix: &str) -> Vec<String> {
    table(&normalize_prefix(prefix))
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

/// The route table.
fn routes(prefix: &str) -> Router<ApiState> {
    table(prefix)
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(&path, methods)
        })
}

/// Every route's path and handlers, in one list so that the request counters know the
/// same templates ([`route_templates`]).
fn table(prefix: &str) -> Vec<(String, MethodRouter<ApiState>)> {
    let at = |suffix: &str| format!("{prefix}{suffix}");
    let info_path = if prefix.is_empty() { "/" } else { prefix };
    vec![
        (info_path.to_owned(), get(control::info)),
        (at("/pause"), post(control::pause)),
        (at("/resume"), post(control::resume)),
        (at("/start"), post(control::start)),
        (at("/shutdown"), post(control::shutdown)),
        (at("/jobs"), get(jobs::get_jobs).post(jobs::add_job)),
        (
            at("/jobs/{id}"),
            get(jobs::get_job)
                .patch(jobs::modify_job)
                .delete(jobs::remove_job),
        ),
        (at("/jobs/{id}/pause"), post(jobs::pause_job)),
        (at("/jobs/{id}/resume"), post(jobs::resume_job)),
        (at("/jobs/{id}/run"), post(jobs::run_job)),
        // Schedule preview (issue 16): reads, a body's included.
        (at("/jobs/{id}/preview"), get(preview::preview_job)),
        (at("/preview"), post(preview::preview_spec)),
        // Extensions (CONTRACT §6): run history.
        (at("/jobs/{id}/runs"), get(runs::get_runs)),
        (at("/runs"), get(run_listing::list_runs)),
        (at("/runs/{id}"), get(runs::get_run)),
        (at("/runs/{id}/cancel"), post(runs::cancel_run)),
        // A run's output, at once or followed as Server-Sent Events (issue 16).
        (at("/runs/{id}/output"), get(output::get_output)),
        (at("/cluster"), get(cluster::get_cluster)),
        // API tokens (an admin's).
        (
            at("/tokens"),
            get(tokens::list_tokens).post(tokens::create_token),
        ),
        (at("/tokens/{id}"), delete(tokens::revoke_token)),
        (at("/audit"), get(audit::get_audit)),
    ]
}

/// Wraps a route table in the fallbacks and the layers every route shares.
/// What stands between a request and the routes: where it comes from, who it is, what their
/// role allows.
struct Guards {
    /// Credentials; `None` turns authentication (and with it roles) off.
    auth: Option<Arc<Credentials>>,
    /// The names and origins requests may come from.
    origins: Arc<Origins>,
    /// Failed authentications counted per address.
    throttle: Arc<Throttle>,
    /// The API's path prefix, which the role check strips.
    prefix: Arc<str>,
    /// Where API tokens are checked, and whose clock says whether one has expired; `None`:
    /// Bearer tokens are refused (unit tests of the layers, which have no store).
    tokens: Option<(Arc<dyn TokenStore>, Scheduler)>,
    /// Where audit records go; `None` records nothing (the layer tests).
    audit: Option<Auditor>,
    /// Routes open without credentials (an open `/metrics`): mounted after authentication.
    open: Option<Router>,
}

fn mount(routes: Router, body: BodyRules, guards: Guards) -> Router {
    let Guards {
        auth,
        origins,
        throttle,
        prefix,
        tokens,
        audit,
        open,
    } = guards;
    // Set on every route registered so far: the matched route and its `{id}`, for the log;
    // the log's layer probes this table for requests refused before they were routed.
    let (routes, audit) = match audit {
        Some(auditor) => {
            let routes = routes.route_layer(axum::middleware::from_fn(audit::mark_route));
            let layer = audit::AuditLayer::new(auditor, routes.clone());
            (routes, Some(layer))
        }
        None => (routes, None),
    };
    let router = routes
        // Must come after the routes: it is set on every method router registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(Extension(body));
    let router = match auth {
        Some(credentials) => {
            let mut authenticator = auth::Authenticator::new(credentials);
            if let Some((store, scheduler)) = tokens {
                authenticator = authenticator.with_tokens(store, scheduler);
            }
            let authenticator = Arc::new(authenticator);
            router
                .layer(from_fn_with_state(prefix, roles::require_role))
                .layer(from_fn_with_state(authenticator, auth::require_auth))
                .layer(from_fn_with_state(throttle, throttle::limit_failures))
        }
        None => router,
    };
    let router = match open {
        Some(open) => router.merge(open),
        None => router,
    };
    // Other sites' pages that the config allows in get CORS answers, their preflights
    // answered before credentials are asked for; no other site gets any.
    let router = if origins.any_allowed() {
        router.layer(cors(origins.clone()))
    } else {
        router
    };
    let router = router.layer(from_fn_with_state(origins, guard::check_origin));
    // Outside every check, so that their refusals are recorded too.
    let router = match audit {
        Some(layer) => router.layer(from_fn_with_state(layer, audit::record)),
        None => router,
    };
    router
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
}

/// CORS for the origins in `[server] cors_origins`: credentials allowed (Basic or a token),
/// the methods the API has, and `Location` readable (run-now's run).
fn cors(origins: Arc<Origins>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origins.is_allowed(origin)
        }))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE])
        .expose_headers([LOCATION])
}

/// No route has this path: the JSON 404.
async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// The path exists but not with this method: the JSON 405; axum adds `Allow`. `OPTIONS`
/// answers 200 with `Allow` and no body, as Werkzeug does.
async fn method_not_allowed(request: Request) -> Response {
    if request.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        ApiError::MethodNotAllowed.into_response()
    }
}

/// A handler panicked: log the panic, answer the generic 500 envelope.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned());
    ApiError::Internal(anyhow::anyhow!("request handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests;
