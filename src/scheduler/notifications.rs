//! The scheduler's side of notifications (`crate::notify`): it hands the notifier the runs
//! that end, the fire times that are missed and the runs that go on too long, as they happen,
//! and refuses a job whose `notify` names a webhook the config does not define.

use std::sync::Arc;
use std::time::Duration;

use super::{Scheduler, SchedulerError};
use crate::job::{Job, RunRecord};
use crate::notify::Notifier;

impl Scheduler {
    /// Tells `notifier` of this scheduler's events from now on, and starts its delivery task
    /// (until [`Scheduler::close`]). Once per scheduler; a second notifier is ignored.
    pub fn notify_through(&self, notifier: Notifier) {
        let notifier = Arc::new(notifier);
        if self.inner.notifier.set(notifier.clone()).is_err() {
            return;
        }
        let deliverer = notifier.deliverer(
            self.inner.node_id.clone(),
            self.inner.metrics.get().cloned(),
        );
        tokio::spawn(deliverer.run(self.inner.closed.subscribe()));
    }

    /// Refuses (400) a job whose `notify` names a webhook that is not configured.
    pub(super) fn check_notify(&self, job: &Job) -> Result<(), SchedulerError> {
        let Some(rule) = &job.policies.notify else {
            return Ok(());
        };
        let notifier = self.inner.notifier.get();
        match rule
            .webhooks
            .iter()
            .find(|name| notifier.is_none_or(|n| !n.knows(name)))
        {
            Some(name) => Err(SchedulerError::Invalid(format!(
                "notify.webhooks names {name:?}, which no [[notify.webhooks]] in the config \
                 defines"
            ))),
            None => Ok(()),
        }
    }
}

/// A run ended (`retrying`: its retry is queued).
pub(super) async fn run_ended(scheduler: &Scheduler, job: &Job, run: &RunRecord, retrying: bool) {
    if let Some(notifier) = scheduler.inner.notifier.get() {
        notifier.run_ended(job, run, retrying).await;
    }
}

/// `count` fire times were recorded missed, `run` the latest.
pub(super) fn missed(scheduler: &Scheduler, job: &Job, run: &RunRecord, count: u64) {
    if let Some(notifier) = scheduler.inner.notifier.get().cloned() {
        let (job, run) = (job.clone(), run.clone());
        tokio::spawn(async move { notifier.missed(&job, &run, count).await });
    }
}

/// A run started: when its job expects it to end within a time, it is watched, and told of
/// as `long_running` if it is still going then.
pub(super) fn watch_duration(scheduler: &Scheduler, job: &Job, run: &RunRecord) {
    let Some(expected) = job
        .policies
        .notify
        .as_ref()
        .and_then(|rule| rule.expected_duration)
    else {
        return;
    };
    let Some(notifier) = scheduler.inner.notifier.get().cloned() else {
        return;
    };
    let (scheduler, job, run) = (scheduler.clone(), job.clone(), run.clone());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(expected)).await;
        let still_running = scheduler
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&run.id);
        if still_running {
            notifier.long_running(&job, &run).await;
        }
    });
}
