//! Job policies beyond APScheduler's options: what happens after a run fails (`retry`) and to a
//! fire time that comes while the job is running (`overlap`, `queue_limit`).
//!
//! Each is a job option like `timeout`: given in a `POST`/`PATCH` body, a `[[jobs]]` table or
//! `[job_defaults]`, read by the one parser here whoever gives it, and echoed in the job
//! object only when set. Nothing here decides a run; the scheduler reads these rules.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::notify::NotifyRule;
use super::options::{MAX_OPTION_SECONDS, OutOfRange, seconds, seconds_json as number};

/// The most attempts after the first a `retry.limit` may ask for.
pub const MAX_RETRIES: u32 = 100;

/// The most runs `queue_limit` may keep waiting.
pub const MAX_QUEUE_LIMIT: u32 = 1000;

/// `retry`: a failed or timed-out run is tried again, each attempt a run record of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts after the first, at most.
    pub limit: u32,
    /// Seconds between the first failure and the first retry.
    pub delay: f64,
    /// Each later delay is the one before times this (1 = the same delay every time).
    pub backoff: f64,
    /// No delay is longer than this, in seconds.
    pub max_delay: f64,
    /// Only runs that exited with one of these codes are retried (a timed-out run, which has
    /// no exit code, then is not); `None`: every failed or timed-out run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit_codes: Option<Vec<i32>>,
}

/// `retry.delay` when not given, in seconds.
const DEFAULT_DELAY: f64 = 10.0;
/// `retry.backoff` when not given: each delay twice the one before.
const DEFAULT_BACKOFF: f64 = 2.0;
/// `retry.max_delay` when not given: an hour.
const DEFAULT_MAX_DELAY: f64 = 3600.0;

impl RetryPolicy {
    /// The wait before attempt `failed + 1`, after attempt `failed` (1 for the first run)
    /// ended: `delay × backoff^(failed − 1)`, at most `max_delay`.
    pub fn delay_after(&self, failed: u32) -> f64 {
        let exponent = i32::try_from(failed.saturating_sub(1)).unwrap_or(i32::MAX);
        (self.delay * self.backoff.powi(exponent)).min(self.max_delay)
    }

    /// Whether a run that ended with `exit_code` (`None`: killed, timed out, never started)
    /// is one this policy retries, apart from the count.
    pub fn retries_exit(&self, exit_code: Option<i32>) -> bool {
        match &self.on_exit_codes {
            None => true,
            Some(codes) => exit_code.is_some_and(|code| codes.contains(&code)),
        }
    }

    /// The object the job JSON shows: every field, the defaults filled in.
    pub fn to_json(&self) -> Value {
        let mut object = json!({
            "limit": self.limit,
            "delay": number(self.delay),
            "backoff": number(self.backoff),
            "max_delay": number(self.max_delay),
        });
        if let (Some(codes), Some(map)) = (&self.on_exit_codes, object.as_object_mut()) {
            map.insert("on_exit_codes".to_owned(), json!(codes));
        }
        object
    }

    /// Reads a `retry` object; `null` is no retry.
    ///
    /// # Errors
    /// A message naming the field and what it takes.
    pub fn parse(value: &Value) -> Result<Option<RetryPolicy>, String> {
        let object = match value {
            Value::Null => return Ok(None),
            Value::Object(object) => object,
            _ => {
                return Err(
                    "retry must be an object such as {\"limit\": 3, \"delay\": 10} (or null for \
                     no retries)"
                        .to_owned(),
                );
            }
        };
        let known = ["limit", "delay", "backoff", "max_delay", "on_exit_codes"];
        if let Some(unknown) = object.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(format!(
                "retry has no field {unknown:?}; it takes limit, delay, backoff, max_delay and \
                 on_exit_codes"
            ));
        }
        let limit = match object.get("limit").map(Value::as_u64) {
            Some(Some(limit)) if (1..=u64::from(MAX_RETRIES)).contains(&limit) => limit as u32,
            _ => {
                return Err(format!(
                    "retry.limit must be a whole number of attempts after the first, 1 to \
                     {MAX_RETRIES}"
                ));
            }
        };
        let delay = secs_field(object, "delay", DEFAULT_DELAY)?;
        let max_delay = secs_field(object, "max_delay", DEFAULT_MAX_DELAY.max(delay))?;
        let backoff = match object.get("backoff") {
            None => DEFAULT_BACKOFF,
            Some(value) => match value.as_f64() {
                Some(backoff) if (1.0..=100.0).contains(&backoff) => backoff,
                _ => {
                    return Err(
                        "retry.backoff must be a number from 1 (the same delay each time) to 100"
                            .to_owned(),
                    );
                }
            },
        };
        if max_delay < delay {
            return Err(format!(
                "retry.max_delay ({}) must not be less than retry.delay ({})",
                number(max_delay),
                number(delay)
            ));
        }
        let on_exit_codes = match object.get("on_exit_codes") {
            None | Some(Value::Null) => None,
            Some(Value::Array(codes)) if !codes.is_empty() && codes.len() <= 256 => Some(
                codes
                    .iter()
                    .map(|code| code.as_i64().and_then(|code| i32::try_from(code).ok()))
                    .collect::<Option<Vec<i32>>>()
                    .ok_or_else(exit_codes_text)?,
            ),
            Some(_) => return Err(exit_codes_text()),
        };
        Ok(Some(RetryPolicy {
            limit,
            delay,
            backoff,
            max_delay,
            on_exit_codes,
        }))
    }
}

fn exit_codes_text() -> String {
    "retry.on_exit_codes must be a list of 1 to 256 exit codes (integers), or null for any"
        .to_owned()
}

/// A seconds field of `retry`: a number from 0 to a year, `default` when absent.
fn secs_field(object: &Map<String, Value>, key: &str, default: f64) -> Result<f64, String> {
    let Some(value) = object.get(key) else {
        return Ok(default);
    };
    match value.as_f64().map(|secs| seconds(secs, true)) {
        Some(Ok(secs)) => Ok(secs),
        Some(Err(OutOfRange::TooHigh)) => Err(format!(
            "retry.{key} must be at most {MAX_OPTION_SECONDS} seconds (a year)"
        )),
        Some(Err(OutOfRange::TooLow)) | None => Err(format!(
            "retry.{key} must be a number of seconds, 0 or more"
        )),
    }
}

/// `overlap`: what a fire time that comes while the job has `max_instances` runs in
/// progress (on this daemon) becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Recorded `skipped`: APScheduler's `max_instances` rule, and the default.
    Skip,
    /// Recorded `queued`, started when a run ends (at most `queue_limit` waiting; the rest
    /// `skipped`).
    Queue,
    /// The oldest run in progress is cancelled and the new one starts.
    Replace,
    /// Runs overlap: up to `max_instances` at once (so it needs `max_instances` above 1);
    /// beyond, as `skip`.
    Allow,
}

impl Overlap {
    /// The policy as written in JSON and the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Replace => "replace",
            Overlap::Allow => "allow",
        }
    }

    /// Reads an `overlap` value; `null` is the default (`skip`).
    ///
    /// # Errors
    /// A message listing the policies.
    pub fn parse(value: &Value) -> Result<Option<Overlap>, String> {
        let policies = [
            Overlap::Skip,
            Overlap::Queue,
            Overlap::Replace,
            Overlap::Allow,
        ];
        match value {
            Value::Null => Ok(None),
            Value::String(text) => policies
                .into_iter()
                .find(|policy| policy.as_str() == text)
                .map(Some)
                .ok_or_else(overlap_text),
            _ => Err(overlap_text()),
        }
    }
}

fn overlap_text() -> String {
    "overlap must be one of \"skip\", \"queue\", \"replace\", \"allow\" (or null for skip)"
        .to_owned()
}

/// Reads a `queue_limit`; `null` is the default (1).
///
/// # Errors
/// A message giving the range.
pub fn parse_queue_limit(value: &Value) -> Result<Option<u32>, String> {
    match value {
        Value::Null => Ok(None),
        value => value
            .as_u64()
            .filter(|limit| (1..=u64::from(MAX_QUEUE_LIMIT)).contains(limit))
            .map(|limit| Some(limit as u32))
            .ok_or_else(|| {
                format!("queue_limit must be a whole number of runs, 1 to {MAX_QUEUE_LIMIT}")
            }),
    }
}

/// A job's policies, each `None` when not set (then not shown in the job JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policies {
    /// `retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// `overlap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
    /// `queue_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_limit: Option<u32>,
    /// `notify`: the webhooks told of this job's runs, by this job's rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyRule>,
}

impl Policies {
    /// The overlap policy in force.
    pub fn overlap(&self) -> Overlap {
        self.overlap.unwrap_or(Overlap::Skip)
    }

    /// How many runs may wait with `overlap: queue`.
    pub fn queue_limit(&self) -> u32 {
        self.queue_limit.unwrap_or(1)
    }

    /// Whether the policies agree with each other and with `max_instances`: checked on the
    /// whole job, after an add or a change, so that no order of PATCHes leaves a job whose
    /// options say nothing (`allow` at one instance) or contradict (`queue_limit` without
    /// `queue`).
    ///
    /// # Errors
    /// A message saying which options disagree and what to change.
    pub fn check(&self, max_instances: u32) -> Result<(), String> {
        if self.overlap() == Overlap::Allow && max_instances < 2 {
            return Err(
                "overlap \"allow\" lets runs of the job overlap up to max_instances, which is 1: \
                 set max_instances to 2 or more"
                    .to_owned(),
            );
        }
        if self.queue_limit.is_some() && self.overlap() != Overlap::Queue {
            return Err(format!(
                "queue_limit applies only with overlap \"queue\" (the job's overlap is \"{}\")",
                self.overlap().as_str()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_backoff_up_to_max_delay() {
        let policy =
            RetryPolicy::parse(&json!({"limit": 5, "delay": 2, "backoff": 3, "max_delay": 40}))
                .unwrap()
                .unwrap();
        let delays: Vec<f64> = (1..=5).map(|n| policy.delay_after(n)).collect();
        assert_eq!(delays, [2.0, 6.0, 18.0, 40.0, 40.0]);
        assert_eq!(
            policy.to_json(),
            json!({"limit": 5, "delay": 2, "backoff": 3, "max_delay": 40})
        );
    }

    #[test]
    fn a_retry_needs_a_limit_and_sane_numbers() {
        let defaults = RetryPolicy::parse(&json!({"limit": 1})).unwrap().unwrap();
        assert_eq!(
            defaults.to_json(),
            json!({"limit": 1, "delay": 10, "backoff": 2, "max_delay": 3600})
        );
        assert_eq!(RetryPolicy::parse(&Value::Null), Ok(None));
        for (body, text) in [
            (json!({}), "retry.limit must be"),
            (json!({"limit": 0}), "retry.limit must be"),
            (json!({"limit": 101}), "retry.limit must be"),
            (
                json!({"limit": 1, "delay": -1}),
                "retry.delay must be a number",
            ),
            (
                json!({"limit": 1, "delay": 1e9}),
                "retry.delay must be at most",
            ),
            (json!({"limit": 1, "backoff": 0.5}), "retry.backoff must be"),
            (
                json!({"limit": 1, "delay": 10, "max_delay": 5}),
                "retry.max_delay (5)",
            ),
            (
                json!({"limit": 1, "on_exit_codes": []}),
                "retry.on_exit_codes",
            ),
            (
                json!({"limit": 1, "on_exit_codes": ["1"]}),
                "retry.on_exit_codes",
            ),
            (
                json!({"limit": 1, "tries": 2}),
                "retry has no field \"tries\"",
            ),
            (json!(3), "retry must be an object"),
        ] {
            let refused = RetryPolicy::parse(&body).unwrap_err();
            assert!(refused.starts_with(text), "{body}: {refused}");
        }
    }

    #[test]
    fn exit_codes_narrow_what_is_retried() {
        let any = RetryPolicy::parse(&json!({"limit": 1})).unwrap().unwrap();
        assert!(any.retries_exit(Some(3)) && any.retries_exit(None));
        let some = RetryPolicy::parse(&json!({"limit": 1, "on_exit_codes": [75, 3]}))
            .unwrap()
            .unwrap();
        assert!(some.retries_exit(Some(3)));
        assert!(!some.retries_exit(Some(1)));
        assert!(!some.retries_exit(None), "a timeout has no exit code");
    }

    #[test]
    fn overlap_policies_and_their_checks() {
        assert_eq!(Overlap::parse(&json!("queue")), Ok(Some(Overlap::Queue)));
        assert_eq!(Overlap::parse(&Value::Null), Ok(None));
        assert!(Overlap::parse(&json!("forbid")).is_err());
        assert_eq!(parse_queue_limit(&json!(3)), Ok(Some(3)));
        assert!(parse_queue_limit(&json!(0)).is_err());
        let allow = Policies {
            overlap: Some(Overlap::Allow),
            ..Policies::default()
        };
        assert!(allow.check(1).unwrap_err().contains("max_instances to 2"));
        assert_eq!(allow.check(2), Ok(()));
        let stray = Policies {
            queue_limit: Some(2),
            ..Policies::default()
        };
        assert!(
            stray
                .check(1)
                .unwrap_err()
                .contains("only with overlap \"queue\"")
        );
    }
}
