//! `[health]`: where the liveness and readiness probes answer, and whether they ask for
//! credentials. They reveal nothing (a status, the version, the age of the scheduler's last
//! pass), so they are open by default, for systemd, load balancers and Kubernetes probes.

use serde::Deserialize;

use super::{Config, ConfigError, Origins, value};

/// `[health]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// `GET` here answers 200 while the process serves (liveness).
    #[serde(deserialize_with = "value::text")]
    pub healthz_path: String,
    /// `GET` here answers 200 when the store answers and the scheduler's loop turns
    /// (readiness), else 503 naming the failing check.
    #[serde(deserialize_with = "value::text")]
    pub readyz_path: String,
    /// Ask the API's credentials (`[auth]`) on both; off by default.
    #[serde(deserialize_with = "value::boolean")]
    pub require_auth: bool,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            healthz_path: "/healthz".to_owned(),
            readyz_path: "/readyz".to_owned(),
            require_auth: false,
        }
    }
}

/// The first segments of the API's routes: a probe's path may not take one when the API's
/// prefix is the root.
const API_SEGMENTS: [&str; 10] = [
    "pause", "resume", "start", "shutdown", "jobs", "runs", "preview", "cluster", "tokens", "audit",
];

/// Each path is a URL path of its own, outside the API's prefix.
///
/// # Errors
/// The first refused path, naming its key.
pub(super) fn check(config: &Config, origins: &Origins) -> Result<(), ConfigError> {
    let health = &config.health;
    let prefix = config.api.prefix.trim_end_matches('/');
    for (key, path) in [
        ("healthz_path", &health.healthz_path),
        ("readyz_path", &health.readyz_path),
    ] {
        let refuse = |message: String| {
            ConfigError::invalid(
                origins.of(&["health".to_owned(), key.to_owned()]),
                format!("[health] {key}"),
                Some(format!("{path:?}")),
                message,
            )
        };
        let well_formed = path.len() > 1
            && path.starts_with('/')
            && !path.ends_with('/')
            && !path.contains("//")
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~'));
        if !well_formed {
            return Err(refuse(
                "expected a URL path such as \"/healthz\": a leading /, no trailing /, letters, \
                 digits, - _ . ~ and /"
                    .to_owned(),
            ));
        }
        let first = path[1..].split('/').next().unwrap_or("");
        let under_api = if prefix.is_empty() {
            API_SEGMENTS.contains(&first)
        } else {
            path == prefix || path.starts_with(&format!("{prefix}/"))
        };
        if under_api {
            return Err(refuse(format!(
                "the probes are served outside the API's prefix ([api] prefix = {:?}); choose \
                 a path that is not one of its routes",
                config.api.prefix
            )));
        }
    }
    if health.healthz_path == health.readyz_path {
        return Err(ConfigError::invalid(
            origins.of(&["health".to_owned(), "readyz_path".to_owned()]),
            "[health] readyz_path".to_owned(),
            Some(format!("{:?}", health.readyz_path)),
            "must differ from [health] healthz_path".to_owned(),
        ));
    }
    Ok(())
}
