//! Where a request comes from, checked before its credentials are looked at.
//!
//! - Its `Host` must name this server: `localhost`, a loopback address, the bound address (this
//!   machine's name too when bound to every address) or a name in `[server] host_names`, with
//!   or without the port. A page on `evil.example` whose name an attacker re-points at
//!   127.0.0.1 (DNS rebinding) sends `Host: evil.example` and is answered 421.
//! - A request that changes something (any method but GET, HEAD and OPTIONS) from a browser
//!   page of another site is answered 403 and changes nothing: its `Origin` is not this
//!   server's own (nor in `[server] cors_origins`), or its `Sec-Fetch-Site` says
//!   `cross-site`. Browsers attach a logged-in user's Basic credentials to such requests, and a
//!   `text/plain` form or `fetch` needs no preflight, so without this check any web page could
//!   create or run a job. Requests without `Origin` (curl, Postman, scripts) pass as before.

use std::collections::HashSet;
use std::net::SocketAddr;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{HOST, ORIGIN};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::roles::is_read;

/// The names and origins a request may come from.
#[derive(Debug)]
pub struct Origins {
    /// Host names and addresses, lower-case, IPv6 without brackets.
    names: HashSet<String>,
    /// The bound port: a `Host` or `Origin` with another port is not this server.
    port: u16,
    /// Other sites' origins allowed in (`[server] cors_origins`), as `scheme://host[:port]`.
    allowed: HashSet<String>,
    /// `Host` values as clients send them: every name with the port (IPv6 in brackets).
    /// Each is ours by [`Origins::is_ours`]; matched first, they spare the usual request
    /// the parse (a tenth of the gate's own work on a `GET P`).
    hosts: Box<[Box<str>]>,
}

impl Origins {
    /// The names of a server bound at `bound`, plus `names` and the allowed `origins`.
    pub fn new(bound: SocketAddr, names: &[String], origins: &[String]) -> Origins {
        let mut all: HashSet<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        all.insert(bound.ip().to_string());
        if bound.ip().is_unspecified() {
            all.insert(super::local_host_name());
        }
        all.extend(names.iter().map(|name| name.trim().to_lowercase()));
        let port = bound.port();
        let hosts = all
            .iter()
            .map(|name| {
                if name.contains(':') {
                    format!("[{name}]:{port}").into()
                } else {
                    format!("{name}:{port}").into()
                }
            })
            .collect();
        Origins {
            names: all,
            port,
            allowed: origins.iter().map(|origin| normal_origin(origin)).collect(),
            hosts,
        }
    }

    /// Whether a request's `Host` names this server.
    fn is_our_host(&self, host: &str) -> bool {
        self.hosts
            .iter()
            .any(|ours| ours.eq_ignore_ascii_case(host))
            || self.is_ours(host, None)
    }

    /// Whether a `Host` value (`name`, `name:port`, `[v6]:port`) names this server.
    /// Asked on every request, so it allocates nothing: a `Host` that reached here is
    /// visible ASCII (`HeaderValue::to_str`), whose case ASCII folding settles.
    fn is_ours(&self, host: &str, default_port: Option<u16>) -> bool {
        let (name, port) = match host.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((name, tail)) => (name, tail.strip_prefix(':')),
                None => return false,
            },
            None => match host.rsplit_once(':') {
                // A bare IPv6 address has colons but no port (a name or IPv4 address has
                // one colon at most, before its port).
                Some(_) if host.bytes().filter(|&b| b == b':').nth(1).is_some() => (host, None),
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            },
        };
        let port_ok = match port {
            Some(port) => port.parse::<u16>().is_ok_and(|port| port == self.port),
            None => default_port.is_none_or(|port| port == self.port),
        };
        let name = name.trim_end_matches('.');
        port_ok
            && self
                .names
                .iter()
                .any(|known| known.eq_ignore_ascii_case(name))
    }

    /// Whether an `Origin` is this server's own page, or one allowed in.
    fn allows(&self, origin: &str) -> bool {
        let origin = normal_origin(origin);
        if self.allowed.contains(&origin) {
            return true;
        }
        let (default_port, authority) = if let Some(rest) = origin.strip_prefix("http://") {
            (80, rest)
        } else if let Some(rest) = origin.strip_prefix("https://") {
            (443, rest)
        } else {
            return false; // `null` (a sandboxed page, a file) and other schemes
        };
        self.is_ours(authority, Some(default_port))
    }

    /// Whether `origin` is one of `[server] cors_origins`.
    pub fn is_allowed(&self, origin: &HeaderValue) -> bool {
        origin
            .to_str()
            .is_ok_and(|origin| self.allowed.contains(&normal_origin(origin)))
    }

    /// Whether any origin is allowed in (a CORS layer is needed).
    pub fn any_allowed(&self) -> bool {
        !self.allowed.is_empty()
    }
}

/// An origin as compared: lower-case, no trailing `/`.
fn normal_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_lowercase()
}

/// The refusal a request gets for where it comes from (see the module's doc), or `None`
/// when it may go on to its credentials. Called by the gate (`gate.rs`).
pub(crate) fn refusal(origins: &Origins, request: &Request) -> Option<Response> {
    let headers = request.headers();
    if let Some(host) = headers.get(HOST) {
        let ours = host.to_str().is_ok_and(|host| origins.is_our_host(host));
        if !ours {
            let shown = String::from_utf8_lossy(host.as_bytes()).into_owned();
            return Some(ApiError::MisdirectedRequest(shown).into_response());
        }
    }
    if !is_read(request.method()) {
        // An allowed `Origin` decides; without one, a browser's own word does.
        let refused = match headers.get(ORIGIN) {
            Some(origin) => !origin.to_str().is_ok_and(|origin| origins.allows(origin)),
            None => headers
                .get("sec-fetch-site")
                .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site")),
        };
        if refused {
            return Some(ApiError::CrossSite.into_response());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::Origins;

    fn origins() -> Origins {
        let bound = "127.0.0.1:7788".parse().unwrap_or_else(|_| unreachable!());
        Origins::new(
            bound,
            &["Tickd.Example".to_owned()],
            &["https://console.example/".to_owned()],
        )
    }

    #[test]
    fn hosts_are_the_servers_names_with_or_without_its_port() {
        let origins = origins();
        for host in [
            "localhost",
            "localhost:7788",
            "127.0.0.1:7788",
            "[::1]:7788",
            "[::1]",
            "::1",
            "tickd.example",
            "TICKD.EXAMPLE:7788",
            "localhost.:7788",
        ] {
            assert!(origins.is_ours(host, None), "{host}");
            assert!(origins.is_our_host(host), "{host}");
        }
        assert!(origins.hosts.contains(&"[::1]:7788".into()));
        for host in &origins.hosts {
            assert!(origins.is_ours(host, None), "{host}: not ours by the parse");
        }
        for host in [
            "evil.example",
            "evil.example:7788",
            "localhost:7789",
            "127.0.0.2:7788",
            "localhost:x",
            "[::1",
            "",
        ] {
            assert!(!origins.is_ours(host, None), "{host}");
            assert!(!origins.is_our_host(host), "{host}");
        }
    }

    #[test]
    fn origins_are_the_servers_own_pages_or_allowed_ones() {
        let origins = origins();
        for origin in [
            "http://localhost:7788",
            "http://127.0.0.1:7788",
            "http://[::1]:7788",
            "https://console.example",
            "HTTPS://Console.Example/",
        ] {
            assert!(origins.allows(origin), "{origin}");
        }
        for origin in [
            "http://evil.example",
            "http://localhost:9999",
            "http://localhost",
            "null",
            "file://",
            "https://console.example:8443",
        ] {
            assert!(!origins.allows(origin), "{origin}");
        }
    }
}
