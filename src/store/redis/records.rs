//! Run records and heartbeat rows as Redis values: a run is a hash whose fields are the SQL
//! stores' columns (an absent field is a NULL), read back through the same [`RunRow`].

use std::collections::HashMap;

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use crate::job::{RunRecord, RunStatus};
use crate::store::{RunRow, StoreError, from_micros, scheduled_micros, scheduled_text, to_micros};

/// The `run_slots` field of a run's (job, fire time): `<fire time µs>:<job id>` (the number
/// has no colon, so the job id may).
fn slot(run: &RunRecord) -> Option<String> {
    scheduled_micros(run).map(|micros| format!("{micros}:{}", run.job_id))
}

fn flag(value: bool) -> String {
    if value { "1" } else { "0" }.to_owned()
}

/// The fields a run update may change, `None` for those to delete.
fn mutable_fields(run: &RunRecord) -> [(&'static str, Option<String>); 14] {
    [
        (
            "started_micros",
            run.started_at.map(|t| to_micros(t).to_string()),
        ),
        (
            "finished_micros",
            run.finished_at.map(|t| to_micros(t).to_string()),
        ),
        ("status", Some(run.status.as_str().to_owned())),
        ("reason", run.reason.clone()),
        ("exit_code", run.exit_code.map(|c| c.to_string())),
        ("stdout", Some(run.stdout.clone())),
        ("stderr", Some(run.stderr.clone())),
        ("stdout_truncated", Some(flag(run.stdout_truncated))),
        ("stderr_truncated", Some(flag(run.stderr_truncated))),
        ("result", run.result.clone()),
        ("node", Some(run.node.clone())),
        ("owner", Some(run.owner.clone())),
        ("due_micros", run.due_at.map(|t| to_micros(t).to_string())),
        ("job_state", run.job_state.clone()),
    ]
}

/// A run as the scripts' `read_runs` takes it: id, job id, slot, created µs, status, the
/// number of fields, then the field/value pairs.
pub(super) fn run_args(run: &RunRecord) -> Vec<String> {
    let mut fields: Vec<(&str, Option<String>)> = vec![
        ("id", Some(run.id.to_string())),
        ("job_id", Some(run.job_id.to_string())),
        (
            "scheduled_micros",
            scheduled_micros(run).map(|m| m.to_string()),
        ),
        ("scheduled_run_time", scheduled_text(run)),
        (
            "created_micros",
            Some(to_micros(run.created_at).to_string()),
        ),
        ("cause", Some(run.cause.as_str().to_owned())),
        ("attempt", Some(run.attempt.to_string())),
        ("retry_of", run.retry_of.as_ref().map(ToString::to_string)),
    ];
    fields.extend(mutable_fields(run));
    let present: Vec<(&str, String)> = fields
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
    let mut args = vec![
        run.id.to_string(),
        run.job_id.to_string(),
        slot(run).unwrap_or_default(),
        to_micros(run.created_at).to_string(),
        run.status.as_str().to_owned(),
        present.len().to_string(),
    ];
    for (name, value) in present {
        args.push(name.to_owned());
        args.push(value);
    }
    args
}

/// The update script's arguments after the prefix: id, status, the status the run must be
/// in (`expected`; `None`: any), the number of fields to set, their pairs, then the fields to
/// delete.
pub(super) fn update_args(run: &RunRecord, expected: Option<RunStatus>) -> Vec<String> {
    let fields = mutable_fields(run);
    let set: Vec<(&str, &String)> = fields
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (*name, v)))
        .collect();
    let mut args = vec![
        run.id.to_string(),
        run.status.as_str().to_owned(),
        expected.map_or("", RunStatus::as_str).to_owned(),
        set.len().to_string(),
    ];
    for (name, value) in set {
        args.push(name.to_owned());
        args.push(value.clone());
    }
    for (name, value) in &fields {
        if value.is_none() {
            args.push((*name).to_owned());
        }
    }
    args
}

/// Reads a run hash back (`None` for an empty hash: the run is gone).
pub(super) fn run_from_hash(
    id: &str,
    mut hash: HashMap<String, String>,
) -> Result<Option<RunRecord>, StoreError> {
    if hash.is_empty() {
        return Ok(None);
    }
    let bad = |what: &str| StoreError::Backend(anyhow!("run {id}: unreadable {what}"));
    let mut text = |name: &str| hash.remove(name);
    let required = |value: Option<String>, name: &str| value.ok_or_else(|| bad(name));
    let required_number = |value: Option<i64>, name: &str| value.ok_or_else(|| bad(name));
    fn number<T: std::str::FromStr>(
        value: Option<String>,
        name: &str,
        bad: &dyn Fn(&str) -> StoreError,
    ) -> Result<Option<T>, StoreError> {
        value
            .map(|v| v.parse::<T>().map_err(|_| bad(name)))
            .transpose()
    }
    let row = RunRow {
        id: required(text("id"), "id")?,
        job_id: required(text("job_id"), "job_id")?,
        scheduled_run_time: text("scheduled_run_time"),
        created_micros: required_number(
            number(text("created_micros"), "created_micros", &bad)?,
            "created_micros",
        )?,
        started_micros: number(text("started_micros"), "started_micros", &bad)?,
        finished_micros: number(text("finished_micros"), "finished_micros", &bad)?,
        status: required(text("status"), "status")?,
        reason: text("reason"),
        exit_code: number(text("exit_code"), "exit_code", &bad)?,
        stdout: text("stdout").unwrap_or_default(),
        stderr: text("stderr").unwrap_or_default(),
        stdout_truncated: text("stdout_truncated").as_deref() == Some("1"),
        stderr_truncated: text("stderr_truncated").as_deref() == Some("1"),
        result: text("result"),
        cause: required(text("cause"), "cause")?,
        node: text("node").unwrap_or_default(),
        owner: text("owner").unwrap_or_default(),
        attempt: number(text("attempt"), "attempt", &bad)?,
        retry_of: text("retry_of"),
        due_micros: number(text("due_micros"), "due_micros", &bad)?,
        job_state: text("job_state"),
    };
    row.into_record().map(Some)
}

/// A daemon's row in the `nodes` hash; its heartbeat is its score in `node_beats`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct NodeEntry {
    pub host: String,
    pub pid: u32,
    pub started_micros: i64,
}

impl NodeEntry {
    pub fn into_record(
        self,
        id: String,
        heartbeat_micros: i64,
    ) -> Option<crate::store::NodeRecord> {
        Some(crate::store::NodeRecord {
            id,
            host: self.host,
            pid: self.pid,
            started_at: from_micros(self.started_micros)?,
            heartbeat_at: from_micros(heartbeat_micros)?,
        })
    }
}
