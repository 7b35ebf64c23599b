//! The HTTP API: Flask-APScheduler's REST routes under a prefix (CONTRACT §1), answered from
//! the [`Scheduler`](crate::scheduler::Scheduler).
//!
//! # Layout
//! - [`router`] (here): the whole route table on one screen, the 404/405 fallbacks, mounted
//!   behind the gate.
//! - `state`: [`ApiState`], what handlers share, and its builder.
//! - `auth`: HTTP Basic and Bearer tokens, checked by the gate before any body is read;
//!   `remembered`: the Basic login a connection proved, so its next requests skip the check.
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
//! - `gate`: [`Gate`], the one service every request enters: the checks between it and the
//!   routes, in their order; `guard`, `roles`, `throttle`: where requests come from, what a
//!   role allows, failed logins slowed.
//! - `audit`: the audit log's layer, its writer task and `GET P/audit`.
//! - `health`: `/healthz` and `/readyz`, outside the prefix, mounted as [`SideRoutes`].
//! - `console`: the web console's page and files, mounted beside the routes (same layers);
//!   `me` (`GET P/me`, who is logged in) and `scripts` (`GET P/scripts`) serve it.
//! - `metrics`: `GET /metrics` (outside the prefix); the gate counts requests.
//! - `openapi`: `GET P/openapi.json`, the API as OpenAPI 3.1 (utoipa), and its doc-only schemas.
//!
//! Requests pass, outermost first (`gate.rs`): request counting (when metrics are on) and a
//! debug span → panic catcher (500 envelope) → audit log → origin and Host check → CORS
//! (when sites are allowed) → failed-login throttle, Basic or Bearer authentication and
//! roles (when configured) → one route table (bodies read under `BodyRules`, a request
//! extension), or the JSON 404/405 fallbacks. Routes outside the API ([`SideRoutes`]: the
//! health probes, `/metrics`) are in the same table and pass the same checks down to the
//! origin and Host check, then skip authentication unless they ask for it.

mod audit;
mod auth;
mod bearer;
mod body;
mod cluster;
mod console;
mod control;
mod error;
mod extract;
mod gate;
mod guard;
pub mod health;
mod jobs;
mod me;
mod metrics;
mod notifications;
mod openapi;
mod output;
mod preview;
mod remembered;
mod roles;
mod run_listing;
mod runs;
mod scripts;
mod server;
mod state;
mod throttle;
mod tls;
mod tokens;
pub mod view;
mod wire;

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::metrics::Metrics;
use crate::scheduler::Scheduler;
use crate::store::TokenStore;

pub use audit::{AuditSettings, AuditWriter, Auditor};
pub use auth::{CHALLENGE, Credentials, CredentialsError, DENIED, Secret, User, hash_password};
pub use bearer::TOKEN_PREFIX;
pub use console::{ASSETS as CONSOLE_ASSETS, CSP as CONSOLE_CSP};
pub use control::SchedulerInfo;
pub use error::ApiError;
pub use guard::Origins;
pub use metrics::MetricsEndpoint;
pub use roles::{Actor, Credential, Role};
pub use scripts::MAX_SCRIPTS;
pub use server::{ServerLimits, serve};
pub use state::{
    ApiShared, ApiState, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_PREFIX, local_host_name,
};
pub use throttle::{FailureLimit, Throttle};
pub use tls::{TlsError, acceptor as tls_acceptor};
pub use tokens::{
    IssueError, IssuedToken, MAX_TOKEN_NAME, TokenRequest, issue_token, token_to_json,
};
pub use wire::{info_to_json, job_to_json, run_to_json};

use audit::AuditLayer;
use body::BodyRules;
pub use gate::Gate;
use state::normalize_prefix;

/// A path as the router takes it: a leading `/`, no trailing `/`, the root as `""`.
pub fn normalize_path(path: &str) -> String {
    normalize_prefix(path)
}

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
/// | GET | `P/notifications` | webhook deliveries (admin) |
/// | GET | `P/me` | who is logged in, and the scheduler's state |
/// | GET | `P/scripts` | the scripts a job may name |
/// | GET | `P/openapi.json` | this table as OpenAPI 3.1 |
/// | GET | `C`, `C/assets/{name}` | the web console (`[console] path`), when served |
/// | GET | `/metrics` (`[metrics] path`) | Prometheus metrics, open unless `require_auth` (a side route) |
///
/// Trailing slashes are not routed (404), as in the reference. Extension routes (runs,
/// cluster) are added to [`routes`].
pub fn router(state: ApiShared) -> Gate {
    router_with(state, SideRoutes::default(), None)
}

/// Routes served beside the API, outside its prefix (the health probes, metrics): each set
/// either open (no credentials, no role) or behind the API's authentication. Both kinds
/// stay behind everything else the API's routes are: tracing, the panic catcher, the audit
/// log (which records no successful read) and the origin and `Host` check.
#[derive(Debug, Default)]
pub struct SideRoutes {
    open: Router,
    authenticated: Router,
    /// The paths of `open`: the gate asks no credentials for them.
    open_paths: Vec<Box<str>>,
    /// Every side route's path, for the audit log.
    paths: Vec<String>,
}

impl SideRoutes {
    /// Adds `routes` (a stateless router: its state given) at `paths` (their exact paths),
    /// open or behind authentication (`require_auth`, meaningful only when `[auth]` is
    /// enabled).
    #[must_use]
    pub fn add(mut self, routes: Router, paths: &[&str], require_auth: bool) -> SideRoutes {
        self.paths
            .extend(paths.iter().map(|path| (*path).to_owned()));
        if require_auth {
            self.authenticated = self.authenticated.merge(routes);
        } else {
            self.open = self.open.merge(routes);
            self.open_paths
                .extend(paths.iter().map(|path| (*path).into()));
        }
        self
    }
}

/// The API's router with `side` routes beside it; with `counted`, every request is counted
/// for the metrics (kept out of [`ApiState`], which every handler clones).
pub fn router_with(state: ApiShared, side: SideRoutes, counted: Option<Metrics>) -> Gate {
    let templates = served_templates(&state.prefix, state.console.as_deref());
    // The API's routes, and the console's beside them when it is on (the same layers).
    let state_routes = |prefix: &str, state: ApiState| {
        let mut table = routes(prefix);
        if let Some(base) = &state.console {
            table = table.merge(console::routes(prefix, &normalize_prefix(base)));
        }
        table.with_state(state)
    };
    build(state, side, templates, counted, state_routes)
}

/// Only the `side` routes, behind the same layers: the daemon with `[api] enabled = false`
/// still answers its probes and its metrics.
pub fn side_only(state: ApiShared, side: SideRoutes, counted: Option<Metrics>) -> Gate {
    build(state, side, Vec::new(), counted, |_, _| Router::new())
}

/// `GET /metrics` (`[metrics] path`), for [`SideRoutes::add`].
pub fn metrics_routes(endpoint: &MetricsEndpoint, scheduler: &Scheduler) -> Router {
    Router::new()
        .route(&endpoint.path, get(metrics::get_metrics))
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

/// The route templates of the API under `prefix` and, when it is served (`console`: its
/// path), of the web console: with the side routes' paths, what the request counters and the
/// audit log name a request's route by.
pub fn served_templates(prefix: &str, console: Option<&str>) -> Vec<String> {
    let mut templates = route_templates(prefix);
    if let Some(base) = console {
        templates.extend(console::templates(&normalize_prefix(base)));
    }
    templates
}

fn build(
    state: ApiShared,
    side: SideRoutes,
    mut templates: Vec<String>,
    metrics: Option<Metrics>,
    api_routes: impl FnOnce(&str, ApiState) -> Router,
) -> Gate {
    let prefix = normalize_prefix(&state.prefix);
    let auth = state.auth.clone();
    let body = BodyRules::new(state.body_limit, state.body_timeout);
    let origins = state.origins.clone();
    let throttle = state.throttle.clone();
    let auditor = state.audit.clone();
    let state = ApiState::new(ApiShared {
        prefix: prefix.as_str().into(),
        ..state
    });
    templates.extend(side.paths.iter().cloned());
    let guards = Guards {
        auth,
        origins,
        throttle,
        prefix: prefix.as_str().into(),
        tokens: Some((state.store.clone(), state.scheduler.clone())),
        audit: Some(AuditLayer::new(
            auditor,
            templates.iter().map(String::as_str),
        )),
        side,
        metrics,
    };
    mount(api_routes(&prefix, state), body, guards)
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
        // What the web console asks: who is logged in, which scripts a job may name.
        (at("/me"), get(me::me)),
        (at("/scripts"), get(scripts::list_scripts)),
        // API tokens (an admin's).
        (
            at("/tokens"),
            get(tokens::list_tokens).post(tokens::create_token),
        ),
        (at("/tokens/{id}"), delete(tokens::revoke_token)),
        (at("/audit"), get(audit::get_audit)),
        (at("/notifications"), get(notifications::list_notifications)),
        // The API described as OpenAPI 3.1, built on the first request and kept.
        (at("/openapi.json"), openapi::route()),
    ]
}

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
    audit: Option<AuditLayer>,
    /// Routes beside the API's, open or behind authentication.
    side: SideRoutes,
    /// Where requests are counted; `None` when metrics are off.
    metrics: Option<Metrics>,
}

/// The route table with every route (the side routes' too) and the JSON fallbacks, behind
/// the gate (`gate.rs`, which orders the checks).
fn mount(routes: Router, body: BodyRules, guards: Guards) -> Gate {
    let Guards {
        auth,
        origins,
        throttle,
        prefix,
        tokens,
        audit,
        side,
        metrics,
    } = guards;
    let routes = routes
        .merge(side.authenticated)
        .merge(side.open)
        // Must come after the routes: it is set on every method router registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found);
    let login = auth.map(|credentials| {
        let mut authenticator = auth::Authenticator::new(credentials);
        if let Some((store, scheduler)) = tokens {
            authenticator = authenticator.with_tokens(store, scheduler);
        }
        Arc::new(gate::Login {
            throttle,
            authenticator,
            prefix,
        })
    });
    // Other sites' pages that the config allows in get CORS answers, their preflights
    // answered before credentials are asked for; no other site gets any.
    let cors = origins.any_allowed().then(|| cors(origins.clone()));
    Gate::new(gate::Checks {
        metrics,
        origins,
        audit,
        body,
        cors,
        inside: gate::Inside {
            login,
            open: side.open_paths.into(),
            routes,
        },
    })
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
