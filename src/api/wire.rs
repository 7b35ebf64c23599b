//! The wire format: a [`Job`] as the JSON Flask-APScheduler's `utils.job_to_dict` shows
//! (reference §2), the scheduler-info object, the error envelope, and the one function that
//! encodes a response body.
//!
//! Keys are sorted, as Flask-APScheduler 1.13 sends them (`sort_keys=True`); nested objects in
//! `args` and `kwargs` are sorted too, as Python's `json.dumps` does.

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use chrono::{DateTime, Utc};

use super::view::{self, sort_keys};
use crate::job::{Job, RunRecord};
use crate::scheduler::JobsListing;
use crate::trigger::isoformat;

/// `true` writes non-ASCII characters as `\uXXXX` escapes, byte for byte as Flask-APScheduler
/// (`ensure_ascii=True`); `false` writes raw UTF-8. Both decode to the same JSON (CONTRACT §1:
/// JSON equality is what counts), so tickd sends UTF-8.
const ENSURE_ASCII: bool = false;

/// The job object (CONTRACT §1): see [`view::object`].
pub fn job_to_json(job: &Job) -> Value {
    view::object(job)
}

/// A run record (CONTRACT §6): times in isoformat (`started_at`/`finished_at` in UTC, the
/// fire time with the offset the job showed), statuses and causes as snake_case words; a
/// function job's `result` (its return value) only where there is one.
pub fn run_to_json(run: &RunRecord) -> Value {
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or(Value::Null, |t| Value::String(isoformat(&t.fixed_offset())))
    };
    let mut object = json!({
        "id": run.id,
        "job_id": run.job_id,
        "scheduled_run_time": run.scheduled_run_time.as_ref().map(isoformat),
        "started_at": time(run.started_at),
        "finished_at": time(run.finished_at),
        "status": run.status.as_str(),
        "reason": run.reason,
        "exit_code": run.exit_code,
        "stdout": run.stdout,
        "stderr": run.stderr,
        "stdout_truncated": run.stdout_truncated,
        "stderr_truncated": run.stderr_truncated,
        "cause": run.cause.as_str(),
        "node": run.node,
        "attempt": run.attempt,
    });
    if let Value::Object(fields) = &mut object {
        if let Some(result) = &run.result {
            // Stored as JSON text by the executor; text that does not parse is shown as text.
            let value =
                serde_json::from_str(result).unwrap_or_else(|_| Value::String(result.clone()));
            fields.insert("result".to_owned(), value);
        }
        if let Some(retry_of) = &run.retry_of {
            fields.insert("retry_of".to_owned(), json!(retry_of));
        }
        if let Some(due) = run.due_at {
            fields.insert("due_at".to_owned(), time(Some(due)));
        }
    }
    sort_keys(object)
}

/// `GET P`: exactly `allowed_hosts`, `current_host` and `running` (reference §1.3.1).
pub fn info_to_json(allowed_hosts: &[String], current_host: &str, running: bool) -> Value {
    json!({
        "allowed_hosts": allowed_hosts,
        "current_host": current_host,
        "running": running,
    })
}

/// The error envelope: `{"error_message": "<text>"}` and nothing else.
pub(crate) fn error_body(message: &str) -> JsonBody {
    JsonBody(json!({ "error_message": message }))
}

/// `{"error_message": "...", "run_id": "..."}`: an error that left a run record.
pub(crate) fn error_body_with_run(message: &str, run_id: &str) -> JsonBody {
    JsonBody(json!({ "error_message": message, "run_id": run_id }))
}

/// JSON text rendered ahead of time (the scheduler's job views): sent as it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonText(pub(crate) String);

impl IntoResponse for JsonText {
    fn into_response(self) -> Response {
        json_response(as_sent(self.0))
    }
}

/// `body`, JSON text ready to send, as a 200 with `Content-Type: application/json` (no
/// charset parameter, as the reference sends it).
pub(crate) fn json_response(body: impl Into<Body>) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body.into(),
    )
        .into_response()
}

/// JSON text as the API sends it: ASCII only, as Flask's `jsonify` writes it.
fn as_sent(text: String) -> String {
    if ENSURE_ASCII {
        escape_non_ascii(&text)
    } else {
        text
    }
}

/// `GET P/jobs`'s body as the scheduler gives it: whole, or streamed as the store is read.
#[derive(Debug)]
pub(crate) struct JsonListing(pub(crate) JobsListing);

impl IntoResponse for JsonListing {
    fn into_response(self) -> Response {
        let body = match self.0 {
            JobsListing::Whole(body) if ENSURE_ASCII => {
                return JsonText(String::from_utf8_lossy(&body).into_owned()).into_response();
            }
            JobsListing::Whole(body) => Body::from(body),
            JobsListing::Streamed { first, rest } => {
                let rest = futures_util::stream::unfold(rest, |mut rest| async move {
                    rest.recv().await.map(|piece| (piece, rest))
                });
                let pieces = futures_util::stream::once(std::future::ready(Ok(first))).chain(rest);
                Body::from_stream(pieces.map_ok(|piece| {
                    if ENSURE_ASCII {
                        escape_non_ascii(&String::from_utf8_lossy(&piece)).into()
                    } else {
                        piece
                    }
                }))
            }
        };
        json_response(body)
    }
}

/// A JSON response body: `Content-Type: application/json` (no charset parameter, as the
/// reference sends it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonBody(pub(crate) Value);

/// `value` as the API writes JSON: compact, and ASCII only as Flask's `jsonify` writes it.
pub(crate) fn encode(value: &Value) -> serde_json::Result<String> {
    serde_json::to_string(value).map(as_sent)
}

impl IntoResponse for JsonBody {
    fn into_response(self) -> Response {
        match encode(&self.0) {
            Ok(text) => json_response(text),
            // A `Value` always serialises; should that ever change, answer 500 without the
            // cause and log it, rather than panic.
            Err(err) => {
                tracing::error!(error = %err, "could not encode a JSON response");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    r#"{"error_message":"Internal server error"}"#,
                )
                    .into_response()
            }
        }
    }
}

/// Python's `ensure_ascii`: every non-ASCII character becomes `\uXXXX` (a surrogate pair
/// above U+FFFF). Only valid inside serialised JSON, where such characters can only occur in
/// strings.
fn escape_non_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::Trigger;
    use chrono::{DateTime, Utc};
    use serde_json::Map;
    use std::collections::BTreeSet;

    fn now() -> DateTime<Utc> {
        "2026-11-25T07:26:32.369556Z".parse().unwrap()
    }

    /// A job as the scheduler would hold it once started, with a trigger built from `args`.
    fn job(kind: &str, args: Value) -> Job {
        let args = args.as_object().unwrap().clone();
        let trigger = Trigger::from_args(kind, &args, chrono_tz::UTC, now()).unwrap();
        let next_run_time = trigger.next_fire_time(None, now());
        Job {
            id: "job1".into(),
            name: "job1".into(),
            func: "task:success".into(),
            args: vec![json!("workspace/test.py")],
            kwargs: Map::new(),
            trigger,
            misfire_grace_time: Some(1),
            coalesce: true,
            max_instances: 1,
            next_run_time,
            timeout: None,
            policies: crate::job::Policies::default(),
            pending: false,
            version: 0,
        }
    }

    fn keys(value: &Value) -> BTreeSet<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn key_set(names: &[&'static str]) -> BTreeSet<&'static str> {
        names.iter().copied().collect()
    }

    const JOB_KEYS: [&str; 9] = [
        "args",
        "func",
        "id",
        "kwargs",
        "max_instances",
        "misfire_grace_time",
        "name",
        "next_run_time",
        "trigger",
    ];

    const NEVER_SHOWN: [&str; 6] = [
        "coalesce",
        "executor",
        "jobstore",
        "timezone",
        "jitter",
        "replace_existing",
    ];

    #[test]
    fn interval_job_has_exactly_the_reference_keys() {
        // check 7
        let value = job_to_json(&job("interval", json!({"minutes": 10})));
        let mut expected = key_set(&JOB_KEYS);
        expected.extend(["minutes", "start_date"]);
        assert_eq!(keys(&value), expected);
        assert_eq!(value["trigger"], "interval");
        assert_eq!(value["minutes"], 10);
        assert_eq!(value["misfire_grace_time"], 1);
        assert_eq!(value["max_instances"], 1);
        assert_eq!(value["args"], json!(["workspace/test.py"]));
        assert_eq!(value["kwargs"], json!({}));
        assert_eq!(value["next_run_time"], "2026-11-25T07:36:32.369556+00:00");
        assert_eq!(value["next_run_time"], value["start_date"]);
    }

    #[test]
    fn keys_are_sorted_in_the_encoded_body() {
        // reference §1.3.6, "Date. An explicit offset is preserved"
        let mut date = job("date", json!({"run_date": "2030-01-02T03:04:05+05:30"}));
        date.id = "date1".into();
        date.name = "date1".into();
        date.args = vec![json!(7)];
        assert_eq!(
            serde_json::to_string(&job_to_json(&date)).unwrap(),
            concat!(
                r#"{"args":[7],"func":"task:success","id":"date1","kwargs":{},"#,
                r#""max_instances":1,"misfire_grace_time":1,"name":"date1","#,
                r#""next_run_time":"2030-01-02T03:04:05+05:30","#,
                r#""run_date":"2030-01-02T03:04:05+05:30","trigger":"date"}"#
            )
        );
    }

    #[test]
    fn cron_job_shows_only_the_given_fields() {
        // check 13
        let value = job_to_json(&job(
            "cron",
            json!({"minute": "*/5", "hour": "8-18", "day_of_week": "mon-fri"}),
        ));
        let mut expected = key_set(&JOB_KEYS);
        expected.extend(["minute", "hour", "day_of_week"]);
        assert_eq!(keys(&value), expected);
        assert_eq!(value["trigger"], "cron");
        assert_eq!(value["minute"], "*/5");
        assert_eq!(value["next_run_time"], "2026-11-25T08:00:00+00:00");
    }

    #[test]
    fn date_job_has_run_date_and_no_start_date() {
        let value = job_to_json(&job("date", json!({"run_date": "2030-01-02 03:04:05"})));
        let mut expected = key_set(&JOB_KEYS);
        expected.insert("run_date");
        assert_eq!(keys(&value), expected);
        assert_eq!(value["run_date"], "2030-01-02T03:04:05+00:00");
        assert_eq!(value["next_run_time"], value["run_date"]);
    }

    #[test]
    fn paused_job_shows_a_null_next_run_time() {
        // check 19
        let mut paused = job("interval", json!({"hours": 1}));
        paused.next_run_time = None;
        let value = job_to_json(&paused);
        assert!(keys(&value).contains("next_run_time"));
        assert_eq!(value["next_run_time"], Value::Null);
    }

    #[test]
    fn pending_job_has_no_scheduling_keys() {
        // check 55.8, reference §2.1
        let mut pending = job("interval", json!({"hours": 1}));
        pending.pending = true;
        let value = job_to_json(&pending);
        let mut expected = key_set(&["args", "func", "id", "kwargs", "name", "trigger"]);
        expected.extend(["hours", "start_date"]);
        assert_eq!(keys(&value), expected);
    }

    #[test]
    fn unlimited_grace_is_null_and_timeout_shows_only_when_set() {
        let mut limited = job("interval", json!({"hours": 1}));
        limited.misfire_grace_time = None;
        let value = job_to_json(&limited);
        assert_eq!(value["misfire_grace_time"], Value::Null);
        assert!(!keys(&value).contains("timeout"));
        limited.timeout = Some(30.0);
        assert_eq!(job_to_json(&limited)["timeout"], json!(30));
        limited.timeout = Some(2.5);
        assert_eq!(job_to_json(&limited)["timeout"], json!(2.5));
    }

    #[test]
    fn options_and_trigger_settings_are_never_shown() {
        // check 20
        let value = job_to_json(&job(
            "interval",
            json!({"hours": 1, "timezone": "Europe/Berlin", "jitter": 5}),
        ));
        for key in NEVER_SHOWN {
            assert!(!keys(&value).contains(key), "{key} shown");
        }
        let value = job_to_json(&job(
            "cron",
            json!({"second": 30, "timezone": "Asia/Tokyo"}),
        ));
        for key in NEVER_SHOWN {
            assert!(!keys(&value).contains(key), "{key} shown");
        }
        assert_eq!(value["second"], "30");
    }

    #[test]
    fn nested_kwargs_are_sorted_and_unicode_kept() {
        let mut unicode = job("interval", json!({"hours": 3}));
        unicode.id = "uni-任务".into();
        unicode.name = "名字".into();
        unicode.kwargs = json!({"z": 1, "a": {"y": 2, "b": 3}})
            .as_object()
            .unwrap()
            .clone();
        let text = serde_json::to_string(&job_to_json(&unicode)).unwrap();
        assert!(
            text.contains(r#""kwargs":{"a":{"b":3,"y":2},"z":1}"#),
            "{text}"
        );
        assert!(text.contains(r#""id":"uni-任务""#), "{text}");
    }

    #[test]
    fn the_stored_text_is_the_answered_object() {
        let mut nested = job("cron", json!({"second": 30, "timezone": "Asia/Tokyo"}));
        nested.args = vec![
            json!("workspace/test.py"),
            json!([{"q": 1, "p": {"k": 2, "e": 3}}]),
        ];
        nested.kwargs = json!({"z": [{"b": 1, "a": 2}], "m": {"y": null, "x": 1.5}})
            .as_object()
            .unwrap()
            .clone();
        nested.timeout = Some(2.5);
        let text = view::render(&nested);
        assert_eq!(text, serde_json::to_string(&job_to_json(&nested)).unwrap());
        assert_eq!(
            text,
            serde_json::to_string(&sort_keys(job_to_json(&nested))).unwrap()
        );
        assert!(
            text.contains(r#""args":["workspace/test.py",[{"p":{"e":3,"k":2},"q":1}]]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""kwargs":{"m":{"x":1.5,"y":null},"z":[{"a":2,"b":1}]}"#),
            "{text}"
        );
    }

    #[test]
    fn sort_keys_sorts_nested_objects() {
        let value = json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": 3}});
        let sorted = sort_keys(value);
        assert_eq!(
            serde_json::to_string(&sorted).unwrap(),
            r#"{"a":{"c":3,"z":[{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn info_has_exactly_the_reference_keys_in_order() {
        let info = info_to_json(&["*".to_owned()], "vm", true);
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"allowed_hosts":["*"],"current_host":"vm","running":true}"#
        );
    }

    #[test]
    fn ascii_escaping_matches_python() {
        // json.dumps({"id": "uni-任务", "e": "😀"}) in Python
        let text = serde_json::to_string(&json!({"id": "uni-任务", "e": "😀"})).unwrap();
        assert_eq!(
            escape_non_ascii(&text),
            r#"{"id":"uni-\u4efb\u52a1","e":"\ud83d\ude00"}"#
        );
        let back: Value = serde_json::from_str(&escape_non_ascii(&text)).unwrap();
        assert_eq!(back, json!({"id": "uni-任务", "e": "😀"}));
    }

    #[tokio::test]
    async fn json_body_has_the_reference_content_type() {
        let response = JsonBody(json!({"id": "任务"})).into_response();
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], "{\"id\":\"任务\"}".as_bytes());
    }
}
