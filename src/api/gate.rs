//! The gate: every check that stands between a request and the routes, as two middlewares
//! whose order is written out here once.
//!
//! - [`outer`], for every request, the open side routes' too: the audit log around the rest
//!   (so that it records the refusals below), then where the request comes from
//!   (`guard.rs`: its `Host`, a change's `Origin`).
//! - [`login`], for the API's routes, the console and the side routes that ask for
//!   credentials, when authentication is on: failed logins slowed (`throttle.rs`), Basic or
//!   Bearer credentials (`auth.rs`), then what the role allows (`roles.rs`). The actor goes
//!   on the request (for handlers) and on the response (for the audit log), refused or not.
//!
//! Each check is a plain function of its own room; the gate only composes them. Written as
//! one middleware per stage rather than one per check, a request pays for two boxed
//! futures, not five (a fifth of a `GET P`'s time went to the layers' boxes and clones).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::audit::{self, AuditLayer};
use super::auth::{self, Authenticator};
use super::guard::{self, Origins};
use super::roles;
use super::throttle::Throttle;

/// What [`outer`] checks with.
#[derive(Clone)]
pub(crate) struct Outer {
    /// The names and origins requests may come from.
    pub origins: Arc<Origins>,
    /// Where audit records go; `None` records nothing (the layer tests).
    pub audit: Option<AuditLayer>,
}

/// What [`login`] checks with.
pub(crate) struct Login {
    /// Failed authentications counted per address.
    pub throttle: Arc<Throttle>,
    /// Users, their digests, and the token store.
    pub authenticator: Authenticator,
    /// The API's path prefix, under which [`roles::Role::needed`] reads paths.
    pub prefix: Arc<str>,
}

/// The audit log around the origin and `Host` check, and whatever comes after.
pub(crate) async fn outer(State(outer): State<Outer>, request: Request, next: Next) -> Response {
    let checked = |request: Request| async move {
        match guard::refusal(&outer.origins, &request) {
            Some(refused) => refused,
            None => next.run(request).await,
        }
    };
    match &outer.audit {
        Some(layer) => audit::recorded(layer, request, checked).await,
        None => checked(request).await,
    }
}

/// Failed logins slowed, credentials checked, the role's allowance: see the module's doc.
pub(crate) async fn login(
    State(login): State<Arc<Login>>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = match login.throttle.admit(&request) {
        Ok(address) => address,
        Err(refused) => return refused.into_response(),
    };
    let guessed = request.headers().contains_key(AUTHORIZATION);
    let response = match login.authenticator.identify(request.headers()).await {
        Ok(Some(actor)) => {
            let mut response = match roles::refusal(&login.prefix, &actor, &request) {
                Some(refused) => refused,
                None => {
                    request.extensions_mut().insert(actor.clone());
                    next.run(request).await
                }
            };
            response.extensions_mut().insert(actor);
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
