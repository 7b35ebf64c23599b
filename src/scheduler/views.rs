//! The API's read model: every job's JSON object, rendered once when the job changes, kept in
//! the contract's order. `GET P/jobs` then joins ready text instead of decoding and rendering
//! every job on every request. Kept only on a store this daemon has to itself; on a shared
//! store another daemon may change any job at any time, so reads go to the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::job::Job;

/// Where a job sorts: next fire instant first, ties by id, paused (no fire time) last by id.
type SortKey = (bool, i64, String);

/// A job's rendered JSON and what the listing needs to know about it.
#[derive(Debug, Clone)]
pub(super) struct View {
    key: SortKey,
    /// Added while the scheduler was stopped (only these are listed then).
    pub pending: bool,
    /// The job object as JSON text.
    pub json: Arc<str>,
}

impl View {
    /// Renders `job`.
    pub fn of(job: &Job) -> View {
        let key = match job.next_run_time {
            Some(time) => (false, time.timestamp_micros(), job.id.clone()),
            None => (true, 0, job.id.clone()),
        };
        View {
            key,
            pending: job.pending,
            json: job.to_view_json().into(),
        }
    }
}

/// Every job's [`View`], by id and in order.
#[derive(Debug, Default)]
pub(super) struct Views {
    order: BTreeMap<SortKey, Arc<str>>,
    by_id: HashMap<String, View>,
}

impl Views {
    /// Puts (or replaces) a job's view.
    pub fn put(&mut self, id: &str, view: View) {
        if let Some(old) = self.by_id.remove(id) {
            self.order.remove(&old.key);
        }
        self.order.insert(view.key.clone(), view.json.clone());
        self.by_id.insert(id.to_owned(), view);
    }

    /// Forgets a job.
    pub fn remove(&mut self, id: &str) {
        if let Some(old) = self.by_id.remove(id) {
            self.order.remove(&old.key);
        }
    }

    /// One job's view.
    pub fn get(&self, id: &str) -> Option<View> {
        self.by_id.get(id).cloned()
    }

    /// The JSON array of the listed jobs (only pending ones when `pending_only`).
    pub fn list(&self, pending_only: bool) -> String {
        let mut out = String::with_capacity(2 + self.order.len() * 320);
        out.push('[');
        for (key, json) in &self.order {
            if pending_only && !self.by_id.get(&key.2).is_some_and(|v| v.pending) {
                continue;
            }
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(json);
        }
        out.push(']');
        out
    }
}
