//! The persisted form of a job: versioned, portable JSON (never a pickle), kept apart from the
//! HTTP view so the wire format can change without a migration and vice versa.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Job;
use crate::trigger::Trigger;

/// The version written today; readers refuse versions they do not know.
const VERSION: u32 = 1;

/// Borrows the job's data when written (`to_state` runs on every add and change) and owns it
/// when read.
#[derive(Serialize, Deserialize)]
struct JobState<'a> {
    version: u32,
    id: Cow<'a, str>,
    name: Cow<'a, str>,
    func: Cow<'a, str>,
    args: Cow<'a, [Value]>,
    kwargs: Cow<'a, Map<String, Value>>,
    trigger: Value,
    misfire_grace_time: Option<u64>,
    coalesce: bool,
    max_instances: u32,
    /// RFC 3339 with the offset the job JSON shows (a gap time keeps its pre-transition
    /// offset, which the UTC index column alone could not say).
    next_run_time: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
}

impl Job {
    /// The job as the store keeps it.
    pub fn to_state(&self) -> String {
        let state = JobState {
            version: VERSION,
            id: Cow::Borrowed(&self.id),
            name: Cow::Borrowed(&self.name),
            func: Cow::Borrowed(&self.func),
            args: Cow::Borrowed(&self.args),
            kwargs: Cow::Borrowed(&self.kwargs),
            trigger: self.trigger.to_state(),
            misfire_grace_time: self.misfire_grace_time,
            coalesce: self.coalesce,
            max_instances: self.max_instances,
            next_run_time: self.next_run_time,
            timeout: self.timeout,
            pending: self.pending,
        };
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(&state).unwrap_or_default()
    }

    /// Reads a job back from [`Job::to_state`]'s form.
    ///
    /// # Errors
    /// A message saying what is wrong with the stored text.
    pub fn from_state(text: &str) -> Result<Job, String> {
        let state: JobState =
            serde_json::from_str(text).map_err(|e| format!("unreadable job state: {e}"))?;
        if state.version != VERSION {
            return Err(format!("unknown job state version {}", state.version));
        }
        let trigger = Trigger::from_state(&state.trigger)
            .map_err(|e| format!("unreadable trigger in job state: {e}"))?;
        Ok(Job {
            id: state.id.into_owned(),
            name: state.name.into_owned(),
            func: state.func.into_owned(),
            args: state.args.into_owned(),
            kwargs: state.kwargs.into_owned(),
            trigger,
            misfire_grace_time: state.misfire_grace_time,
            coalesce: state.coalesce,
            max_instances: state.max_instances,
            next_run_time: state.next_run_time,
            timeout: state.timeout,
            pending: state.pending,
            version: 0,
        })
    }
}
