//! The gate: the one service every request enters, and every check between it and the route
//! table, in an order written out here once. Outermost first:
//!
//! 1. counted for the metrics (when they are on), inside a `request` span (debug level);
//! 2. a panic below is caught and answered with the 500 envelope;
//! 3. the audit log (`audit/`) around the rest, so that it records the refusals below (and a
//!    change whose handler panicked, as an error);
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
//! code: the checks that need not wait run as the request arrives (`Gate::call`), and one
//! small boxed future waits for the route and counts the answer. Composed as tower layers and
//! nested routers instead, a `GET P` paid for a box, a clone and a route lookup per layer and
//! spent more than half its time there (README, Performance).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
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

use super::audit::{self, AuditLayer, Pending};
use super::auth::{self, Authenticator, Identified};
use super::body::BodyRules;
use super::guard::{self, Origins};
use super::remembered::RememberedLogin;
use super::roles::{self, Actor};
use super::throttle::Throttle;
use crate::metrics::Metrics;

/// The service a connection's requests go to: see the module's doc. Cloned per connection
/// (one reference count), with the client's address ([`Gate::for_peer`]).
#[derive(Clone)]
pub struct Gate {
    checks: Arc<Checks>,
    connection: Connection,
}

/// What the gate knows of the connection a request came over; without one (the in-process
/// tests), nothing.
#[derive(Clone, Default)]
struct Connection {
    /// The client's address: failed logins are counted by it and the audit log records it.
    /// Carried here rather than as a request extension (axum's `ConnectInfo`), which cost
    /// every request an allocation for a value read only by the gate.
    peer: Option<SocketAddr>,
    /// The Basic login the connection proved last (`remembered.rs`).
    login: Option<Arc<RememberedLogin>>,
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
            connection: Connection::default(),
        }
    }

    /// The gate for the requests of a new connection from `peer`.
    #[must_use]
    pub fn for_peer(&self, peer: SocketAddr) -> Gate {
        Gate {
            checks: Arc::clone(&self.checks),
            connection: Connection {
                peer: Some(peer),
                login: Some(Arc::default()),
            },
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

    /// Steps 1 and 2 around the rest. Steps 3 to 6 run here, before the future is made,
    /// as far as they go without waiting (for the usual request: all the way to the route's
    /// future). The future then holds what the answer still needs, not the request, nor a
    /// copy of it per level of `async fn` (rustc keeps each level's arguments beside the
    /// futures they are moved into), and stays small enough for the allocator's fast path.
    fn call(&mut self, request: Request) -> Self::Future {
        let checks = Arc::clone(&self.checks);
        let counted = checks.metrics.as_ref().map(|metrics| Counted {
            route: metrics.http().route(request.uri().path()),
            method: request.method().clone(),
            started: Instant::now(),
        });
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            uri = %request.uri(),
            version = ?request.version(),
        );
        let entered = span.in_scope(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| checks.enter(request, &self.connection)))
        });
        let (pending, answer) = match entered {
            Ok((pending, entered)) => (
                pending,
                Ok(AssertUnwindSafe(entered.answer()).catch_unwind()),
            ),
            Err(panic) => (None, Err(panic)),
        };
        let answer = answer.map(|answer| answer.instrument(span.clone()));
        Box::pin(async move {
            let response = match answer {
                Ok(answer) => answer.await.unwrap_or_else(super::panic_response),
                Err(panic) => super::panic_response(panic),
            };
            if let (Some(layer), Some(pending)) = (&checks.audit, pending)
                && let Some(recorded) = pending.finish(layer, &response)
            {
                recorded.await;
            }
            span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
            if let (Some(metrics), Some(counted)) = (&checks.metrics, counted) {
                metrics.http().record(
                    counted.route,
                    counted.method.as_str(),
                    response.status().as_u16(),
                    counted.started.elapsed(),
                );
            }
            Ok(response)
        })
    }
}

/// What the request counters need once a request is answered.
struct Counted {
    /// The route's slot in the counters.
    route: usize,
    method: Method,
    started: Instant,
}

impl Checks {
    /// Steps 3 to 5 here, 6 and 7 in [`Inside::enter`] (apart so that CORS can wrap them):
    /// the audit log's note of the request, and the request as far as the checks take it
    /// without waiting. `connection`: what is known of the request's connection.
    fn enter(&self, mut request: Request, connection: &Connection) -> (Option<Pending>, Entered) {
        // Only changes have bodies a handler reads; a read goes without the extension.
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            request.extensions_mut().insert(self.body.clone());
        }
        let pending = self
            .audit
            .as_ref()
            .map(|_| AuditLayer::begin(&request, connection.peer));
        let entered = if let Some(refused) = guard::refusal(&self.origins, &request) {
            Entered::answered(refused)
        } else if let Some(cors) = &self.cors {
            // Few daemons let other sites in: their requests go the slow way.
            let service = cors.layer(self.inside.service(connection.clone()));
            Entered::waiting(
                async move { Entered::answered(answered(service.oneshot(request).await)) },
            )
        } else {
            self.inside.enter(request, connection)
        };
        (pending, entered)
    }
}

/// A request as far as the checks took it without waiting, and what its answer still needs
/// ([`After`]): [`Answer`] waits for the answer.
pub(crate) struct Entered {
    next: Next,
    after: After,
}

enum Next {
    /// Answered by a check (boxed: checks refuse the few).
    Answered(Box<Response>),
    /// In the route table. Its future (which holds the request) is boxed: in place, its
    /// few hundred bytes would be copied at every step of the way to the gate's future.
    Routed(Pin<Box<RouteFuture<Infallible>>>),
    /// A check that has to wait (an API token's store, argon2, CORS around the rest): the
    /// rare requests, boxed so the usual one carries no room for them.
    Waiting(Pin<Box<dyn Future<Output = Entered> + Send>>),
    /// Answered already: polled again, it panics, as futures do.
    Gone,
}

/// What step 6 does to the answer ([`After::apply`]).
#[derive(Default)]
struct After {
    /// Where the request's failed login is counted, or its count cleared.
    throttled: Option<Throttled>,
    /// Who sent the request, and its method: put on the answer for the audit log when it
    /// makes a record.
    actor: Option<(Actor, Method)>,
}

struct Throttled {
    throttle: Arc<Throttle>,
    address: IpAddr,
    /// Whether the request carried credentials (a 401 without any is no failed login).
    guessed: bool,
}

impl Entered {
    fn answered(response: Response) -> Entered {
        Entered::counted(response, None)
    }

    /// Answered by authentication, before anyone was identified: the answer still counts
    /// for the address's failed logins (`throttled`).
    fn counted(response: Response, throttled: Option<Throttled>) -> Entered {
        let after = After {
            throttled,
            actor: None,
        };
        Entered::with(Next::Answered(Box::new(response)), after)
    }

    fn routed(route: Pin<Box<RouteFuture<Infallible>>>) -> Entered {
        Entered::with(Next::Routed(route), After::default())
    }

    fn waiting(future: impl Future<Output = Entered> + Send + 'static) -> Entered {
        Entered::with(Next::Waiting(Box::pin(future)), After::default())
    }

    fn with(next: Next, after: After) -> Entered {
        Entered { next, after }
    }

    fn answer(self) -> Answer {
        Answer(self)
    }
}

/// The future of an [`Entered`] request's answer: a check's, the route's, or a waiting
/// check's, through [`After::apply`]. Written by hand, not as an `async fn`, for its size:
/// see [`Gate`]'s `call`.
pub(crate) struct Answer(Entered);

impl Future for Answer {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let entered = &mut self.0;
        let response = loop {
            match &mut entered.next {
                Next::Routed(route) => break answered(std::task::ready!(route.as_mut().poll(cx))),
                Next::Waiting(waiting) => *entered = std::task::ready!(waiting.as_mut().poll(cx)),
                Next::Answered(_) | Next::Gone => {
                    match std::mem::replace(&mut entered.next, Next::Gone) {
                        Next::Answered(response) => break *response,
                        _ => panic!("a request's answer was polled after it was given"),
                    }
                }
            }
        };
        entered.next = Next::Gone;
        Poll::Ready(std::mem::take(&mut entered.after).apply(response))
    }
}

impl After {
    /// Step 6 on the answer: the failed login counted (or the count cleared), and the actor
    /// put on it when the audit log will record it.
    fn apply(self, mut response: Response) -> Response {
        let status = response.status();
        if let Some((actor, method)) = self.actor
            && audit::makes_record(&method, status.as_u16())
        {
            response.extensions_mut().insert(actor);
        }
        if let Some(throttled) = self.throttled {
            let Throttled {
                throttle,
                address,
                guessed,
            } = throttled;
            throttle.observe(address, guessed, status);
        }
        response
    }
}

impl Inside {
    /// Steps 6 and 7 as far as they go without waiting: failed logins slowed, credentials
    /// checked, the role's allowance, then the route table. `connection`: what is known of
    /// the request's connection.
    fn enter(&self, request: Request, connection: &Connection) -> Entered {
        let login = match &self.login {
            Some(login) if !self.open.iter().any(|path| **path == *request.uri().path()) => login,
            _ => return Entered::routed(self.route(request)),
        };
        let throttled = match login.throttle.admit(connection.peer) {
            Ok(address) => address.map(|address| Throttled {
                throttle: Arc::clone(&login.throttle),
                address,
                guessed: request.headers().contains_key(AUTHORIZATION),
            }),
            Err(refused) => return Entered::answered(refused.into_response()),
        };
        match login
            .authenticator
            .identify_now(request.headers(), connection.login.as_deref())
        {
            Identified::Now(actor) => self.admit(login, request, actor, throttled),
            Identified::Later => {
                let inside = self.clone();
                let login = Arc::clone(login);
                Entered::waiting(async move {
                    match login.authenticator.identify(request.headers()).await {
                        Ok(actor) => inside.admit(&login, request, actor, throttled),
                        Err(unanswered) => Entered::counted(unanswered.into_response(), throttled),
                    }
                })
            }
        }
    }

    /// Past authentication (`actor`: who the credentials say, `None` for none or wrong
    /// ones): refused, or the route table if the role allows.
    fn admit(
        &self,
        login: &Login,
        mut request: Request,
        actor: Option<Actor>,
        throttled: Option<Throttled>,
    ) -> Entered {
        let Some(actor) = actor else {
            auth::log_denied(&request);
            return Entered::counted(auth::denied(), throttled);
        };
        let method = request.method().clone();
        let next = match roles::refusal(&login.prefix, &actor, &request) {
            Some(refused) => Next::Answered(Box::new(refused)),
            None => {
                request.extensions_mut().insert(actor.clone());
                Next::Routed(self.route(request))
            }
        };
        let after = After {
            throttled,
            actor: Some((actor, method)),
        };
        Entered::with(next, after)
    }

    /// Steps 6 and 7 as a service, for CORS to wrap (for a request over `connection`).
    fn service(
        &self,
        connection: Connection,
    ) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send>
    + Clone
    + use<> {
        let inside = self.clone();
        tower::service_fn(move |request| {
            let entered = inside.enter(request, &connection);
            async move { Ok::<_, Infallible>(entered.answer().await) }
        })
    }

    /// The route table's answer. A router is always ready: no `poll_ready`, no `Oneshot`.
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
