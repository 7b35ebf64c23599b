//! The gate: the one service every request enters, and every check between it and the route
//! table, in an order written out here once. Outermost first:
//!
//! 1. counted for the metrics (when they are on), inside a `request` span (debug level);
//! 2. a panic below is caught and answered with the 500 envelope;
//! 3. the audit log (`audit/`) around the rest, so that it records the refusals below;
//! 4. where the request comes from (`guard.rs`: its `Host`, a change's `Origin`);
//! 5. CORS, when `[server] cors_origins` lets other sites in (preflights answered here);
//! 6. for every path but the open side routes, when authentication is on: failed logins
//!    slowed (`throttle.rs`), Basic or Bearer credentials (`auth.rs`), then what the role
//!    allows (`roles.rs`); the actor goes on the request (for handlers), and on the
//!    response when the audit log will record it;
//! 7. the route table: one axum `Router` with every route, its bodies read under
//!    [`BodyRules`] (a request extension), and the JSON 404/405 fallbacks.
//!
//! Each check is a plain function of its own room; the gate only composes them, as plain
//! code in one boxed future. Composed as tower layers and nested routers instead, a `GET P`
//! paid for a box, a clone and a route lookup per layer and spent more than half its time
//! there (README, Performance).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use futures_util::FutureExt as _;
use tower::Layer as _;
use tower::ServiceExt as _;
use tower_http::cors::CorsLayer;
use tracing::Instrument as _;

use super::audit::{self, AuditLayer};
use super::auth::{self, Authenticator};
use super::body::BodyRules;
use super::guard::{self, Origins};
use super::roles;
use super::throttle::Throttle;
use crate::metrics::Metrics;

/// The service a connection's requests go to: see the module's doc. Cloned per connection
/// (one reference count).
#[derive(Clone)]
pub struct Gate {
    checks: Arc<Checks>,
}

/// What the gate checks with.
pub(crate) struct Checks {
    /// Where requests are counted; `None` when metrics are off.
    pub metrics: Option<Metrics>,
    /// The names and origins requests may come from.
    pub origins: Arc<Origins>,
    /// Where audit records go; `None` records nothing (the layer tests).
    pub audit: Option<AuditLayer>,
    /// How request bodies are read.
    pub body: BodyRules,
    /// CORS for the sites the config lets in; `None`: no site gets any.
    pub cors: Option<CorsLayer>,
    /// Authentication, then the routes.
    pub inside: Inside,
}

/// Steps 6 and 7: credentials unless the path is an open one, then the route table (made a
/// service when CORS, step 5, wraps it).
#[derive(Clone)]
pub(crate) struct Inside {
    /// Credentials and roles; `None` when authentication is off.
    pub login: Option<Arc<Login>>,
    /// Paths served without credentials (open side routes: the probes, `/metrics`).
    pub open: Arc<[Box<str>]>,
    /// Every route, the open ones included, with the 404/405 fallbacks.
    pub routes: Router,
}

/// What step 6 checks with.
pub(crate) struct Login {
    /// Failed authentications counted per address.
    pub throttle: Arc<Throttle>,
    /// Users, their digests, and the token store.
    pub authenticator: Authenticator,
    /// The API's path prefix, under which [`roles::Role::needed`] reads paths.
    pub prefix: Arc<str>,
}

impl Gate {
    pub(crate) fn new(checks: Checks) -> Gate {
        Gate {
            checks: Arc::new(checks),
        }
    }
}

impl tower::Service<Request> for Gate {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let checks = Arc::clone(&self.checks);
        Box::pin(async move { Ok(checks.answer(request).await) })
    }
}

impl Checks {
    /// Steps 1 and 2 around the rest.
    async fn answer(&self, mut request: Request) -> Response {
        // Only changes have bodies a handler reads; a read goes without the extension.
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            request.extensions_mut().insert(self.body.clone());
        }
        let counted = self.metrics.as_ref().map(|metrics| {
            let route = metrics.http().route(request.uri().path());
            (metrics, route, request.method().clone(), Instant::now())
        });
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            uri = %request.uri(),
            version = ?request.version(),
        );
        let response = AssertUnwindSafe(self.audited(request))
            .catch_unwind()
            .instrument(span.clone())
            .await
            .unwrap_or_else(super::panic_response);
        span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
        if let Some((metrics, route, method, started)) = counted {
            metrics.http().record(
                route,
                method.as_str(),
                response.status().as_u16(),
                started.elapsed(),
            );
        }
        response
    }

    /// Steps 3 to 5 here, 6 and 7 in [`Inside::answer`] (apart so that CORS can wrap them).
    /// Not one function per step: each level of `async fn` would move the request and nest
    /// its future in its caller's (most of a request's copying).
    async fn audited(&self, request: Request) -> Response {
        // Boxed, as the route's future: see `Inside::route`.
        let pending = self
            .audit
            .as_ref()
            .map(|layer| Box::new(layer.begin(&request)));
        let response = if let Some(refused) = guard::refusal(&self.origins, &request) {
            refused
        } else if let Some(cors) = &self.cors {
            let inside = self.inside.clone();
            let inside = tower::service_fn(move |request| {
                let inside = inside.clone();
                async move { Ok::<_, Infallible>(inside.answer(request).await) }
            });
            // Boxed: few daemons let other sites in.
            answered(Box::pin(cors.layer(inside).oneshot(request)).await)
        } else {
            self.inside.answer(request).await
        };
        match pending {
            Some(pending) => pending.finish(response).await,
            None => response,
        }
    }
}

impl Inside {
    /// Steps 6 and 7: failed logins slowed, credentials checked, the role's allowance, then
    /// the route table.
    async fn answer(&self, mut request: Request) -> Response {
        let login = match &self.login {
            Some(login) if !self.open.iter().any(|path| **path == *request.uri().path()) => login,
            _ => return answered(self.route(request).await),
        };
        let address = match login.throttle.admit(&request) {
            Ok(address) => address,
            Err(refused) => return refused.into_response(),
        };
        let guessed = request.headers().contains_key(AUTHORIZATION);
        // Awaited apart from the `match`: a future in its head would live to its end, beside
        // the route's in this future's memory.
        let identified = login.authenticator.identify(request.headers()).await;
        let response = match identified {
            Ok(Some(actor)) => {
                let method = request.method().clone();
                let mut response = match roles::refusal(&login.prefix, &actor, &request) {
                    Some(refused) => refused,
                    None => {
                        request.extensions_mut().insert(actor.clone());
                        answered(self.route(request).await)
                    }
                };
                if audit::makes_record(&method, response.status().as_u16()) {
                    response.extensions_mut().insert(actor);
                }
                response
            }
            Ok(None) => {
                auth::log_denied(&request);
                auth::denied()
            }
            Err(unanswered) => unanswered.into_response(),
        };
        if let Some(address) = address {
            login.throttle.observe(address, guessed, response.status());
        }
        response
    }

    /// The route table's answer. A router is always ready: no `poll_ready`, no `Oneshot`.
    /// Its future (which holds the request) is boxed: in place it would add to the gate's
    /// own, which every level of `async fn` taking the request by value grows (the argument
    /// is kept beside the futures it is moved into).
    fn route(&self, request: Request) -> Pin<Box<RouteFuture<Infallible>>> {
        Box::pin(tower::Service::call(&mut self.routes.clone(), request))
    }
}

/// A router's answer: it never fails.
fn answered(result: Result<Response, Infallible>) -> Response {
    match result {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
