//! `[notify]` and its `[[notify.webhooks]]`, as the config file writes them. Read here, checked
//! by [`NotifySettings::check`] when the config loads; a webhook's URL and secret never leave
//! this process's memory (the outbox stores its name), and `Debug` hides both.

use std::fmt;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::job::NotifyEvent;
use crate::job::options::seconds;
use crate::redact::webhook_url;

/// `[notify]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Where events may be sent (an unnamed one is `webhook-1`, `webhook-2`, ... by place).
    #[serde(deserialize_with = "named")]
    pub webhooks: Vec<Webhook>,
    /// A delivery not taken (2xx) this long after its event is given up (default a day).
    #[serde(deserialize_with = "duration")]
    pub give_up_after: Duration,
    /// The wait before the first redelivery; each later one doubles, up to 10 minutes
    /// (default 2 s).
    #[serde(deserialize_with = "duration")]
    pub retry_delay: Duration,
    /// How long a receiver may take to answer (default 10 s).
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// The start of the links to runs in the messages, such as `https://tickd.example.com`
    /// (default: the server's own address).
    pub link_base: Option<String>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            webhooks: Vec::new(),
            give_up_after: Duration::from_secs(86_400),
            retry_delay: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            link_base: None,
        }
    }
}

/// One `[[notify.webhooks]]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// What jobs' `notify` and the outbox call it.
    #[serde(default)]
    pub name: String,
    /// Where the JSON is POSTed (`http://` or `https://`).
    pub url: String,
    /// The HMAC-SHA256 key the body is signed with.
    pub secret: String,
    /// The events it is sent (default: all).
    #[serde(default = "all_events", deserialize_with = "events")]
    pub events: Vec<NotifyEvent>,
    /// Only these jobs' events (default: every job's).
    #[serde(default)]
    pub jobs: Option<Vec<String>>,
    /// `failed`/`timed_out` only once this many runs in a row failed (default 1).
    #[serde(default = "one")]
    pub after_consecutive_failures: u32,
    /// `failed`/`timed_out` only when no retry follows (default true).
    #[serde(default = "yes")]
    pub final_attempt_only: bool,
}

/// The webhooks, each unnamed one named by its place (`webhook-1` for the first).
fn named<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Webhook>, D::Error> {
    let mut webhooks = Vec::<Webhook>::deserialize(d)?;
    for (i, webhook) in webhooks.iter_mut().enumerate() {
        if webhook.name.is_empty() {
            webhook.name = format!("webhook-{}", i + 1);
        }
    }
    Ok(webhooks)
}

fn all_events() -> Vec<NotifyEvent> {
    NotifyEvent::ALL.to_vec()
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn events<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NotifyEvent>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    let value = serde_json::Value::from(names);
    crate::job::notify::parse_events(&value, "events").map_err(D::Error::custom)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    seconds(secs, false)
        .map(Duration::from_secs_f64)
        .map_err(|_| D::Error::custom("expected a number of seconds, more than 0, at most a year"))
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &webhook_url(&self.url))
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .field("jobs", &self.jobs)
            .field(
                "after_consecutive_failures",
                &self.after_consecutive_failures,
            )
            .field("final_attempt_only", &self.final_attempt_only)
            .finish()
    }
}

/// A refused `[notify]` setting: its key (`webhooks.<n>.url`), the value as shown, why.
#[derive(Debug)]
pub struct Refused {
    pub key: String,
    pub value: String,
    pub message: String,
}

impl NotifySettings {
    /// The webhook called `name`.
    pub fn webhook(&self, name: &str) -> Option<&Webhook> {
        self.webhooks.iter().find(|webhook| webhook.name == name)
    }

    /// Checks what the types alone do not: names given once and readable, URLs that are
    /// http(s), secrets long enough to sign with, a sane failure count.
    ///
    /// # Errors
    /// The first refused setting.
    pub fn check(&self) -> Result<(), Refused> {
        for (i, webhook) in self.webhooks.iter().enumerate() {
            let refuse = |field: &str, value: String, message: &str| Refused {
                key: format!("webhooks.{i}.{field}"),
                value,
                message: message.to_owned(),
            };
            let name_ok = !webhook.name.is_empty()
                && webhook.name.len() <= 64
                && webhook
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !name_ok {
                return Err(refuse(
                    "name",
                    format!("{:?}", webhook.name),
                    "expected a name of 1 to 64 letters, digits, - _ .",
                ));
            }
            if self.webhooks[..i].iter().any(|w| w.name == webhook.name) {
                return Err(refuse(
                    "name",
                    format!("{:?}", webhook.name),
                    "another webhook has this name already",
                ));
            }
            let url = &webhook.url;
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            let host = url
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            if !scheme_ok
                || host.is_empty()
                || host.starts_with('/')
                || url.parse::<reqwest::Url>().is_err()
            {
                return Err(refuse(
                    "url",
                    webhook_url(url),
                    "expected an http:// or https:// URL, such as https://hooks.example.com/tickd",
                ));
            }
            if webhook.secret.len() < 16 {
                return Err(refuse(
                    "secret",
                    "<redacted>".to_owned(),
                    "expected at least 16 characters: the key the body is signed with \
                     (HMAC-SHA256)",
                ));
            }
            if !(1..=1000).contains(&webhook.after_consecutive_failures) {
                return Err(refuse(
                    "after_consecutive_failures",
                    webhook.after_consecutive_failures.to_string(),
                    "expected a whole number from 1 to 1000",
                ));
            }
        }
        if let Some(base) = &self.link_base
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            return Err(Refused {
                key: "link_base".to_owned(),
                value: format!("{base:?}"),
                message: "expected an http:// or https:// URL, such as https://tickd.example.com"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_is_shown_without_its_path_and_debug_hides_the_secret() {
        assert_eq!(
            webhook_url("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/<redacted>"
        );
        assert_eq!(
            webhook_url("http://u:p@host:8080?x"),
            "http://host:8080/<redacted>"
        );
        let webhook = Webhook {
            name: "ops".to_owned(),
            url: "https://hooks.slack.com/services/T0/B0/XXXX".to_owned(),
            secret: "0123456789abcdefXYZ".to_owned(),
            events: all_events(),
            jobs: None,
            after_consecutive_failures: 1,
            final_attempt_only: true,
        };
        let shown = format!("{webhook:?}");
        assert!(!shown.contains("XXXX") && !shown.contains("XYZ"), "{shown}");
    }
}
