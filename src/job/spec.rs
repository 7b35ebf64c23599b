//! Request bodies → validated jobs, with the reference's error texts (flask_apscheduler.md §3).
//!
//! A `POST P/jobs` body and a `[[jobs]]` table in the config are the same thing: a JSON object
//! whose job-option keys describe the job and whose every other key is a trigger argument.
//! Both are read here, by a [`JobParser`], into a [`JobSpec`]; a `PATCH` body into
//! [`JobChanges`]. What each option accepts is `options.rs`'s rule, shared with the config.

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::notify::NotifyRule;
use super::options::{self, MAX_OPTION_SECONDS, OutOfRange};
use super::policy::{self, Overlap, Policies, RetryPolicy};
use super::{Job, JobError};
use crate::trigger::{self, Trigger, truthy};

/// Keys that are job options; every other key of an add body is a trigger argument.
const JOB_OPTIONS: [&str; 17] = [
    "func",
    "args",
    "kwargs",
    "id",
    "name",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "next_run_time",
    "jobstore",
    "executor",
    "replace_existing",
    "timeout",
    "retry",
    "overlap",
    "queue_limit",
    "notify",
];

/// Keys a PATCH may change besides the trigger.
const MODIFIABLE: [&str; 14] = [
    "func",
    "args",
    "kwargs",
    "name",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "executor",
    "next_run_time",
    "timeout",
    "retry",
    "overlap",
    "queue_limit",
    "notify",
];

/// The trigger arguments a PATCH may carry with `trigger`: the trigger's own, less `jitter`
/// (Flask-APScheduler's whitelist leaves it out).
fn patch_trigger_keys(kind: &str) -> impl Iterator<Item = &'static str> {
    trigger::accepted_arguments(kind)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|key| *key != "jitter")
}

/// Longest id accepted: ids are primary keys in an indexed `VARCHAR(191)` column.
pub const MAX_ID_BYTES: usize = 191;

/// Option values a job gets when its body does not say (`[job_defaults]`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobDefaults {
    /// Seconds a run may start late; `None` = no limit.
    pub misfire_grace_time: Option<u64>,
    /// Collapse several due runs into one.
    pub coalesce: bool,
    /// Runs of one job allowed at once.
    pub max_instances: u32,
    /// `retry`, `overlap` and `queue_limit` (none set by default).
    pub policies: Policies,
}

impl Default for JobDefaults {
    fn default() -> Self {
        JobDefaults {
            misfire_grace_time: Some(1),
            coalesce: true,
            max_instances: 1,
            policies: Policies::default(),
        }
    }
}

/// What a body said about `next_run_time`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextRunTime {
    /// Not given: the trigger's first fire time from now.
    Compute,
    /// `null`: the job is created paused.
    Paused,
    /// An explicit time.
    At(DateTime<FixedOffset>),
}

/// What reading a job body takes besides the body: the scheduler's zone (naive times are read
/// in it), its job defaults, and the time the body is read at. The scheduler hands one out
/// (`Scheduler::job_parser`), so that the API and the config read bodies before they reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobParser {
    /// The scheduler's zone.
    pub timezone: Tz,
    /// Options a job gets when its body does not say.
    pub defaults: JobDefaults,
    /// The scheduler's clock's time: the trigger defaults (an interval's start, a date's
    /// `run_date`) are counted from it, and so is the job's first fire time.
    pub now: DateTime<Utc>,
}

impl JobParser {
    /// A `POST P/jobs` body or a `[[jobs]]` table: [`JobSpec::parse`].
    ///
    /// # Errors
    /// The reference's text for the first problem found.
    pub fn spec(&self, body: &Value) -> Result<JobSpec, JobError> {
        JobSpec::parse(body, &self.defaults, self.timezone, self.now)
    }

    /// A `PATCH P/jobs/<id>` body: [`JobChanges::parse`].
    ///
    /// # Errors
    /// The reference's text for the first problem found.
    pub fn changes(&self, body: &Value) -> Result<JobChanges, JobError> {
        JobChanges::parse(body, self.timezone, self.now)
    }
}

/// A validated add request.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The job, with `next_run_time` still unset.
    pub job: Job,
    /// How to set `next_run_time`.
    pub next_run_time: NextRunTime,
    /// Replace a job with the same id instead of refusing it.
    pub replace_existing: bool,
    /// When the body was read: the trigger's defaults were counted from this time, and the
    /// first fire time is too.
    pub read_at: DateTime<Utc>,
}

impl JobSpec {
    /// Reads a `POST P/jobs` body. `tz` is the scheduler's zone; `now` feeds the trigger
    /// defaults (and becomes [`JobSpec::read_at`]).
    ///
    /// # Errors
    /// The reference's text for the first problem found.
    pub fn parse(
        body: &Value,
        defaults: &JobDefaults,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<JobSpec, JobError> {
        let mut body = flatten_legacy_trigger(object(body)?)?;
        if !body.contains_key("id") {
            return Err(invalid(
                "add_job() missing 1 required positional argument: 'id'",
            ));
        }
        if !body.contains_key("func") {
            return Err(invalid(
                "add_job() missing 1 required positional argument: 'func'",
            ));
        }
        let id = parse_id(&body["id"])?;
        let name = match body.get("name") {
            Some(v) if truthy(v) => parse_name(v)?,
            _ => id.clone(),
        };
        if name.is_empty() {
            return Err(invalid("name must be a nonempty string"));
        }
        let func = parse_func(&body["func"])?;
        let args = match body.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_args(v)?,
        };
        let kwargs = match body.get("kwargs") {
            None | Some(Value::Null) => Map::new(),
            Some(v) => parse_kwargs(v)?,
        };
        let misfire_grace_time = match body.get("misfire_grace_time") {
            None => defaults.misfire_grace_time,
            Some(v) => parse_misfire_grace_time(v)?,
        };
        let coalesce = body.get("coalesce").map_or(defaults.coalesce, truthy);
        let max_instances = match body.get("max_instances") {
            None => defaults.max_instances,
            Some(v) => parse_max_instances(v)?,
        };
        let next_run_time = match body.get("next_run_time") {
            None => NextRunTime::Compute,
            Some(Value::Null) => NextRunTime::Paused,
            Some(v) => NextRunTime::At(parse_next_run_time(v, tz)?),
        };
        check_store_and_executor(&body)?;
        let replace_existing = body.get("replace_existing").is_some_and(truthy);
        let timeout = match body.get("timeout") {
            None => None,
            Some(v) => parse_timeout(v)?,
        };
        let policies = parse_policies(&body, &defaults.policies)?;
        policies.check(max_instances).map_err(invalid)?;
        let kind = take_trigger_kind(&mut body)?;
        body.retain(|key, _| !JOB_OPTIONS.contains(&key.as_str()));
        let trigger = Trigger::from_args(&kind, &body, tz, now)?;
        Ok(JobSpec {
            job: Job {
                id: id.into(),
                name,
                func,
                args,
                kwargs,
                trigger,
                misfire_grace_time,
                coalesce,
                max_instances,
                next_run_time: None,
                timeout,
                policies,
                pending: false,
                version: 0,
            },
            next_run_time,
            replace_existing,
            read_at: now,
        })
    }
}

/// A validated PATCH: each field is `Some` when the body changes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobChanges {
    /// A rebuilt trigger; the job is rescheduled from now (this unpauses it).
    pub trigger: Option<Trigger>,
    /// New name.
    pub name: Option<String>,
    /// New task.
    pub func: Option<String>,
    /// New positional arguments.
    pub args: Option<Vec<Value>>,
    /// New keyword arguments.
    pub kwargs: Option<Map<String, Value>>,
    /// New grace time.
    pub misfire_grace_time: Option<Option<u64>>,
    /// New coalesce flag.
    pub coalesce: Option<bool>,
    /// New instance limit.
    pub max_instances: Option<u32>,
    /// New next run time (`Some(None)` pauses).
    pub next_run_time: Option<Option<DateTime<FixedOffset>>>,
    /// New timeout (`Some(None)` removes it).
    pub timeout: Option<Option<f64>>,
    /// New retry policy (`Some(None)` removes it).
    pub retry: Option<Option<RetryPolicy>>,
    /// New overlap policy (`Some(None)`: back to the default).
    pub overlap: Option<Option<Overlap>>,
    /// New queue limit (`Some(None)`: back to the default).
    pub queue_limit: Option<Option<u32>>,
    /// New notification rule (`Some(None)` removes it).
    pub notify: Option<Option<NotifyRule>>,
    /// When the body was read: a rebuilt trigger's defaults were counted from this time, and
    /// the job is rescheduled from it.
    pub read_at: DateTime<Utc>,
}

impl JobChanges {
    /// Reads a `PATCH P/jobs/<id>` body. Nothing is applied here, so a refused body changes
    /// nothing (CONTRACT §2.3).
    ///
    /// # Errors
    /// The reference's text for the first problem found.
    pub fn parse(body: &Value, tz: Tz, now: DateTime<Utc>) -> Result<JobChanges, JobError> {
        let mut body = flatten_legacy_trigger(object(body)?)?;
        if body.contains_key("id") {
            return Err(invalid(
                "modify_job() got multiple values for argument 'id'",
            ));
        }
        check_store_and_executor(&body)?;
        body.remove("jobstore");
        let mut changes = JobChanges {
            read_at: now,
            ..JobChanges::default()
        };
        if body.contains_key("trigger") {
            let kind = take_trigger_kind(&mut body)?;
            if !["date", "interval", "cron"].contains(&kind.as_str()) {
                return Err(invalid(format!("Trigger {kind} is not supported.")));
            }
            let mut args = Map::new();
            for key in patch_trigger_keys(&kind) {
                if let Some(value) = body.remove(key) {
                    args.insert(key.to_owned(), value);
                }
            }
            changes.trigger = Some(Trigger::from_args(&kind, &args, tz, now)?);
        }
        let refused: Vec<&str> = body
            .keys()
            .map(String::as_str)
            .filter(|key| !MODIFIABLE.contains(key))
            .collect();
        if !refused.is_empty() {
            return Err(invalid(format!(
                "The following are not modifiable attributes of Job: {}",
                refused.join(", ")
            )));
        }
        for (key, value) in &body {
            match key.as_str() {
                "func" => changes.func = Some(parse_func(value)?),
                "args" => changes.args = Some(parse_args(value)?),
                "kwargs" => changes.kwargs = Some(parse_kwargs(value)?),
                "name" => changes.name = Some(parse_name(value)?),
                "misfire_grace_time" => {
                    changes.misfire_grace_time = Some(parse_misfire_grace_time(value)?)
                }
                "coalesce" => changes.coalesce = Some(truthy(value)),
                "max_instances" => changes.max_instances = Some(parse_max_instances(value)?),
                "next_run_time" => {
                    changes.next_run_time = Some(match value {
                        Value::Null => None,
                        v => Some(parse_next_run_time(v, tz)?),
                    })
                }
                "timeout" => changes.timeout = Some(parse_timeout(value)?),
                "retry" => changes.retry = Some(RetryPolicy::parse(value).map_err(invalid)?),
                "overlap" => changes.overlap = Some(Overlap::parse(value).map_err(invalid)?),
                "queue_limit" => {
                    changes.queue_limit = Some(policy::parse_queue_limit(value).map_err(invalid)?);
                }
                "notify" => changes.notify = Some(NotifyRule::parse(value).map_err(invalid)?),
                _ => {} // executor: checked above, nothing to store
            }
        }
        Ok(changes)
    }

    /// The job with these changes applied. A new trigger reschedules from
    /// [`JobChanges::read_at`]; an explicit `next_run_time` in the same body wins, as in
    /// APScheduler (reschedule, then modify).
    pub fn apply(self, job: &Job) -> Job {
        let JobChanges {
            trigger,
            name,
            func,
            args,
            kwargs,
            misfire_grace_time,
            coalesce,
            max_instances,
            next_run_time,
            timeout,
            retry,
            overlap,
            queue_limit,
            notify,
            read_at,
        } = self;
        let job = job.clone();
        let rescheduled = trigger.as_ref().map_or(job.next_run_time, |trigger| {
            trigger.next_fire_time(None, read_at)
        });
        Job {
            trigger: trigger.unwrap_or(job.trigger),
            next_run_time: next_run_time.unwrap_or(rescheduled),
            name: name.unwrap_or(job.name),
            func: func.unwrap_or(job.func),
            args: args.unwrap_or(job.args),
            kwargs: kwargs.unwrap_or(job.kwargs),
            misfire_grace_time: misfire_grace_time.unwrap_or(job.misfire_grace_time),
            coalesce: coalesce.unwrap_or(job.coalesce),
            max_instances: max_instances.unwrap_or(job.max_instances),
            timeout: timeout.unwrap_or(job.timeout),
            policies: Policies {
                retry: retry.unwrap_or(job.policies.retry),
                overlap: overlap.unwrap_or(job.policies.overlap),
                queue_limit: queue_limit.unwrap_or(job.policies.queue_limit),
                notify: notify.unwrap_or(job.policies.notify),
            },
            ..job
        }
    }
}

fn invalid(message: impl Into<String>) -> JobError {
    JobError::Invalid(message.into())
}

fn object(body: &Value) -> Result<Map<String, Value>, JobError> {
    match body {
        Value::Object(map) => Ok(map.clone()),
        other => Err(invalid(format!(
            "The request body must be a JSON object with the job's fields, not {}",
            json_type(other)
        ))),
    }
}

/// The JSON type's name, for messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The pre-1.2 form `"trigger": {"type": "cron", ...}`: the object's keys join the top level
/// (overwriting) and `type` (default `date`) becomes the trigger name.
fn flatten_legacy_trigger(mut body: Map<String, Value>) -> Result<Map<String, Value>, JobError> {
    if let Some(Value::Object(inner)) = body.get("trigger").cloned() {
        body.remove("trigger");
        let mut kind = Value::String("date".to_owned());
        for (key, value) in inner {
            if key == "type" {
                kind = value;
            } else {
                body.insert(key, value);
            }
        }
        body.insert("trigger".to_owned(), kind);
    }
    Ok(body)
}

fn take_trigger_kind(body: &mut Map<String, Value>) -> Result<String, JobError> {
    match body.remove("trigger") {
        None | Some(Value::Null) => Ok("date".to_owned()),
        Some(Value::String(kind)) => Ok(kind),
        Some(other) => Err(invalid(format!(
            "trigger must be a trigger name (date, interval, cron) or an object, not {}",
            json_type(&other)
        ))),
    }
}

/// Any text up to [`MAX_ID_BYTES`], as APScheduler takes any string, except a NUL, which
/// PostgreSQL's `text` cannot hold and no program can receive in `TICKD_JOB_ID`.
fn parse_id(value: &Value) -> Result<String, JobError> {
    match value {
        Value::String(id) if id.len() > MAX_ID_BYTES => Err(invalid(format!(
            "id must be at most {MAX_ID_BYTES} bytes long"
        ))),
        Value::String(id) if id.contains('\0') => {
            Err(invalid("id must not contain a NUL character"))
        }
        Value::String(id) => Ok(id.clone()),
        _ => Err(invalid("id must be a nonempty string")),
    }
}

/// Any nonempty text without a NUL (which only ever ends up in a log line).
fn parse_name(value: &Value) -> Result<String, JobError> {
    match value {
        Value::String(name) if name.contains('\0') => {
            Err(invalid("name must not contain a NUL character"))
        }
        Value::String(name) if !name.is_empty() => Ok(name.clone()),
        _ => Err(invalid("name must be a nonempty string")),
    }
}

fn parse_func(value: &Value) -> Result<String, JobError> {
    match value {
        Value::String(func) => Ok(func.clone()),
        _ => Err(invalid(
            "func must be a callable or a textual reference to one",
        )),
    }
}

fn parse_args(value: &Value) -> Result<Vec<Value>, JobError> {
    match value {
        Value::Array(args) => Ok(args.clone()),
        _ => Err(invalid("args must be a non-string iterable")),
    }
}

fn parse_kwargs(value: &Value) -> Result<Map<String, Value>, JobError> {
    match value {
        Value::Object(kwargs) => Ok(kwargs.clone()),
        _ => Err(invalid("kwargs must be a dict-like object")),
    }
}

/// [`options::misfire_grace_time`]: a positive integer up to a year, or `null` for no limit.
fn parse_misfire_grace_time(value: &Value) -> Result<Option<u64>, JobError> {
    let secs = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
        _ => None,
    };
    match secs.map(options::misfire_grace_time) {
        Some(Ok(secs)) => Ok(Some(secs)),
        Some(Err(OutOfRange::TooHigh)) => Err(invalid(format!(
            "misfire_grace_time must be at most {MAX_OPTION_SECONDS} seconds (a year); \
             null means no limit"
        ))),
        Some(Err(OutOfRange::TooLow)) | None => Err(invalid(
            "misfire_grace_time must be either None or a positive integer",
        )),
    }
}

/// [`options::max_instances`]: one text for every refusal, the reference's.
fn parse_max_instances(value: &Value) -> Result<u32, JobError> {
    value
        .as_u64()
        .and_then(|count| options::max_instances(count).ok())
        .ok_or_else(|| invalid("max_instances must be a positive integer"))
}

/// `retry`, `overlap` and `queue_limit` from an add body, each from `defaults` when absent.
fn parse_policies(body: &Map<String, Value>, defaults: &Policies) -> Result<Policies, JobError> {
    Ok(Policies {
        retry: match body.get("retry") {
            None => defaults.retry.clone(),
            Some(value) => RetryPolicy::parse(value).map_err(invalid)?,
        },
        overlap: match body.get("overlap") {
            None => defaults.overlap,
            Some(value) => Overlap::parse(value).map_err(invalid)?,
        },
        queue_limit: match body.get("queue_limit") {
            None => defaults.queue_limit,
            Some(value) => policy::parse_queue_limit(value).map_err(invalid)?,
        },
        notify: match body.get("notify") {
            None => defaults.notify.clone(),
            Some(value) => NotifyRule::parse(value).map_err(invalid)?,
        },
    })
}

/// [`options::timeout`], or `null` for none.
fn parse_timeout(value: &Value) -> Result<Option<f64>, JobError> {
    let secs = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match secs.map(options::timeout) {
        Some(Ok(secs)) => Ok(Some(secs)),
        Some(Err(OutOfRange::TooHigh)) => Err(invalid(format!(
            "timeout must be at most {MAX_OPTION_SECONDS} seconds (a year); null means \
             no timeout"
        ))),
        Some(Err(OutOfRange::TooLow)) | None => {
            Err(invalid("timeout must be a positive number of seconds"))
        }
    }
}

fn parse_next_run_time(value: &Value, tz: Tz) -> Result<DateTime<FixedOffset>, JobError> {
    match value {
        Value::String(text) => Ok(trigger::parse_next_run_time(text, tz)?),
        other => Err(invalid(format!(
            "Unsupported type for next_run_time: {}",
            json_type(other)
        ))),
    }
}

/// tickd has one job store and one executor, both called `default`.
fn check_store_and_executor(body: &Map<String, Value>) -> Result<(), JobError> {
    for (key, what) in [("jobstore", "job store"), ("executor", "executor")] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(alias)) if alias == "default" => {}
            Some(Value::String(alias)) => return Err(invalid(format!("No such {what}: {alias}"))),
            Some(other) => {
                return Err(invalid(format!(
                    "{key} must be a string, not {}",
                    json_type(other)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn parser(now: &str) -> JobParser {
        JobParser {
            timezone: chrono_tz::UTC,
            defaults: JobDefaults::default(),
            now: at(now),
        }
    }

    /// A body's time defaults and its first fire time come from the moment it was read, however
    /// late the change is applied (a write retried after another daemon's, say).
    #[test]
    fn changes_reschedule_from_when_the_body_was_read() {
        let body = json!({"id": "j", "func": "task:success", "trigger": "interval", "hours": 1});
        let spec = parser("2031-05-01T12:00:00Z").spec(&body).unwrap();
        assert_eq!(spec.read_at, at("2031-05-01T12:00:00Z"));
        let mut job = spec.job;
        job.next_run_time = job.trigger.next_fire_time(None, spec.read_at);
        let edit = json!({"trigger": "interval", "minutes": 10, "name": "renamed"});
        let changes = parser("2031-05-01T12:30:00Z").changes(&edit).unwrap();
        let changed = changes.clone().apply(&job);
        assert_eq!(
            changed.next_run_time.map(|t| t.to_utc()),
            Some(at("2031-05-01T12:40:00Z"))
        );
        assert_eq!(changed.name, "renamed");
        assert_eq!((changed.id.as_str(), changed.max_instances), ("j", 1));
        let paused = JobChanges {
            next_run_time: Some(None),
            ..changes
        };
        assert_eq!(
            paused.apply(&job).next_run_time,
            None,
            "an explicit null wins"
        );
    }
}
