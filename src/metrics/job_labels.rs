//! Per-job label values, bounded: the first `max` job ids seen since start keep their own
//! label, every later one is counted under [`OTHER`]. Counters are monotonic, so a label once
//! given is never taken back (a deleted job's series stays until restart); a scrape's size
//! grows with the cap, never with the job count.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The label value jobs beyond the cap share.
pub const OTHER: &str = "_other";

/// See the module's doc. std Mutex: a set lookup per run (runs are rare next to requests).
#[derive(Debug)]
pub struct JobLabels {
    max: usize,
    given: Mutex<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl JobLabels {
    /// At most `max` jobs get a label of their own.
    pub fn new(max: usize) -> JobLabels {
        JobLabels {
            max,
            given: Mutex::new(HashSet::new()),
            other: OTHER.into(),
        }
    }

    /// The label value for `job_id`: itself while there is room, else [`OTHER`].
    pub fn label(&self, job_id: &str) -> Arc<str> {
        let mut given = self.given.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(label) = given.get(job_id) {
            return label.clone();
        }
        if given.len() < self.max {
            let label: Arc<str> = job_id.into();
            given.insert(label.clone());
            return label;
        }
        self.other.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_beyond_the_cap_fold_into_one_label() {
        let labels = JobLabels::new(2);
        assert_eq!(&*labels.label("a"), "a");
        assert_eq!(&*labels.label("b"), "b");
        assert_eq!(&*labels.label("c"), OTHER);
        assert_eq!(&*labels.label("a"), "a", "a label once given stays");
        assert_eq!(&*JobLabels::new(0).label("a"), OTHER);
    }
}
