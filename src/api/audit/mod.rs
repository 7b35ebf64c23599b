//! The audit log's layer: every change made through the API (POST, PATCH, PUT, DELETE: any
//! method but GET, HEAD and OPTIONS), whatever its outcome, and every request of any method
//! that was refused (401, 403, 421, 429), becomes a record (`crate::store::AuditRecord`):
//! when, who, with what kind of credential, from which address, the method and route, the
//! job or run it named, and how it ended. Reads that succeed make none.
//!
//! It sits outside every check (just inside the panic catcher), so it sees the answers of
//! `guard.rs` (421, cross-site 403), of authentication (401) and of roles (403) as well as
//! the routes'. It reads no body and no secret:
//! - who: the [`Actor`] authentication put on the response; when there is none (the request
//!   was refused before or by authentication), the user name of a Basic `Authorization` it
//!   tried, its credential kind left empty (not authenticated). A Bearer token's secret is
//!   never read.
//! - the route and target: what [`mark_route`] (a route layer, so it runs only when a route
//!   matched) puts on the response: the route template and the `{id}` of the path; a handler
//!   that creates something the path does not name adds [`Created`]. A request refused before
//!   it was routed (401, 403, 421) is routed again afterwards, as a probe: its method and path
//!   alone, marked [`Probe`], through the route table, where [`mark_route`] answers it before
//!   any handler runs. A path that no route has is recorded as it is, without a target.
//!
//! Records go to the writer ([`writer`]) off the request path: a change's record waits for
//! room in its queue, a refusal's is dropped (and counted) when the queue is full.

mod route;
mod writer;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tower::ServiceExt as _;

use super::roles::Actor;
use crate::store::{AuditEntry, AuditRecord, Outcome};

pub(crate) use route::{__path_get_audit, get_audit};
pub use writer::{AuditSettings, AuditWriter, Auditor};

/// What [`mark_route`] puts on a response: the route that matched and the `{id}` in its
/// path.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    route: MatchedPath,
    id: Option<String>,
}

/// What a handler puts on its response when it created something its path does not name
/// (`POST P/jobs`: the new job's id).
#[derive(Debug, Clone)]
pub(crate) struct Created(pub String);

/// Marks a request that only asks which route it would take: [`mark_route`] answers it, so
/// no handler runs. Set by the audit layer only (a client cannot set an extension).
#[derive(Debug, Clone, Copy)]
struct Probe;

/// The audit layer's state: where records go, and the route table to probe.
#[derive(Clone)]
pub(crate) struct AuditLayer {
    auditor: Auditor,
    /// The route table with [`mark_route`] on every route, without the checks.
    routes: Router,
}

impl AuditLayer {
    /// The layer over `routes`, which must have [`mark_route`] as a route layer.
    pub(crate) fn new(auditor: Auditor, routes: Router) -> AuditLayer {
        AuditLayer { auditor, routes }
    }

    /// The route `method` and `uri` take, from a probe through the route table.
    async fn probe(&self, method: &Method, uri: &axum::http::Uri) -> Option<Routed> {
        let mut probe = Request::new(Body::empty());
        *probe.method_mut() = method.clone();
        *probe.uri_mut() = uri.clone();
        probe.extensions_mut().insert(Probe);
        let response = self.routes.clone().oneshot(probe).await.ok()?;
        response.extensions().get::<Routed>().cloned()
    }
}

/// The route layer: the matched route and the path's `{id}`, on the response. A [`Probe`] is
/// answered here, empty, before its handler would run.
pub(crate) async fn mark_route(
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    let probe = request.extensions().get::<Probe>().is_some();
    if !probe
        && matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        )
    {
        // A read that reached its route was not refused: it makes no record, so it needs no
        // mark (the hot path stays as it was).
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>().cloned();
    let id = params.ok().and_then(|params| {
        params
            .iter()
            .find(|(name, _)| *name == "id")
            .map(|(_, value)| value.to_owned())
    });
    let mut response = if probe {
        Response::default()
    } else {
        next.run(request).await
    };
    if let Some(route) = route {
        response.extensions_mut().insert(Routed { route, id });
    }
    response
}

/// Answers `request` with `answer` (every check, then the route), then queues its record if
/// it makes one. Called by the gate (`gate.rs`), outside every check.
pub(crate) async fn recorded<F>(
    layer: &AuditLayer,
    request: Request,
    answer: impl FnOnce(Request) -> F,
) -> Response
where
    F: Future<Output = Response>,
{
    let method = request.method().clone();
    let uri = request.uri().clone();
    let authorization = request.headers().get(AUTHORIZATION).cloned();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let response = answer(request).await;
    let status = response.status().as_u16();
    let change = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let outcome = Outcome::of_status(status);
    if !change && outcome != Outcome::Denied {
        return response;
    }
    let (actor, credential) = match response.extensions().get::<Actor>() {
        Some(actor) => (
            Some(actor.name.clone()),
            Some(actor.credential.as_str().to_owned()),
        ),
        None => (authorization.as_ref().and_then(tried_name), None),
    };
    let routed = match response.extensions().get::<Routed>() {
        Some(routed) => Some(routed.clone()),
        None => layer.probe(&method, &uri).await,
    };
    let routed = routed.as_ref();
    let created = response.extensions().get::<Created>();
    let entry = AuditEntry {
        actor,
        credential,
        source: peer.map_or_else(
            || "unknown".to_owned(),
            |peer| peer.ip().to_canonical().to_string(),
        ),
        method: method.as_str().to_owned(),
        route: routed.map_or_else(|| uri.path().to_owned(), |r| r.route.as_str().to_owned()),
        target: created
            .map(|Created(id)| id.clone())
            .or_else(|| routed.and_then(|r| r.id.clone())),
        status,
    };
    let record = AuditRecord::now(entry);
    // A refusal changed nothing, and a flood of them must not hold up the answers: its record
    // may be dropped. Anything else that gets here was a change, done or failed: it waits.
    if outcome == Outcome::Denied {
        layer.auditor.refusal(record);
    } else {
        layer.auditor.change(record).await;
    }
    response
}

/// Who a refused request tried to be: the user name of `Authorization: Basic`, never the
/// password (undecodable bytes shown as U+FFFD), or `token <id>` for a Bearer token of
/// tickd's form, never its secret; `None` for anything else.
fn tried_name(value: &HeaderValue) -> Option<String> {
    let value = value.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return super::bearer::public_id(encoded.trim()).map(|id| format!("token {id}"));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let name = decoded.split(|&b| b == b':').next()?;
    Some(String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_user_name_or_the_tokens_public_id_is_read() {
        let basic = |text: &str| HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(text)));
        assert_eq!(
            tried_name(&basic("alice:s3cret:more").unwrap()),
            Some("alice".to_owned())
        );
        assert_eq!(tried_name(&basic("bob").unwrap()), Some("bob".to_owned()));
        assert_eq!(
            tried_name(&HeaderValue::from_static("Bearer tickd_abc_secret")),
            None,
            "not a token of tickd's form"
        );
        let token = format!("tickd_0123456789ab_{}", "f".repeat(64));
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        assert_eq!(tried_name(&bearer), Some("token 0123456789ab".to_owned()));
        assert_eq!(tried_name(&HeaderValue::from_static("Basic !!")), None);
    }
}
