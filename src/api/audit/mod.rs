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
//! - the route and target: the route template the path matches (the gate's route table's
//!   templates, matched by axum's own matcher) and the path's `{id}`; a handler that creates
//!   something the path does not name adds [`Created`]. A path that no route has is recorded
//!   as it is, without a target. Only a request that makes a record is matched: a read that
//!   succeeds costs nothing here.
//!
//! Records go to the writer ([`writer`]) off the request path: a change's record waits for
//! room in its queue, a refusal's is dropped (and counted) when the queue is full.

mod route;
mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, Method};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::roles::{Actor, is_read};
use crate::store::{AuditEntry, AuditRecord, Outcome};

pub(crate) use route::{__path_get_audit, get_audit};
pub use writer::{AuditSettings, AuditWriter, Auditor};

/// The route a request took: its template and the `{id}` in its path.
#[derive(Debug, Clone)]
struct Routed {
    route: Box<str>,
    id: Option<String>,
}

/// What a handler puts on its response when it created something its path does not name
/// (`POST P/jobs`: the new job's id).
#[derive(Debug, Clone)]
pub(crate) struct Created(pub String);

/// The audit layer's state: where records go, and the route templates to match paths with.
#[derive(Clone)]
pub(crate) struct AuditLayer {
    auditor: Auditor,
    /// Route templates (axum's syntax, `/scheduler/jobs/{id}`), matched as axum matches them.
    routes: Arc<matchit::Router<Box<str>>>,
}

impl AuditLayer {
    /// The layer for a route table with these templates. One that does not parse, or comes
    /// twice, is left out: its requests are recorded under their paths.
    pub(crate) fn new<'a>(
        auditor: Auditor,
        templates: impl IntoIterator<Item = &'a str>,
    ) -> AuditLayer {
        let mut routes = matchit::Router::new();
        for template in templates {
            let _ = routes.insert(template, template.into());
        }
        AuditLayer {
            auditor,
            routes: Arc::new(routes),
        }
    }

    /// The route `path` takes, and its `{id}`.
    fn route(&self, path: &str) -> Option<Routed> {
        let found = self.routes.at(path).ok()?;
        Some(Routed {
            route: found.value.clone(),
            id: found.params.get("id").map(str::to_owned),
        })
    }
}

impl AuditLayer {
    /// What the record of `request` will need once it has been answered (the request itself
    /// is gone by then): called by the gate (`gate.rs`), outside every check. Reference
    /// counts only: most requests make no record. `peer`: the client's address, when the
    /// request came over a connection.
    pub(crate) fn begin(request: &Request, peer: Option<SocketAddr>) -> Pending {
        Pending {
            method: request.method().clone(),
            uri: request.uri().clone(),
            authorization: request.headers().get(AUTHORIZATION).cloned(),
            peer,
        }
    }
}

/// A request on its way through the checks and the routes, whose record (if it makes one)
/// [`Pending::finish`] writes.
pub(crate) struct Pending {
    method: Method,
    uri: axum::http::Uri,
    authorization: Option<HeaderValue>,
    peer: Option<SocketAddr>,
}

impl Pending {
    /// Queues the record of the request answered `response`, if it makes one, in `layer`'s
    /// log. A refusal's is queued here; a change's waits for room in the queue, in the
    /// future this answers, which the caller awaits before it answers.
    pub(crate) fn finish(
        self,
        layer: &AuditLayer,
        response: &Response,
    ) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        let status = response.status().as_u16();
        if !makes_record(&self.method, status) {
            return None;
        }
        let record = self.record(layer, response, status);
        // A refusal changed nothing, and a flood of them must not hold up the answers: its
        // record may be dropped. Anything else that gets here was a change, done or failed:
        // it waits.
        if Outcome::of_status(status) == Outcome::Denied {
            layer.auditor.refusal(record);
            None
        } else {
            // Boxed: a change is the rare request, and every request's future would
            // otherwise carry room for this one's.
            let auditor = layer.auditor.clone();
            Some(Box::pin(async move { auditor.change(record).await }))
        }
    }

    fn record(&self, layer: &AuditLayer, response: &Response, status: u16) -> AuditRecord {
        let (actor, credential) = match response.extensions().get::<Actor>() {
            Some(actor) => (
                Some(actor.name.to_string()),
                Some(actor.credential.as_str().to_owned()),
            ),
            None => (self.authorization.as_ref().and_then(tried_name), None),
        };
        let routed = layer.route(self.uri.path());
        let routed = routed.as_ref();
        let created = response.extensions().get::<Created>();
        AuditRecord::now(AuditEntry {
            actor,
            credential,
            source: self.peer.map_or_else(
                || "unknown".to_owned(),
                |peer| peer.ip().to_canonical().to_string(),
            ),
            method: self.method.as_str().to_owned(),
            route: routed.map_or_else(|| self.uri.path().to_owned(), |r| r.route.to_string()),
            target: created
                .map(|Created(id)| id.clone())
                .or_else(|| routed.and_then(|r| r.id.clone())),
            status,
        })
    }
}

/// Whether a request of `method` answered `status` makes a record: a change, whatever its
/// outcome, or a refusal.
pub(crate) fn makes_record(method: &Method, status: u16) -> bool {
    !is_read(method) || Outcome::of_status(status) == Outcome::Denied
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
