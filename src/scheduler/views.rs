//! The API's read model: every job's JSON object, rendered once when the job changes, kept in
//! the contract's order. `GET P/jobs` then joins ready text instead of decoding and rendering
//! every job on every request. Kept only on a store this daemon has to itself; on a shared
//! store another daemon may change any job at any time, so reads go to the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::job::Job;
use crate::store::StoredView;

/// Where a job sorts: next fire instant first, ties by id, paused (no fire time) last by id.
type SortKey = (bool, i64, String);

/// The key of a job with this next fire instant (µs) and id.
fn sort_key(next_run_time: Option<i64>, id: String) -> SortKey {
    match next_run_time {
        Some(micros) => (false, micros, id),
        None => (true, 0, id),
    }
}

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
        View {
            key: sort_key(
                job.next_run_time.map(|time| time.timestamp_micros()),
                job.id.clone(),
            ),
            pending: job.pending,
            json: job.to_view_json().into(),
        }
    }
}

impl From<StoredView> for View {
    /// A rendering as the store kept it. Only a job without a next fire time can be pending,
    /// and a pending job's object has no `next_run_time` key (CONTRACT §1, reference §2.3):
    /// just those few are looked into.
    fn from(stored: StoredView) -> View {
        let key = sort_key(stored.next_run_time, stored.id);
        let pending = key.0 && is_pending(&stored.json);
        View {
            key,
            pending,
            json: stored.json.into(),
        }
    }
}

/// Whether a rendered job object is a pending job's (it has no `next_run_time` key).
pub(super) fn is_pending(json: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
        .is_ok_and(|object| !object.contains_key("next_run_time"))
}

/// Every job's [`View`], by id and in order.
#[derive(Debug, Default)]
pub(super) struct Views {
    order: BTreeMap<SortKey, Arc<str>>,
    by_id: HashMap<String, View>,
}

impl Views {
    /// The key a view is filed under is its job's id.
    pub fn id(view: &View) -> &str {
        &view.key.2
    }

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

    /// The ids of pending jobs.
    pub fn pending_ids(&self) -> Vec<String> {
        self.by_id
            .iter()
            .filter(|(_, view)| view.pending)
            .map(|(id, _)| id.clone())
            .collect()
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
