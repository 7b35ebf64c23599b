//! Daemons sharing a store: each writes a heartbeat row; a run whose daemon stopped beating
//! is marked `interrupted` by a survivor (or, on a store only one daemon may use, by the next
//! daemon at start-up).
//!
//! Heartbeats are read only by other daemons on the same store. On a store only one daemon
//! may use (SQLite, Redis) nobody reads them, so none are written after the one at start-up:
//! an idle daemon writes nothing there (a heartbeat every 2 s grew an idle SQLite WAL by
//! ~2.9 KB/s).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Scheduler, SchedulerError};
use crate::store::{NodeRecord, Orphans};

/// How often a daemon writes its heartbeat and looks for orphaned runs.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// A daemon silent this long is taken for dead; its running runs are interrupted.
const HEARTBEAT_TIMEOUT: TimeDelta = TimeDelta::seconds(10);

/// Heartbeat rows silent this long are dropped from `GET P/cluster`.
const FORGET_AFTER: TimeDelta = TimeDelta::days(1);

impl Scheduler {
    /// This daemon's heartbeat row as of `now`.
    fn node_record(&self, now: DateTime<Utc>) -> NodeRecord {
        NodeRecord {
            id: self.inner.node_id.clone(),
            host: self.inner.settings.node.clone(),
            pid: std::process::id(),
            started_at: self.inner.node_started,
            heartbeat_at: now,
        }
    }

    /// Writes this daemon's heartbeat, then marks `interrupted` the runs of daemons that
    /// died. At boot (`boot`), on a store only this daemon may use, every other daemon is
    /// dead, however recent its last heartbeat.
    ///
    /// # Errors
    /// Store failures.
    pub async fn heartbeat(&self, boot: bool) -> Result<u64, SchedulerError> {
        let now = self.inner.clock.now();
        let store = &self.inner.store;
        store.heartbeat(&self.node_record(now)).await?;
        let alive_since = if boot && !store.shared() {
            now
        } else {
            now - HEARTBEAT_TIMEOUT
        };
        let reason = if boot && !store.shared() {
            "tickd stopped while the run was in progress (found at start-up)"
        } else {
            "the daemon running it stopped sending heartbeats (found by a survivor)"
        };
        let orphans = Orphans {
            me: &self.inner.node_id,
            alive_since,
            reason,
            at: now,
        };
        let count = store.interrupt_orphaned_runs(&orphans).await?;
        if count > 0 {
            tracing::warn!("{count} run(s) of stopped daemons marked interrupted");
        }
        Ok(count)
    }

    /// Starts the heartbeat task: every [`HEARTBEAT_EVERY`], for the process's life. On a
    /// store only this daemon may use it starts nothing: no other daemon reads the rows, and
    /// the next daemon on the store treats every earlier one as dead at its start-up
    /// ([`Scheduler::heartbeat`] with `boot`) whatever its last heartbeat says.
    pub fn spawn_heartbeat(&self) {
        if !self.inner.store.shared() {
            return;
        }
        self.spawn_periodic(HEARTBEAT_EVERY, |scheduler| async move {
            if let Err(error) = scheduler.heartbeat(false).await {
                tracing::warn!("Heartbeat failed: {error:#}");
            }
        });
    }

    /// Removes this daemon's heartbeat row (clean shutdown) and rows silent for a day.
    pub(super) async fn leave_cluster(&self) {
        let before = self.inner.clock.now() - FORGET_AFTER;
        if let Err(error) = self
            .inner
            .store
            .remove_nodes(&self.inner.node_id, before)
            .await
        {
            tracing::warn!("Could not remove this daemon's heartbeat row: {error:#}");
        }
    }

    /// The daemons sharing the store, most recent heartbeat first (`GET P/cluster`). On a
    /// store only one daemon may use, that is this daemon alone, beating now (it is
    /// answering): no heartbeats are written there, and rows left by earlier daemons are
    /// of daemons found dead at start-up.
    ///
    /// # Errors
    /// Store failures.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, SchedulerError> {
        if !self.inner.store.shared() {
            return Ok(vec![self.node_record(self.inner.clock.now())]);
        }
        Ok(self.inner.store.get_nodes().await?)
    }
}
