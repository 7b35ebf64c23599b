//! The job object the API shows (CONTRACT §1; Flask-APScheduler's `utils.job_to_dict`,
//! reference §2). It lives with the job, not in `api`, because the store keeps it rendered
//! next to the job's state: listing thousands of jobs then costs no decoding at all.

use serde_json::{Map, Number, Value};

use super::Job;
use crate::trigger::isoformat;

impl Job {
    /// The job object (reference §2.1, CONTRACT §1): `id`, `name`, `func`, `args`, `kwargs`,
    /// `trigger`, the trigger's own fields, and — unless the job is pending (added while the
    /// scheduler was stopped) — `misfire_grace_time`, `max_instances` and `next_run_time`.
    /// The extension `timeout` appears only when set (CONTRACT §6). `coalesce`, `executor`,
    /// `jobstore`, `timezone`, `jitter` and `replace_existing` are never shown. Keys are sorted.
    pub fn to_view(&self) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), Value::String(self.id.clone()));
        object.insert("name".into(), Value::String(self.name.clone()));
        object.insert("func".into(), Value::String(self.func.clone()));
        object.insert("args".into(), Value::Array(self.args.clone()));
        object.insert("kwargs".into(), Value::Object(self.kwargs.clone()));
        object.insert("trigger".into(), Value::String(self.trigger.kind().into()));
        for (key, value) in self.trigger.fields() {
            object.insert(key, value);
        }
        if !self.pending {
            object.insert(
                "misfire_grace_time".into(),
                self.misfire_grace_time.map_or(Value::Null, Value::from),
            );
            object.insert("max_instances".into(), Value::from(self.max_instances));
            object.insert(
                "next_run_time".into(),
                self.next_run_time
                    .as_ref()
                    .map_or(Value::Null, |time| Value::String(isoformat(time))),
            );
        }
        if let Some(timeout) = self.timeout {
            object.insert("timeout".into(), seconds(timeout));
        }
        sort_keys(Value::Object(object))
    }

    /// [`Job::to_view`] as JSON text.
    pub fn to_view_json(&self) -> String {
        self.to_view().to_string()
    }
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

/// A number of seconds as JSON: an integer when it is whole (`30`, not `30.0`), as the user
/// most likely wrote it.
fn seconds(value: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact in f64
    if value.fract() == 0.0 && (0.0..EXACT).contains(&value) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Value::from(value as u64);
    }
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_seconds_are_integers() {
        assert_eq!(seconds(30.0), json!(30));
        assert_eq!(seconds(1.5), json!(1.5));
        assert_eq!(seconds(f64::NAN), Value::Null);
    }
}
