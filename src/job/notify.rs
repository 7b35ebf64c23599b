//! The job option `notify`: which of the configured webhooks (`[[notify.webhooks]]`) hear of
//! this job's runs, for which events, and when a run counts as long. What is sent and how is
//! the `notify` module's; this is the option as a job carries it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::options::{MAX_OPTION_SECONDS, OutOfRange, seconds};

/// Something about a run that a webhook may be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A run ended `failed`.
    Failed,
    /// A run ended `timed_out`.
    TimedOut,
    /// A fire time was recorded `missed`.
    Missed,
    /// A run succeeded after runs that failed or timed out.
    Recovered,
    /// A run is still going after the job's `notify.expected_duration`.
    LongRunning,
}

impl NotifyEvent {
    /// Every event, in the order the docs list them.
    pub const ALL: [NotifyEvent; 5] = [
        NotifyEvent::Failed,
        NotifyEvent::TimedOut,
        NotifyEvent::Missed,
        NotifyEvent::Recovered,
        NotifyEvent::LongRunning,
    ];

    /// The event as written in JSON, the config and the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Failed => "failed",
            NotifyEvent::TimedOut => "timed_out",
            NotifyEvent::Missed => "missed",
            NotifyEvent::Recovered => "recovered",
            NotifyEvent::LongRunning => "long_running",
        }
    }

    /// Reads [`NotifyEvent::as_str`]'s form back.
    pub fn parse(text: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL
            .into_iter()
            .find(|event| event.as_str() == text)
    }

    /// Whether it is about a run that failed (what `after_consecutive_failures` and
    /// `final_attempt_only` narrow).
    pub fn is_failure(self) -> bool {
        matches!(self, NotifyEvent::Failed | NotifyEvent::TimedOut)
    }
}

/// Reads a list of event names (`what` names the field in messages).
///
/// # Errors
/// A message naming the field and the events.
pub fn parse_events(value: &Value, what: &str) -> Result<Vec<NotifyEvent>, String> {
    let refused = || {
        format!(
            "{what} must be a list of events, from failed, timed_out, missed, recovered, \
             long_running"
        )
    };
    let Value::Array(items) = value else {
        return Err(refused());
    };
    let mut events = Vec::new();
    for item in items {
        let event = item
            .as_str()
            .and_then(NotifyEvent::parse)
            .ok_or_else(refused)?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if events.is_empty() {
        return Err(refused());
    }
    Ok(events)
}

/// The most webhooks one job may name.
const MAX_WEBHOOKS: usize = 16;

/// A job's `notify`: these webhooks hear of its runs by this rule (instead of their own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyRule {
    /// Names of `[[notify.webhooks]]`.
    pub webhooks: Vec<String>,
    /// The events sent (default: all).
    pub events: Vec<NotifyEvent>,
    /// `failed` and `timed_out` are sent only once this many runs in a row failed (default 1).
    pub after_consecutive_failures: u32,
    /// `failed` and `timed_out` are sent only when no retry follows (default true).
    pub final_attempt_only: bool,
    /// Seconds after which a run still going is `long_running` (none: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_duration: Option<f64>,
}

impl NotifyRule {
    /// The object the job JSON shows: every field, the defaults filled in.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("webhooks".to_owned(), json!(self.webhooks));
        object.insert(
            "events".to_owned(),
            json!(self.events.iter().map(|e| e.as_str()).collect::<Vec<_>>()),
        );
        object.insert(
            "after_consecutive_failures".to_owned(),
            json!(self.after_consecutive_failures),
        );
        object.insert(
            "final_attempt_only".to_owned(),
            json!(self.final_attempt_only),
        );
        if let Some(secs) = self.expected_duration {
            let shown = if secs.fract() == 0.0 {
                json!(secs as u64)
            } else {
                json!(secs)
            };
            object.insert("expected_duration".to_owned(), shown);
        }
        Value::Object(object)
    }

    /// Reads a `notify` object; `null` is none. Whether the webhooks it names exist is the
    /// scheduler's check, which knows the config.
    ///
    /// # Errors
    /// A message naming the field and what it takes.
    pub fn parse(value: &Value) -> Result<Option<NotifyRule>, String> {
        let object = match value {
            Value::Null => return Ok(None),
            Value::Object(object) => object,
            _ => {
                return Err(
                    "notify must be an object such as {\"webhooks\": [\"ops\"]} (or \
                            null for none)"
                        .to_owned(),
                );
            }
        };
        let known = [
            "webhooks",
            "events",
            "after_consecutive_failures",
            "final_attempt_only",
            "expected_duration",
        ];
        if let Some(unknown) = object.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(format!(
                "notify has no field {unknown:?}; it takes webhooks, events, \
                 after_consecutive_failures, final_attempt_only and expected_duration"
            ));
        }
        let names_text = || {
            format!(
                "notify.webhooks must be a list of 1 to {MAX_WEBHOOKS} names of \
                 [[notify.webhooks]]"
            )
        };
        let webhooks: Vec<String> = match object.get("webhooks") {
            Some(Value::Array(names)) if !names.is_empty() && names.len() <= MAX_WEBHOOKS => names
                .iter()
                .map(|name| name.as_str().filter(|n| !n.is_empty()).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(names_text)?,
            _ => return Err(names_text()),
        };
        let events = match object.get("events") {
            None | Some(Value::Null) => NotifyEvent::ALL.to_vec(),
            Some(value) => parse_events(value, "notify.events")?,
        };
        let after_consecutive_failures = match object.get("after_consecutive_failures") {
            None | Some(Value::Null) => 1,
            Some(value) => value
                .as_u64()
                .filter(|n| (1..=1000).contains(n))
                .map(|n| n as u32)
                .ok_or_else(|| {
                    "notify.after_consecutive_failures must be a whole number from 1 to 1000"
                        .to_owned()
                })?,
        };
        let final_attempt_only = match object.get("final_attempt_only") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => return Err("notify.final_attempt_only must be true or false".to_owned()),
        };
        let expected_duration = match object.get("expected_duration") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_f64().map(|secs| seconds(secs, false)) {
                Some(Ok(secs)) => Some(secs),
                Some(Err(OutOfRange::TooHigh)) => {
                    return Err(format!(
                        "notify.expected_duration must be at most {MAX_OPTION_SECONDS} \
                         seconds (a year)"
                    ));
                }
                _ => {
                    return Err(
                        "notify.expected_duration must be a positive number of seconds".to_owned(),
                    );
                }
            },
        };
        Ok(Some(NotifyRule {
            webhooks,
            events,
            after_consecutive_failures,
            final_attempt_only,
            expected_duration,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_gets_its_defaults_and_refuses_what_it_cannot_mean() {
        let rule = NotifyRule::parse(&json!({"webhooks": ["ops"]}))
            .unwrap()
            .unwrap();
        assert_eq!(
            rule.to_json(),
            json!({"webhooks": ["ops"], "events": ["failed", "timed_out", "missed", "recovered",
                   "long_running"], "after_consecutive_failures": 1, "final_attempt_only": true})
        );
        let rule = NotifyRule::parse(&json!({"webhooks": ["ops"], "events": ["failed"],
            "expected_duration": 2.5, "final_attempt_only": false}))
        .unwrap()
        .unwrap();
        assert_eq!(rule.events, [NotifyEvent::Failed]);
        assert_eq!(rule.expected_duration, Some(2.5));
        for (body, text) in [
            (json!({}), "notify.webhooks must be"),
            (json!({"webhooks": []}), "notify.webhooks must be"),
            (
                json!({"webhooks": ["ops"], "events": ["exploded"]}),
                "notify.events must be",
            ),
            (
                json!({"webhooks": ["ops"], "events": []}),
                "notify.events must be",
            ),
            (
                json!({"webhooks": ["ops"], "after_consecutive_failures": 0}),
                "notify.after_",
            ),
            (
                json!({"webhooks": ["ops"], "expected_duration": 0}),
                "notify.expected_duration",
            ),
            (
                json!({"webhooks": ["ops"], "url": "x"}),
                "notify has no field \"url\"",
            ),
            (json!(["ops"]), "notify must be an object"),
        ] {
            let refused = NotifyRule::parse(&body).unwrap_err();
            assert!(refused.starts_with(text), "{body}: {refused}");
        }
    }
}
