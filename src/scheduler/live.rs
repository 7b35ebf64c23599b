//! A run's output for the API (`GET P/runs/<id>/output`): the live feeds of this daemon's
//! running scripts, by run id, and a follower that goes from whatever the run is now to its
//! end.
//!
//! A feed is registered when its script has started (`runner::start`) and removed, after the
//! run's record is written, by the same call that tells its watchers the end
//! ([`Scheduler::end_live`]), so a follower never sees a run that is neither live nor stored
//! as ended. The registry holds only runs in progress in this daemon: at most `max_workers`.
//!
//! A run with no feed here is read from the store: ended, its stored tails and its end come
//! at once; still `running` (waiting for a pool slot, or on another daemon of a shared store),
//! the follower says so when it is another daemon's, and looks again whenever this daemon
//! starts or ends that run, and at least every [`LOCAL_RECHECK`] ([`REMOTE_RECHECK`] for
//! another daemon's run, whose events it cannot hear), until it can follow it or it has ended.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::broadcast;

use super::{Scheduler, SchedulerError, SchedulerEvent};
use crate::executor::{LiveEnd, LiveEvent, LiveOutput, MAX_WATCHERS, OutputStream, Watch};
use crate::job::{RunId, RunRecord, RunStatus};

/// How often a follower waiting for a run of this daemon reads it again without news.
const LOCAL_RECHECK: Duration = Duration::from_secs(1);
/// How often a follower of another daemon's run reads the store.
const REMOTE_RECHECK: Duration = Duration::from_secs(2);

/// The live feeds of this daemon's running scripts. std Mutex: short sections only.
#[derive(Debug, Default)]
pub(super) struct LiveRegistry(Mutex<HashMap<RunId, Arc<LiveOutput>>>);

impl LiveRegistry {
    pub(super) fn register(&self, run_id: &RunId, feed: Arc<LiveOutput>) {
        self.map().insert(run_id.clone(), feed);
    }

    fn get(&self, run_id: &RunId) -> Option<Arc<LiveOutput>> {
        self.map().get(run_id).cloned()
    }

    fn remove(&self, run_id: &RunId) -> Option<Arc<LiveOutput>> {
        self.map().remove(run_id)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Arc<LiveOutput>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A run's output at one moment: `GET P/runs/<id>/output` without `follow`.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub run_id: RunId,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

/// What a follower hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEvent {
    /// Output, a cut, a loss, or the end (the end is the last event).
    Live(LiveEvent),
    /// The run is running on another daemon (`node`): its output comes when it has ended.
    Remote { node: String },
    /// The run's record went away (retention) before it was seen to end; nothing follows.
    Gone,
    /// The run became followable live, but has as many followers as it takes: this one
    /// stops here (the text says so); nothing follows.
    Refused(String),
}

impl Scheduler {
    /// The run ended and its record is written: its feed goes, and its watchers hear the end.
    pub(super) fn end_live(&self, run: &RunRecord) {
        if let Some(feed) = self.inner.live.remove(&run.id) {
            feed.finish(live_end(run));
        }
    }

    /// A run's output now: a running script's tails as read so far, or the stored ones.
    ///
    /// # Errors
    /// `RunNotFound`; store failures.
    pub async fn run_output(&self, run_id: &RunId) -> Result<RunOutput, SchedulerError> {
        if let Some(feed) = self.inner.live.get(run_id) {
            let [(stdout, stdout_truncated), (stderr, stderr_truncated)] = feed.texts();
            return Ok(RunOutput {
                run_id: run_id.clone(),
                status: RunStatus::Running,
                exit_code: None,
                reason: None,
                stdout,
                stderr,
                stdout_truncated,
                stderr_truncated,
            });
        }
        let run = self.get_run(run_id).await?;
        Ok(RunOutput {
            run_id: run.id,
            status: run.status,
            exit_code: run.exit_code,
            reason: run.reason,
            stdout: run.stdout,
            stderr: run.stderr,
            stdout_truncated: run.stdout_truncated,
            stderr_truncated: run.stderr_truncated,
        })
    }

    /// Follows a run's output to its end: the tails so far, what is read after them, then
    /// the end; for an ended run, its stored tails and its end at once.
    ///
    /// # Errors
    /// `RunNotFound`; `Busy` when the run has as many followers as it takes; store failures.
    /// Once the stream has begun, a failure to read the store is retried, not answered.
    pub async fn follow_output(
        &self,
        run_id: &RunId,
    ) -> Result<impl Stream<Item = OutputEvent> + Send + 'static, SchedulerError> {
        let mut follower = Follower {
            scheduler: self.clone(),
            run_id: run_id.clone(),
            phase: Phase::Looking,
            pending: VecDeque::new(),
            told_remote: false,
        };
        match self.inner.live.get(run_id) {
            Some(feed) => follower.phase = Phase::Live(watch(&feed, run_id)?),
            // 404 before the stream begins; the follower reads it again, which is cheap.
            None => drop(self.get_run(run_id).await?),
        }
        Ok(futures_util::stream::unfold(
            follower,
            |mut follower| async move { follower.next().await.map(|event| (event, follower)) },
        ))
    }
}

fn watch(feed: &LiveOutput, run_id: &RunId) -> Result<Watch, SchedulerError> {
    feed.watch().map_err(|_| {
        SchedulerError::Busy(format!(
            "Run {run_id} already has {MAX_WATCHERS} followers of its output; try again when \
             one has left"
        ))
    })
}

/// How a run's followers are told it ended.
fn live_end(run: &RunRecord) -> LiveEnd {
    LiveEnd {
        status: run.status,
        exit_code: run.exit_code,
        reason: run.reason.clone(),
    }
}

/// A stored run's tails and its end, as a follower hears them.
fn stored_events(run: &RunRecord) -> Vec<OutputEvent> {
    let mut events = Vec::new();
    for (stream, text, truncated) in [
        (OutputStream::Stdout, &run.stdout, run.stdout_truncated),
        (OutputStream::Stderr, &run.stderr, run.stderr_truncated),
    ] {
        if truncated {
            events.push(LiveEvent::Truncated { stream });
        }
        if !text.is_empty() {
            events.push(LiveEvent::Output {
                stream,
                text: text.replace("\r\n", "\n"),
            });
        }
    }
    events.push(LiveEvent::End(live_end(run)));
    events.into_iter().map(OutputEvent::Live).collect()
}

enum Phase {
    /// Neither followed live nor seen ended yet.
    Looking,
    Live(Watch),
    Done,
}

struct Follower {
    scheduler: Scheduler,
    run_id: RunId,
    phase: Phase,
    pending: VecDeque<OutputEvent>,
    told_remote: bool,
}

impl Follower {
    async fn next(&mut self) -> Option<OutputEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            match &mut self.phase {
                Phase::Done => return None,
                Phase::Live(watch) => match watch.next().await {
                    Some(event) => {
                        if matches!(event, LiveEvent::End(_)) {
                            self.phase = Phase::Done;
                        }
                        return Some(OutputEvent::Live(event));
                    }
                    // The feed went without an end: the record will say how the run ended.
                    None => self.phase = Phase::Looking,
                },
                Phase::Looking => self.look().await,
            }
        }
    }

    /// Follows the run live if it is here now, ends with its record if it has ended, or waits
    /// for news of it.
    async fn look(&mut self) {
        let scheduler = &self.scheduler;
        // Subscribed before looking: a start or end between the look and the wait is heard.
        let mut events = scheduler.subscribe();
        if let Some(feed) = scheduler.inner.live.get(&self.run_id) {
            match watch(&feed, &self.run_id) {
                Ok(watch) => self.phase = Phase::Live(watch),
                // Not waited out: the cap is the cap; the follower is told why it stops.
                Err(busy) => {
                    self.pending
                        .push_back(OutputEvent::Refused(busy.to_string()));
                    self.phase = Phase::Done;
                }
            }
            return;
        }
        let mut recheck = LOCAL_RECHECK;
        match scheduler.get_run(&self.run_id).await {
            Ok(run) if run.status != RunStatus::Running => {
                self.pending.extend(stored_events(&run));
                self.phase = Phase::Done;
                return;
            }
            Ok(run) if run.owner != scheduler.inner.node_id => {
                recheck = REMOTE_RECHECK;
                if !self.told_remote {
                    self.told_remote = true;
                    self.pending
                        .push_back(OutputEvent::Remote { node: run.node });
                    return;
                }
            }
            // This daemon's, not started yet (waiting for a pool slot) or being recorded.
            Ok(_) => {}
            Err(SchedulerError::RunNotFound(_)) => {
                self.pending.push_back(OutputEvent::Gone);
                self.phase = Phase::Done;
                return;
            }
            // The store is away: look again later.
            Err(_) => {}
        }
        let news = async {
            loop {
                match events.recv().await {
                    Ok(SchedulerEvent::RunStarted { run_id, .. }) if run_id == self.run_id => {
                        return;
                    }
                    Ok(SchedulerEvent::RunFinished { run, .. }) if run.id == self.run_id => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(recheck, news).await;
    }
}
