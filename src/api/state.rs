//! What the handlers share: the scheduler handle and the API's settings.

use std::sync::Arc;

use super::auth::Credentials;
use crate::scheduler::Scheduler;

/// The default URL prefix, as Flask-APScheduler's `SCHEDULER_API_PREFIX`.
pub const DEFAULT_PREFIX: &str = "/scheduler";
/// The default request-body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Time a request body may take to arrive, unless configured (`server.body_timeout`).
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Shared by every handler; cloning is a few reference-count bumps.
#[derive(Clone)]
pub struct ApiState {
    /// The scheduler the routes drive.
    pub scheduler: Scheduler,
    /// URL prefix of every route (`/scheduler`, `/api`); normalised by [`ApiState::with_prefix`]
    /// to a leading `/` and no trailing `/` (empty means the root).
    pub prefix: Arc<str>,
    /// Reported by `GET P` (`SCHEDULER_ALLOWED_HOSTS`).
    pub allowed_hosts: Arc<[String]>,
    /// Reported by `GET P`: this machine's host name, lower-case.
    pub current_host: Arc<str>,
    /// HTTP Basic credentials; `None` turns authentication off.
    pub auth: Option<Arc<Credentials>>,
    /// Largest request body accepted, in bytes (413 above it).
    pub body_limit: usize,
    /// Time a request body may take to arrive.
    pub body_timeout: std::time::Duration,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("prefix", &self.prefix)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("current_host", &self.current_host)
            .field("auth", &self.auth)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// The defaults: prefix `/scheduler`, `allowed_hosts = ["*"]`, this machine's host name,
    /// no authentication, a 1 MiB body limit.
    pub fn new(scheduler: Scheduler) -> Self {
        Self {
            scheduler,
            prefix: DEFAULT_PREFIX.into(),
            allowed_hosts: Arc::new(["*".to_owned()]),
            current_host: local_host_name().into(),
            auth: None,
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }

    /// Sets the URL prefix. `scheduler`, `/scheduler` and `/scheduler/` are the same prefix;
    /// `""` and `/` mount the API at the root.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = normalize_prefix(prefix).into();
        self
    }

    /// Sets the host names reported by `GET P`.
    #[must_use]
    pub fn with_allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts = hosts.into();
        self
    }

    /// Overrides the host name reported by `GET P` (it is lower-cased).
    #[must_use]
    pub fn with_current_host(mut self, host: &str) -> Self {
        self.current_host = host.to_lowercase().into();
        self
    }

    /// Turns HTTP Basic authentication on (`Some`) or off (`None`).
    #[must_use]
    pub fn with_auth(mut self, credentials: Option<Credentials>) -> Self {
        self.auth = credentials.map(Arc::new);
        self
    }

    /// Sets the largest request body accepted, in bytes.
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

/// `socket.gethostname().lower()`; `localhost` if the name cannot be read.
pub fn local_host_name() -> String {
    match hostname::get() {
        Ok(name) => name.to_string_lossy().to_lowercase(),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the host name; reporting \"localhost\"");
            "localhost".to_owned()
        }
    }
}

/// A leading `/`, no trailing `/`; the root is `""`.
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        for (given, normal) in [
            ("/scheduler", "/scheduler"),
            ("scheduler/", "/scheduler"),
            ("/api/v1/", "/api/v1"),
            ("/", ""),
            ("", ""),
        ] {
            assert_eq!(normalize_prefix(given), normal, "{given:?}");
        }
    }

    #[test]
    fn host_name_is_lower_case_and_not_empty() {
        let host = local_host_name();
        assert!(!host.is_empty());
        assert_eq!(host, host.to_lowercase());
    }
}
