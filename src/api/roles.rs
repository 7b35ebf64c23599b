//! Who may do what: three roles, each allowed what the one below it is and more.
//!
//! | role | may |
//! |---|---|
//! | `viewer` | read jobs, runs, their output, the scheduler's state and the cluster; preview a schedule (`POST P/preview` too, which changes nothing); open the web console (every path outside the API's prefix is read as a viewer's) |
//! | `operator` | also create, change, pause, resume, run and remove jobs, cancel runs, pause and resume the scheduler |
//! | `admin` | everything: also start and shut down the scheduler, and manage API tokens (`P/tokens`) |
//!
//! A user's role is set in `[[auth.users]]` (`role`, default `admin`, so a config written
//! before roles keeps its meaning). With authentication off, every caller is an admin, as
//! before. A request its role does not allow is 403 naming the role it needs; 401 stays for
//! missing or wrong credentials.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// What a user may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Reads, and runs the jobs.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// The role's name in the config and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role a request needs: the admin areas (tokens, the audit log) are an admin's
    /// whatever the method; elsewhere reads are a viewer's, starting and shutting down the
    /// scheduler an admin's, every other change an operator's. `POST P/preview` is a read
    /// with a body (it creates nothing), so a viewer's too. `path` is the request's path
    /// under the API's prefix.
    pub fn needed(method: &Method, path: &str) -> Role {
        match *method {
            _ if ADMIN_AREAS.iter().any(|area| within(path, area)) => Role::Admin,
            _ if is_read(method) => Role::Viewer,
            Method::POST if READS_WITH_A_BODY.contains(&path) => Role::Viewer,
            _ if matches!(path, "/start" | "/shutdown") => Role::Admin,
            _ => Role::Operator,
        }
    }
}

impl Role {
    /// The role a request outside the API's prefix needs: reads (the console) are a
    /// viewer's; anything else, which no route there takes, an operator's as elsewhere.
    pub fn outside_the_api(method: &Method) -> Role {
        if is_read(method) {
            Role::Viewer
        } else {
            Role::Operator
        }
    }
}

/// Whether `method` only reads (GET, HEAD, OPTIONS): what a viewer may send, what a page of
/// another site may send (`guard.rs`), and what the audit log records only when refused.
pub(crate) fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// POST routes that change nothing: a viewer may use them.
const READS_WITH_A_BODY: [&str; 1] = ["/preview"];

/// Paths under the prefix that only an admin may read or change: who may log in, and what
/// everyone did.
const ADMIN_AREAS: [&str; 3] = ["/tokens", "/audit", "/notifications"];

/// Whether `path` is `area` or below it (`/tokens`, `/tokens/x`, not `/tokensx`).
fn within(path: &str, area: &str) -> bool {
    path.strip_prefix(area)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A user configured without a role is an admin: configs written before roles keep their
/// meaning.
impl Default for Role {
    fn default() -> Self {
        Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err("a role: viewer, operator or admin".to_owned()),
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// HTTP Basic: a configured user's name and password.
    Password,
    /// `Authorization: Bearer`: an API token.
    Token,
}

impl Credential {
    /// The kind's name in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::Password => "password",
            Credential::Token => "token",
        }
    }
}

/// Who a request was authenticated as, put on the request by the authentication layer (and
/// on its response, for the layers outside it).
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user's name, or the token's (shared: an actor is cloned onto the request).
    pub name: Arc<str>,
    /// What the actor may do.
    pub role: Role,
    /// How the actor proved it.
    pub credential: Credential,
}

/// The 403 a request gets when `actor`'s role does not allow it, or `None`. `prefix` is
/// the API's, which [`Role::needed`] reads paths under. Called by the gate (`gate.rs`).
pub(crate) fn refusal(prefix: &str, actor: &Actor, request: &Request) -> Option<Response> {
    let path = request.uri().path();
    let needed = match path.strip_prefix(prefix) {
        Some(path) => Role::needed(request.method(), path),
        // Outside the API: the web console's page and files (or a 404), a viewer's to
        // read whatever their path (a console at `/audit` is not the audit log).
        None => Role::outside_the_api(request.method()),
    };
    (actor.role < needed).then(|| {
        ApiError::Forbidden {
            needed,
            user: actor.name.to_string(),
            has: actor.role,
        }
        .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_a_viewers_changes_an_operators_start_and_shutdown_an_admins() {
        assert_eq!(Role::needed(&Method::GET, "/jobs/x"), Role::Viewer);
        assert_eq!(Role::needed(&Method::POST, "/jobs"), Role::Operator);
        assert_eq!(Role::needed(&Method::DELETE, "/jobs/start"), Role::Operator);
        assert_eq!(Role::needed(&Method::POST, "/pause"), Role::Operator);
        assert_eq!(Role::needed(&Method::POST, "/preview"), Role::Viewer);
        assert_eq!(Role::needed(&Method::GET, "/jobs/x/preview"), Role::Viewer);
        assert_eq!(Role::needed(&Method::DELETE, "/preview"), Role::Operator);
        assert_eq!(Role::needed(&Method::POST, "/start"), Role::Admin);
        assert_eq!(Role::needed(&Method::POST, "/shutdown"), Role::Admin);
        assert_eq!(Role::needed(&Method::GET, "/tokens"), Role::Admin);
        assert_eq!(Role::needed(&Method::DELETE, "/tokens/t1"), Role::Admin);
        assert_eq!(Role::needed(&Method::GET, "/audit"), Role::Admin);
        assert_eq!(Role::needed(&Method::GET, "/auditx"), Role::Viewer);
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
