//! The API's read cache, on a store this daemon has to itself: the rendered objects of the
//! jobs read lately and the whole `GET P/jobs` body, each dropped the moment its job (any
//! job, for the listing) changes. Bounded in bytes, so memory does not grow with the number
//! of stored jobs: the store stays the one place every job is kept, and a miss reads it.
//! On a shared store another daemon may change any job at any time, so there is no cache
//! and every read goes to the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Bytes of rendered job objects kept at most (some 16,000 jobs of the usual size).
const JOBS_LIMIT: usize = 4 << 20;

/// The largest listing kept whole (and answered in one piece); a larger one is streamed
/// from the store on every request.
pub(super) const LISTING_LIMIT: usize = 4 << 20;

/// See the module's doc. std Mutex: held to copy or swap a pointer, never across `.await`.
#[derive(Debug, Default)]
pub(super) struct ReadCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Grows with every job write: what was read from the store before a write is not kept
    /// after it (it may predate the write).
    generation: u64,
    /// The listing body, and whether it lists pending jobs only (scheduler stopped).
    listing: Option<(bool, Bytes)>,
    jobs: HashMap<String, Arc<str>>,
    job_bytes: usize,
}

impl ReadCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the job writes stand: pass it back to the `keep_*` calls of what is read now.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// A job was added, changed or removed.
    pub fn changed(&self, id: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.listing = None;
        if let Some(old) = state.jobs.remove(id) {
            state.job_bytes -= old.len();
        }
    }

    /// The kept listing, if it lists the same jobs (`pending_only`).
    pub fn listing(&self, pending_only: bool) -> Option<Bytes> {
        match &self.state().listing {
            Some((pending, body)) if *pending == pending_only => Some(body.clone()),
            _ => None,
        }
    }

    /// Keeps a listing read at `generation`, unless a job changed since.
    pub fn keep_listing(&self, generation: u64, pending_only: bool, body: Bytes) {
        let mut state = self.state();
        if state.generation == generation && body.len() <= LISTING_LIMIT {
            state.listing = Some((pending_only, body));
        }
    }

    /// A kept job object.
    pub fn job(&self, id: &str) -> Option<Arc<str>> {
        self.state().jobs.get(id).cloned()
    }

    /// Keeps a job object read at `generation`, unless a job changed since. When the cache
    /// is full, it starts again empty: cheaper than tracking recency on every read, and a
    /// read-mostly working set refills it at once.
    pub fn keep_job(&self, generation: u64, id: &str, json: Arc<str>) {
        let mut state = self.state();
        if state.generation != generation || json.len() > JOBS_LIMIT {
            return;
        }
        if state.job_bytes + json.len() > JOBS_LIMIT {
            state.jobs = HashMap::new();
            state.job_bytes = 0;
        }
        state.job_bytes += json.len();
        if let Some(old) = state.jobs.insert(id.to_owned(), json) {
            state.job_bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_drops_the_listing_and_the_job_and_refuses_older_reads() {
        let cache = ReadCache::default();
        let before = cache.generation();
        cache.keep_listing(before, false, Bytes::from_static(b"[1]"));
        cache.keep_job(before, "a", "{}".into());
        assert_eq!(cache.listing(false).as_deref(), Some(&b"[1]"[..]));
        assert_eq!(cache.listing(true), None);
        assert_eq!(cache.job("a").as_deref(), Some("{}"));

        cache.changed("a");
        assert_eq!(cache.listing(false), None);
        assert_eq!(cache.job("a"), None);
        // Read before the write: not kept.
        cache.keep_listing(before, false, Bytes::from_static(b"[2]"));
        cache.keep_job(before, "a", "{\"old\":1}".into());
        assert_eq!(cache.listing(false), None);
        assert_eq!(cache.job("a"), None);
    }

    #[test]
    fn job_objects_stay_within_the_byte_limit() {
        let cache = ReadCache::default();
        let big: Arc<str> = "x".repeat(JOBS_LIMIT / 4).into();
        for id in 0..10 {
            cache.keep_job(cache.generation(), &id.to_string(), big.clone());
            assert!(cache.state().job_bytes <= JOBS_LIMIT);
        }
        assert!(cache.job("9").is_some());
    }
}
