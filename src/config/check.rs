//! Checks that one value's type cannot express: an address, a URL's scheme, a prefix, the
//! users' credentials. Each refusal names the key, its value and what is allowed.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{Config, ConfigError, Origins};
use crate::redact;

/// The store URL schemes tickd opens.
const STORE_SCHEMES: [&str; 7] = [
    "sqlite",
    "mysql",
    "mariadb",
    "postgres",
    "postgresql",
    "redis",
    "rediss",
];

/// Checks the settings that need more than their own type.
///
/// # Errors
/// The first refused setting.
pub(super) fn settings(config: &Config, origins: &Origins) -> Result<(), ConfigError> {
    let refuse = |section: &str, key: &str, value: String, message: String| {
        ConfigError::invalid(
            origins.of(&[section.to_owned(), key.to_owned()]),
            format!("[{section}] {key}"),
            Some(value),
            message,
        )
    };
    let host = &config.server.host;
    if !is_host(host) {
        return Err(refuse(
            "server",
            "host",
            quoted(host),
            "expected an IP address (\"127.0.0.1\", \"0.0.0.0\", \"::1\") or a host name such \
             as \"localhost\""
                .to_owned(),
        ));
    }
    let prefix = &config.api.prefix;
    if !prefix.starts_with('/') || !prefix.chars().all(is_path_char) || prefix.contains("//") {
        return Err(refuse(
            "api",
            "prefix",
            quoted(prefix),
            "expected a URL path that starts with /, such as \"/scheduler\" (letters, digits, \
             - _ . ~ and /)"
                .to_owned(),
        ));
    }
    console(config, &refuse)?;
    if let Err(refused) = config.notify.check() {
        return Err(refuse(
            "notify",
            &refused.key,
            refused.value,
            refused.message,
        ));
    }
    let defaults = &config.job_defaults;
    if let Err(message) = defaults.policies.check(defaults.max_instances) {
        let overlap = defaults.policies.overlap();
        let (key, value) = if overlap == crate::job::Overlap::Allow {
            ("overlap", quoted(overlap.as_str()))
        } else {
            let limit = defaults.policies.queue_limit.unwrap_or_default();
            ("queue_limit", limit.to_string())
        };
        return Err(refuse("job_defaults", key, value, message));
    }
    if let Some(rule) = &defaults.policies.notify
        && let Some(name) = rule
            .webhooks
            .iter()
            .find(|name| config.notify.webhook(name).is_none())
    {
        return Err(refuse(
            "job_defaults",
            "notify",
            format!("{{ webhooks = [{name:?}] }}"),
            format!("no [[notify.webhooks]] is called {name:?}"),
        ));
    }
    let metrics = &config.metrics.path;
    if config.metrics.enabled
        && (!metrics.starts_with('/')
            || metrics.len() < 2
            || metrics.ends_with('/')
            || !metrics.chars().all(is_path_char)
            || metrics.contains("//"))
    {
        return Err(refuse(
            "metrics",
            "path",
            quoted(metrics),
            "expected a URL path of its own that starts with /, such as \"/metrics\" (letters, \
             digits, - _ . ~ and /, no trailing /)"
                .to_owned(),
        ));
    }
    if config.metrics.enabled && config.api.enabled && clashes_with_api(metrics, prefix) {
        return Err(refuse(
            "metrics",
            "path",
            quoted(metrics),
            format!(
                "this path is one of the API's (under [api] prefix {prefix:?}); choose another, \
                 such as \"/metrics\""
            ),
        ));
    }
    if config.metrics.enabled
        && [&config.health.healthz_path, &config.health.readyz_path].contains(&metrics)
    {
        return Err(refuse(
            "metrics",
            "path",
            quoted(metrics),
            "this path is a health probe's ([health] healthz_path or readyz_path); choose \
             another, such as \"/metrics\""
                .to_owned(),
        ));
    }
    if let Some(console) = config.console_path()
        && config.metrics.enabled
        && (metrics == console.trim_end_matches('/')
            || metrics.starts_with(&format!("{}/assets/", console.trim_end_matches('/'))))
    {
        return Err(refuse(
            "metrics",
            "path",
            quoted(metrics),
            format!(
                "this path is the web console's ([console] path {console:?}); choose another, \
                 such as \"/metrics\""
            ),
        ));
    }
    let url = &config.store.url;
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if !scheme.is_some_and(|s| STORE_SCHEMES.contains(&s.to_ascii_lowercase().as_str())) {
        return Err(refuse(
            "store",
            "url",
            quoted(&redact::url(url)),
            "expected sqlite://PATH, mysql://USER@HOST:PORT/DB (or mariadb://), \
             postgres://USER@HOST:PORT/DB (or postgresql://) or redis://HOST:PORT/DB, with \
             :PASSWORD after USER where one is needed"
                .to_owned(),
        ));
    }
    for extension in config.executor.interpreters.keys() {
        if !extension
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(refuse(
                "executor",
                "interpreters",
                quoted(extension),
                "expected file extensions without the dot as keys, e.g. { sh = \"/bin/sh\" }"
                    .to_owned(),
            ));
        }
    }
    users(config, origins)
}

/// `[console] path`: a URL path, and (when both are served) outside the API's prefix: the
/// console's page and its `assets/` folder must not be routes of the API, nor the API's
/// routes pages of the console.
fn console(
    config: &Config,
    refuse: &impl Fn(&str, &str, String, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let path = &config.console.path;
    if !path.starts_with('/') || !path.chars().all(is_path_char) || path.contains("//") {
        return Err(refuse(
            "console",
            "path",
            quoted(path),
            "expected a URL path that starts with /, such as \"/\" or \"/console\" (letters, \
             digits, - _ . ~ and /)"
                .to_owned(),
        ));
    }
    if !(config.console.enabled && config.api.enabled && config.console.configured) {
        return Ok(());
    }
    if let Some(why) = console_collision(path, &config.api.prefix) {
        return Err(refuse(
            "console",
            "path",
            quoted(path),
            format!(
                "collides with [api] prefix = {}: {why}; choose a console path outside the \
                 API's (the default \"/\" with the default prefix \"/scheduler\" works), or \
                 set [console] enabled = false",
                quoted(&config.api.prefix)
            ),
        ));
    }
    Ok(())
}

/// Why the console at `path` and the API under `prefix` would answer the same URLs, if they
/// would. The console holds its path and `<path>/assets/...`; the API holds its prefix and
/// everything below it (the root prefix: every path).
pub(crate) fn console_collision(path: &str, prefix: &str) -> Option<&'static str> {
    let console = crate::api::normalize_path(path);
    let api = crate::api::normalize_path(prefix);
    let under = |path: &str, area: &str| {
        path.strip_prefix(area)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if console == api {
        Some("both are at the same path")
    } else if under(&console, &api) {
        Some("the console would be inside the API's paths")
    } else if under(&api, &format!("{console}/assets")) {
        Some("the API would be inside the console's assets/ folder")
    } else {
        None
    }
}

/// `[auth]`: enabled needs a user; each user has a name without `:` (Basic auth splits at the
/// first one), a unique name, and exactly one of a password or an argon2 hash.
fn users(config: &Config, origins: &Origins) -> Result<(), ConfigError> {
    let origin = origins.of(&["auth".to_owned(), "users".to_owned()]);
    let refuse = |key: String, message: &str| {
        ConfigError::invalid(origin.clone(), key, None, message.to_owned())
    };
    let auth = &config.auth;
    if auth.enabled && auth.users.is_empty() {
        return Err(refuse(
            "[auth] enabled".to_owned(),
            "true needs at least one [[auth.users]] entry with a username and a password (or \
             password_hash); or set enabled = false",
        ));
    }
    let mut names = BTreeSet::new();
    for (i, user) in auth.users.iter().enumerate() {
        let key = format!("[[auth.users]] #{} ({:?})", i + 1, user.username);
        if user.username.is_empty() {
            return Err(refuse(
                format!("[[auth.users]] #{}", i + 1),
                "needs a username",
            ));
        }
        if user.username.contains(':') {
            return Err(refuse(key, "a username cannot contain ':'"));
        }
        if !names.insert(user.username.as_str()) {
            return Err(refuse(key, "this username is given twice"));
        }
        match (&user.password, &user.password_hash) {
            (Some(_), None) => {}
            (None, Some(hash)) => {
                if argon2::PasswordHash::new(hash).is_err() || !hash.starts_with("$argon2") {
                    return Err(refuse(
                        format!("{key} password_hash"),
                        "expected an argon2 hash in PHC form, \"$argon2id$v=19$m=...\" (e.g. \
                         from `argon2` or Python's argon2-cffi)",
                    ));
                }
            }
            _ => {
                return Err(refuse(key, "give exactly one of password or password_hash"));
            }
        }
    }
    Ok(())
}

/// An IP address, or a host name of letters, digits, `-` and `.`.
fn is_host(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
            }))
}

/// The first segments of the API's routes under its prefix.
const API_SEGMENTS: [&str; 10] = [
    "jobs", "pause", "resume", "start", "shutdown", "preview", "runs", "cluster", "tokens", "audit",
];

/// Whether `path` is the API's prefix or one of its routes' paths.
fn clashes_with_api(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    let rest = if prefix.is_empty() {
        Some(path)
    } else if path == prefix {
        return true;
    } else {
        path.strip_prefix(prefix)
            .filter(|rest| rest.starts_with('/'))
    };
    rest.and_then(|rest| rest.trim_start_matches('/').split('/').next())
        .is_some_and(|first| first.is_empty() || API_SEGMENTS.contains(&first))
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~')
}

fn quoted(text: &str) -> String {
    format!("{text:?}")
}
