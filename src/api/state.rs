//! What the handlers share: the scheduler handle and the API's settings.

use std::sync::Arc;

use super::audit::Auditor;
use super::auth::Credentials;
use super::control::SchedulerInfo;
use super::guard::Origins;
use super::throttle::Throttle;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// The default URL prefix, as Flask-APScheduler's `SCHEDULER_API_PREFIX`.
pub const DEFAULT_PREFIX: &str = "/scheduler";
/// The default request-body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Time a request body may take to arrive, unless configured (`server.body_timeout`).
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What every handler shares, behind one reference count: axum clones a handler's state
/// for every request, and a dozen reference counts bumped and dropped per request were a
/// visible part of a `GET P`. Reads through to [`ApiShared`]'s fields.
#[derive(Clone)]
pub struct ApiState(Arc<ApiShared>);

impl ApiState {
    /// The handle over `shared`.
    pub fn new(shared: ApiShared) -> ApiState {
        ApiState(Arc::new(shared))
    }
}

impl std::ops::Deref for ApiState {
    type Target = ApiShared;

    fn deref(&self) -> &ApiShared {
        &self.0
    }
}

/// The scheduler handle and the API's settings.
pub struct ApiShared {
    /// The scheduler the routes drive.
    pub scheduler: Scheduler,
    /// The store, for what the API keeps beside the scheduler's jobs and runs (tokens, the
    /// audit log); jobs and runs go through the scheduler.
    pub store: Arc<dyn Store>,
    /// URL prefix of every route (`/scheduler`, `/api`): a leading `/` and no trailing `/`
    /// (empty means the root).
    pub prefix: Arc<str>,
    /// What `GET P` reports: `SCHEDULER_ALLOWED_HOSTS` and this machine's host name.
    pub info: SchedulerInfo,
    /// HTTP Basic credentials; `None` turns authentication off.
    pub auth: Option<Arc<Credentials>>,
    /// Largest request body accepted, in bytes (413 above it).
    pub body_limit: usize,
    /// Time a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// The names and origins requests may come from (`guard.rs`).
    pub origins: Arc<Origins>,
    /// Failed authentications per address (`throttle.rs`).
    pub throttle: Arc<Throttle>,
    /// Where the audit layer sends its records.
    pub audit: Auditor,
    /// The web console's path (`[console] path`); `None`: no console is served.
    pub console: Option<Arc<str>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for ApiShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiShared")
            .field("prefix", &self.prefix)
            .field("info", &self.info)
            .field("auth", &self.auth)
            .field("body_limit", &self.body_limit)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
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
