//! The job option `notify`: which webhooks hear of this job's runs — configured ones
//! (`[[notify.webhooks]]`) by name, and a target of the job's own (`url`, `secret`) — for
//! which events, and when a run counts as long. What is sent and how is the `notify`
//! module's; this is the option as a job carries it. The job object never shows the own
//! target's secret, nor its URL beyond the host (a chat's webhook URL is its credential).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::options::{MAX_OPTION_SECONDS, OutOfRange, seconds, seconds_json};

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
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// A target of the job's own: where the JSON is POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The own target's signing key (none: its deliveries are not signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
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
        if let Some(url) = &self.url {
            object.insert("url".to_owned(), json!(crate::redact::webhook_url(url)));
        }
        if self.secret.is_some() {
            object.insert("secret".to_owned(), json!(crate::redact::HIDDEN));
        }
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
            object.insert("expected_duration".to_owned(), seconds_json(secs));
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
            "url",
            "secret",
            "events",
            "after_consecutive_failures",
            "final_attempt_only",
            "expected_duration",
        ];
        if let Some(unknown) = object.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(format!(
                "notify has no field {unknown:?}; it takes webhooks, url, secret, events, \
                 after_consecutive_failures, final_attempt_only and expected_duration"
            ));
        }
        let names_text = || {
            format!(
                "notify.webhooks must be a list of up to {MAX_WEBHOOKS} names of \
                 [[notify.webhooks]]"
            )
        };
        let webhooks: Vec<String> = match object.get("webhooks") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(names)) if names.len() <= MAX_WEBHOOKS => names
                .iter()
                .map(|name| name.as_str().filter(|n| !n.is_empty()).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(names_text)?,
            _ => return Err(names_text()),
        };
        let url = match object.get("url") {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) if target_url(url) => Some(url.clone()),
            Some(_) => {
                return Err("notify.url must be an http:// or https:// URL, such as \
                            https://hooks.example.com/tickd (the job shows its host only: send \
                            the URL itself, not what the job shows)"
                    .to_owned());
            }
        };
        let secret = match object.get("secret") {
            None | Some(Value::Null) => None,
            Some(Value::String(secret))
                if secret.chars().count() >= 16 && !secret.contains(crate::redact::HIDDEN) =>
            {
                Some(secret.clone())
            }
            Some(_) => {
                return Err(
                    "notify.secret must be a string of at least 16 characters: the key \
                            the body is signed with (the job never shows it: send it itself)"
                        .to_owned(),
                );
            }
        };
        if secret.is_some() && url.is_none() {
            return Err(
                "notify.secret goes with notify.url (a configured webhook has its own \
                        secret)"
                    .to_owned(),
            );
        }
        if webhooks.is_empty() && url.is_none() {
            return Err(
                "notify needs webhooks (names of [[notify.webhooks]]) or a url of its \
                        own: {\"webhooks\": [\"ops\"]} or {\"url\": \
                        \"https://hooks.example.com/tickd\", \"secret\": \"...\"}"
                    .to_owned(),
            );
        }
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
            url,
            secret,
            events,
            after_consecutive_failures,
            final_attempt_only,
            expected_duration,
        }))
    }
}

/// Whether `url` is an http(s) URL with a host, and not the redacted form the job shows.
fn target_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !url.contains(crate::redact::HIDDEN)
        && !url.chars().any(char::is_whitespace)
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
        let own = NotifyRule::parse(&json!({"url": "https://hooks.example.com/T/B/XXXX",
            "secret": "0123456789abcdef-secret"}))
        .unwrap()
        .unwrap();
        let shown = own.to_json();
        assert_eq!(shown["url"], "https://hooks.example.com/<redacted>");
        assert_eq!(shown["secret"], "<redacted>");
        assert_eq!(shown["webhooks"], json!([]));
        for (body, text) in [
            (json!({}), "notify needs webhooks"),
            (json!({"webhooks": []}), "notify needs webhooks"),
            (json!({"url": "ftp://x"}), "notify.url must be"),
            (
                json!({"url": "https://h.example/<redacted>"}),
                "notify.url must be",
            ),
            (
                json!({"url": "https://h.example/x", "secret": "short"}),
                "notify.secret must be",
            ),
            (
                json!({"webhooks": ["ops"], "secret": "0123456789abcdef"}),
                "notify.secret goes",
            ),
            (json!({"webhooks": "ops"}), "notify.webhooks must be"),
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
                json!({"webhooks": ["ops"], "to": "x"}),
                "notify has no field \"to\"",
            ),
            (json!(["ops"]), "notify must be an object"),
        ] {
            let refused = NotifyRule::parse(&body).unwrap_err();
            assert!(refused.starts_with(text), "{body}: {refused}");
        }
    }
}
