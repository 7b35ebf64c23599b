//! The job object the API shows (CONTRACT §1; Flask-APScheduler's `utils.job_to_dict`,
//! reference §2). The scheduler is handed [`render`] at start-up and renders every job it
//! writes with it, so that a store may keep the text beside the job's state: listing
//! thousands of jobs then costs no decoding at all.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::job::Job;
use crate::job::options::seconds_json;
use crate::trigger::isoformat;

/// The job object (reference §2.1, CONTRACT §1): `id`, `name`, `func`, `args`, `kwargs`,
/// `trigger`, the trigger's own fields, and — unless the job is pending (added while the
/// scheduler was stopped) — `misfire_grace_time`, `max_instances` and `next_run_time`.
/// The extensions `timeout`, `retry`, `overlap`, `queue_limit` and `notify` appear only when set
/// (CONTRACT §6). `coalesce`, `executor`,
/// `jobstore`, `timezone`, `jitter` and `replace_existing` are never shown. Keys are sorted,
/// nested ones too.
pub fn object(job: &Job) -> Value {
    serde_json::to_value(View(job)).unwrap_or(Value::Null)
}

/// [`object`] as JSON text, written straight from the job: every add and change renders it
/// (a store keeps it, the API answers it), so it copies nothing into an intermediate `Value`.
pub fn render(job: &Job) -> String {
    // Serialising JSON values and numbers under string keys cannot fail.
    serde_json::to_string(&View(job)).unwrap_or_default()
}

/// A job serialised as its view: entries gathered by reference, sorted by key, written once.
struct View<'a>(&'a Job);

/// One entry's value in a [`View`].
enum Field<'a> {
    Text(&'a str),
    Items(&'a [Value]),
    Object(&'a Map<String, Value>),
    Json(&'a Value),
    Owned(Value),
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let job = self.0;
        let trigger = job.trigger.fields();
        let mut entries: Vec<(&str, Field<'_>)> = Vec::with_capacity(10 + trigger.len());
        entries.extend([
            ("id", Field::Text(&job.id)),
            ("name", Field::Text(&job.name)),
            ("func", Field::Text(&job.func)),
            ("args", Field::Items(&job.args)),
            ("kwargs", Field::Object(&job.kwargs)),
            ("trigger", Field::Text(job.trigger.kind())),
        ]);
        entries.extend(
            trigger
                .iter()
                .map(|(key, value)| (key.as_str(), Field::Json(value))),
        );
        if !job.pending {
            entries.extend([
                (
                    "misfire_grace_time",
                    Field::Owned(job.misfire_grace_time.map_or(Value::Null, Value::from)),
                ),
                (
                    "max_instances",
                    Field::Owned(Value::from(job.max_instances)),
                ),
                (
                    "next_run_time",
                    Field::Owned(
                        job.next_run_time
                            .as_ref()
                            .map_or(Value::Null, |time| Value::String(isoformat(time))),
                    ),
                ),
            ]);
        }
        if let Some(timeout) = job.timeout {
            entries.push(("timeout", Field::Owned(seconds_json(timeout))));
        }
        let policies = &job.policies;
        if let Some(retry) = &policies.retry {
            entries.push(("retry", Field::Owned(retry.to_json())));
        }
        if let Some(overlap) = policies.overlap {
            entries.push(("overlap", Field::Text(overlap.as_str())));
        }
        if let Some(limit) = policies.queue_limit {
            entries.push(("queue_limit", Field::Owned(Value::from(limit))));
        }
        if let Some(notify) = &policies.notify {
            entries.push(("notify", Field::Owned(notify.to_json())));
        }
        entries.sort_by(|a, b| a.0.cmp(b.0));
        serializer.collect_map(entries)
    }
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Text(text) => serializer.serialize_str(text),
            Field::Items(items) => serializer.collect_seq(items.iter().map(Sorted)),
            Field::Object(map) => sorted_map(map, serializer),
            Field::Json(value) => Sorted(value).serialize(serializer),
            Field::Owned(value) => Sorted(value).serialize(serializer),
        }
    }
}

/// A JSON value serialised with the keys of every object in it sorted, however deep, without
/// copying it ([`sort_keys`] for a borrowed value).
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => sorted_map(map, serializer),
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            other => other.serialize(serializer),
        }
    }
}

fn sorted_map<S: Serializer>(map: &Map<String, Value>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    serializer.collect_map(entries.into_iter().map(|(key, value)| (key, Sorted(value))))
}

/// Sorts the keys of every object in `value`, however deep.
pub fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sort_keys(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_seconds_are_integers() {
        assert_eq!(seconds_json(30.0), json!(30));
        assert_eq!(seconds_json(1.5), json!(1.5));
        assert_eq!(seconds_json(f64::NAN), Value::Null);
    }
}
