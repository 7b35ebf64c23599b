//! Request bodies within bounds, so that hostile bodies cannot grow the daemon:
//! - size: at most the body limit (1 MiB), refused from `Content-Length` before reading;
//! - time: the whole body within `server.body_timeout` (a slow sender gets 408);
//! - together: bodies being read and parsed at once hold at most [`BUDGET`] bytes (a request
//!   waits for room, and gets 503 if none comes within the body timeout);
//! - shape: before serde builds any map, one pass over the bytes refuses a body nested deeper
//!   than [`MAX_DEPTH`] or with more than [`MAX_KEYS`] keys or [`MAX_VALUES`] values, so a
//!   1 MB body cannot become a hundred thousand map entries;
//! - parsing: at most as many bodies as there are cores are parsed at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Bytes of request bodies read and parsed at once, all requests together.
pub(crate) const BUDGET: usize = 64 * 1024 * 1024;
/// The budget's unit: a permit per KiB.
const UNIT: usize = 1024;
/// Nesting levels a body may have (a job body has three or four).
pub(crate) const MAX_DEPTH: usize = 32;
/// Object keys a body may have, all levels together.
pub(crate) const MAX_KEYS: usize = 10_000;
/// Values a body may have (array elements and object members), all levels together.
pub(crate) const MAX_VALUES: usize = 100_000;

/// How bodies are read; shared by every request (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct BodyRules {
    /// Largest body, in bytes.
    pub(crate) limit: usize,
    /// Time the whole body may take to arrive.
    pub(crate) timeout: Duration,
    budget: Arc<Semaphore>,
    parsers: Arc<Semaphore>,
}

/// Room taken in the budget; given back when dropped.
#[derive(Debug)]
pub(crate) struct BodyRoom(#[allow(dead_code)] OwnedSemaphorePermit);

impl Default for BodyRules {
    fn default() -> Self {
        BodyRules::new(super::DEFAULT_BODY_LIMIT, super::DEFAULT_BODY_TIMEOUT)
    }
}

impl BodyRules {
    pub(crate) fn new(limit: usize, timeout: Duration) -> BodyRules {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        BodyRules {
            limit,
            timeout,
            budget: Arc::new(Semaphore::new(BUDGET / UNIT)),
            parsers: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Reads a body of at most `limit` bytes (`declared` is its `Content-Length`), holding
    /// room in the budget for it until the room is dropped.
    ///
    /// # Errors
    /// 413 over the limit, 408 when it does not arrive in time, 503 when the budget has no
    /// room within the body timeout, 400 when the connection fails.
    pub(crate) async fn read(
        &self,
        body: Body,
        declared: Option<u64>,
    ) -> Result<(Bytes, BodyRoom), ApiError> {
        let expected = match declared {
            Some(length) if length > self.limit as u64 => {
                return Err(ApiError::PayloadTooLarge(self.limit));
            }
            Some(length) => usize::try_from(length).unwrap_or(self.limit),
            None => self.limit,
        };
        let units = u32::try_from(expected.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        let room = tokio::time::timeout(
            self.timeout,
            Arc::clone(&self.budget).acquire_many_owned(units),
        )
        .await
        .map_err(|_| {
            ApiError::Overloaded("Too many request bodies at once; try again shortly".into())
        })?
        .map_err(|_| ApiError::Overloaded("The server is shutting down".into()))?;
        let bytes = tokio::time::timeout(self.timeout, axum::body::to_bytes(body, self.limit))
            .await
            .map_err(|_| ApiError::RequestTimeout(self.timeout.as_secs()))?
            .map_err(|error| {
                if source_is_length_limit(&error) {
                    ApiError::PayloadTooLarge(self.limit)
                } else {
                    ApiError::BadRequest(format!("Could not read the request body: {error}"))
                }
            })?;
        Ok((bytes, BodyRoom(room)))
    }

    /// Parses a body as JSON after checking its shape, with at most one parse per core at a
    /// time. An empty body gets a message that says so.
    ///
    /// # Errors
    /// 400 with what is wrong.
    pub(crate) async fn parse(&self, bytes: &[u8]) -> Result<Value, ApiError> {
        check_shape(bytes).map_err(ApiError::InvalidJson)?;
        let _parser = self.parsers.acquire().await;
        super::extract::parse_json(bytes)
    }
}

fn source_is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// One pass over the bytes, outside strings: nesting depth, keys (`:`) and values (`,` plus
/// one per non-empty container) against the limits. Malformed JSON passes: serde says what is
/// wrong with it.
fn check_shape(bytes: &[u8]) -> Result<(), String> {
    let (mut depth, mut keys, mut values) = (0usize, 0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                values += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "the body is nested more than {MAX_DEPTH} levels deep"
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' => keys += 1,
            b',' => values += 1,
            _ => {}
        }
        if keys > MAX_KEYS {
            return Err(format!("the body has more than {MAX_KEYS} keys"));
        }
        if values > MAX_VALUES {
            return Err(format!("the body has more than {MAX_VALUES} values"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{MAX_DEPTH, MAX_KEYS, MAX_VALUES, check_shape};

    #[test]
    fn a_job_body_passes() {
        let body = br#"{"id":"a,b:c","func":"task:success","args":["x.py",{"k":[1,2]}],"kwargs":{"q":"{["},"trigger":"cron","minute":"*/5"}"#;
        assert_eq!(check_shape(body), Ok(()));
        assert_eq!(
            check_shape(br#"{"s": "quote \" and \\ backslash: { [ , :"}"#),
            Ok(())
        );
    }

    #[test]
    fn deep_wide_and_long_bodies_are_refused_before_parsing() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(check_shape(deep.as_bytes()).unwrap_err().contains("nested"));
        let fine = "[".repeat(MAX_DEPTH);
        assert_eq!(check_shape(fine.as_bytes()), Ok(()));
        let keys: Vec<String> = (0..=MAX_KEYS).map(|i| format!("\"k{i}\":1")).collect();
        let wide = format!("{{{}}}", keys.join(","));
        assert!(check_shape(wide.as_bytes()).unwrap_err().contains("keys"));
        let long = format!("[{}]", vec!["1"; MAX_VALUES + 1].join(","));
        assert!(check_shape(long.as_bytes()).unwrap_err().contains("values"));
    }
}
