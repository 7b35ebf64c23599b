//! What a webhook receives: a JSON body about one event, with a `text` line that Slack's and
//! Mattermost's incoming webhooks show as it is, signed so that the receiver can tell it came
//! from tickd and is not a replay.
//!
//! The signature is HMAC-SHA256, keyed with the webhook's secret, of `<timestamp>.<body>`,
//! sent as `X-Tickd-Signature: v1=<hex>` beside `X-Tickd-Timestamp: <unix seconds>`: a
//! receiver recomputes it, compares in constant time, and refuses a timestamp older than it
//! accepts (five minutes, say). Each attempt is signed afresh with its own timestamp. For
//! receivers written for GitHub's webhooks, `X-Hub-Signature-256: sha256=<hex>` carries the
//! HMAC of the body alone (whose `at` field then dates it).

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::job::{Job, NotifyEvent, RunRecord};

/// How much of each output stream a message carries: its end.
const OUTPUT_TAIL: usize = 2048;

/// What one message is about.
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    /// The event.
    pub event: NotifyEvent,
    /// The job.
    pub job: &'a Job,
    /// The run.
    pub run: &'a RunRecord,
    /// The host that sends it.
    pub node: &'a str,
    /// The run's page (the console's, or the API's record).
    pub link: &'a str,
    /// For `missed`: how many fire times the records stand for.
    pub missed: u64,
}

/// The body: the event, the job, the run with the end of its output, the node, the link,
/// and the `text` line.
pub fn body(about: &About<'_>, at: DateTime<Utc>) -> Value {
    let run = about.run;
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
    json!({
        "event": about.event.as_str(),
        "text": text(about),
        "job": {"id": about.job.id.as_str(), "name": about.job.name},
        "run": {
            "id": run.id.as_str(),
            "status": run.status.as_str(),
            "attempt": run.attempt,
            "cause": run.cause.as_str(),
            "scheduled_run_time": run.scheduled_run_time.map(|t| t.to_rfc3339()),
            "started_at": time(run.started_at),
            "finished_at": time(run.finished_at),
            "exit_code": run.exit_code,
            "reason": run.reason,
            "stdout_tail": tail(&run.stdout),
            "stderr_tail": tail(&run.stderr),
        },
        "node": about.node,
        "link": about.link,
        "at": at.to_rfc3339(),
    })
}

/// The line a chat shows: what happened to which job, and where to look.
pub fn text(about: &About<'_>) -> String {
    let job = &about.job.name;
    let run = about.run;
    let what = match about.event {
        NotifyEvent::Failed => match (run.exit_code, &run.reason) {
            (Some(code), _) => format!("failed (exit code {code})"),
            (None, Some(reason)) => format!("failed: {reason}"),
            (None, None) => "failed".to_owned(),
        },
        NotifyEvent::TimedOut => "timed out".to_owned(),
        NotifyEvent::Missed if about.missed > 1 => {
            format!("missed {} fire times", about.missed)
        }
        NotifyEvent::Missed => "missed a fire time".to_owned(),
        NotifyEvent::Recovered => "succeeded again after failing".to_owned(),
        NotifyEvent::LongRunning => "is still running".to_owned(),
    };
    let attempt = if run.attempt > 1 {
        format!(" (attempt {})", run.attempt)
    } else {
        String::new()
    };
    format!(
        "tickd: job \"{job}\" {what}{attempt} on {} - {}",
        about.node, about.link
    )
}

/// The end of an output stream, cut on a character boundary.
fn tail(text: &str) -> &str {
    &text[text.ceil_char_boundary(text.len().saturating_sub(OUTPUT_TAIL))..]
}

/// The `X-Tickd-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex(&mac.finalize().into_bytes()))
}

/// The `X-Hub-Signature-256` value for `body`: GitHub's form, the HMAC of the body alone.
pub fn body_signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// Bytes as lowercase hex digits.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The primitive against RFC 4231's test case 2 (key "Jefe"), then the construction:
    /// `v1=` and the hex of HMAC-SHA256 over `<timestamp>.<body>`.
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        assert_eq!(
            signature(b"secret", 1_700_000_000, b"{\"a\":1}"),
            format!("v1={}", hex(&mac.finalize().into_bytes()))
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"{\"a\":1}");
        assert_eq!(
            body_signature(b"secret", b"{\"a\":1}"),
            format!("sha256={}", hex(&mac.finalize().into_bytes()))
        );
    }

    #[test]
    fn tails_keep_the_end_on_a_character_boundary() {
        let long = format!("{}é{}", "a".repeat(3000), "b".repeat(2047));
        let kept = tail(&long);
        assert!(kept.len() <= OUTPUT_TAIL && kept.ends_with('b'));
        assert_eq!(tail("short"), "short");
    }
}
