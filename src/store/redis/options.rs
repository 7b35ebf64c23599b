//! The store URL: `redis://[user][:password@]host[:port][/db][?prefix=P&lock_ttl=S]`.
//!
//! `prefix` (default `tickd:`) starts every key this store writes, so several stores (or
//! tests) can share one Redis database; `lock_ttl` (seconds, default 10) is how long the
//! single-daemon lock outlives a daemon that crashed. Other query parameters (`protocol`) go to
//! the Redis client as they are.

use std::time::Duration;

use anyhow::anyhow;

use crate::store::StoreError;

/// The key prefix when the URL does not give one.
pub(super) const DEFAULT_PREFIX: &str = "tickd:";

/// The lock's time to live when the URL does not give one.
const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(10);

/// Longest `lock_ttl` accepted, in seconds.
const MAX_LOCK_TTL_SECS: u64 = 3600;

/// What a Redis store URL says.
#[derive(Debug)]
pub(super) struct Options {
    /// The connection, without this store's own query parameters.
    pub client: redis::Client,
    /// Starts every key.
    pub prefix: String,
    /// The single-daemon lock's time to live.
    pub lock_ttl: Duration,
    /// `host:port/db`, without credentials, for messages.
    pub location: String,
}

fn bad(url: &str, why: &str) -> StoreError {
    StoreError::Backend(anyhow!("bad Redis store URL {:?}: {why}", redact(url)))
}

/// The URL with any password replaced, for messages.
fn redact(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Some(parsed) => parsed.to_string(),
        None => "(unparsable)".to_owned(),
    }
}

/// Reads a `redis://` (or `rediss://`) store URL.
pub(super) fn parse(url: &str) -> Result<Options, StoreError> {
    let mut parsed = redis::parse_redis_url(url).ok_or_else(|| bad(url, "not a redis:// URL"))?;
    match parsed.scheme() {
        "redis" => {}
        "rediss" => {
            return Err(bad(
                url,
                "rediss:// (TLS) is not supported by this build of tickd; use redis:// \
                 (through a TLS tunnel such as stunnel if the link needs encryption)",
            ));
        }
        _ => return Err(bad(url, "expected redis://HOST[:PORT][/DB]")),
    }
    let mut prefix = DEFAULT_PREFIX.to_owned();
    let mut lock_ttl = DEFAULT_LOCK_TTL;
    let mut kept = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "prefix" => prefix = value.into_owned(),
            "lock_ttl" => {
                lock_ttl = value
                    .parse::<u64>()
                    .ok()
                    .filter(|secs| (1..=MAX_LOCK_TTL_SECS).contains(secs))
                    .map(Duration::from_secs)
                    .ok_or_else(|| {
                        bad(
                            url,
                            &format!(
                                "lock_ttl must be a whole number of seconds from 1 to \
                                 {MAX_LOCK_TTL_SECS}"
                            ),
                        )
                    })?;
            }
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    check_prefix(&prefix).map_err(|why| bad(url, &why))?;
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let location = format!(
        "{}:{}{}",
        parsed.host_str().unwrap_or_default(),
        parsed.port().unwrap_or(6379),
        parsed.path()
    );
    let client = redis::Client::open(parsed).map_err(|e| bad(url, &e.to_string()))?;
    Ok(Options {
        client,
        prefix,
        lock_ttl,
        location,
    })
}

/// A prefix is 1 to 100 bytes of printable ASCII without spaces or glob characters (so
/// `SCAN MATCH <prefix>*` finds this store's keys and nothing else).
fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 100
        && prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"*?[]\\".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "prefix {prefix:?} must be 1 to 100 printable ASCII characters without spaces or \
             any of * ? [ ] \\"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_prefix_and_lock_ttl_and_keeps_other_parameters() {
        let options = parse("redis://127.0.0.1:6380/2?prefix=app1:&lock_ttl=3").unwrap();
        assert_eq!(options.prefix, "app1:");
        assert_eq!(options.lock_ttl, Duration::from_secs(3));
        assert_eq!(options.location, "127.0.0.1:6380/2");
        let info = options.client.get_connection_info();
        assert_eq!(info.redis_settings().db(), 2);

        let options = parse("redis://localhost").unwrap();
        assert_eq!(options.prefix, DEFAULT_PREFIX);
        assert_eq!(options.lock_ttl, DEFAULT_LOCK_TTL);
        assert_eq!(options.location, "localhost:6379");

        assert!(parse("redis://localhost/?protocol=resp3&prefix=x:").is_ok());
    }

    #[test]
    fn refuses_bad_urls_without_showing_the_password() {
        let error = parse("redis://:secret@localhost/?lock_ttl=0").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("lock_ttl"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(parse("redis://localhost/?prefix=a*b").is_err());
        assert!(parse("redis://localhost/?prefix=").is_err());
        assert!(
            parse("rediss://localhost")
                .unwrap_err()
                .to_string()
                .contains("TLS")
        );
        assert!(parse("mysql://localhost").is_err());
    }
}
