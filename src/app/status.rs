//! systemd's `STATUS=` line (`systemctl status tickd`): the scheduler's state, the jobs in
//! the store and the runs in flight. The state and the runs are read every
//! [`LOOK_EVERY`] (memory only) and a line is sent when they change; the job count is a store
//! query, asked every [`COUNT_EVERY`], when a line is sent anyway.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::scheduler::{RunState, Scheduler};
use crate::systemd::Notifier;

/// How often the state and the runs in flight are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// How often the jobs are counted (and the line sent, changed or not).
const COUNT_EVERY: Duration = Duration::from_secs(60);

/// Starts the task (nothing when systemd is not listening); abort it at shutdown.
pub(super) fn spawn(scheduler: Scheduler, notifier: Notifier) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !notifier.enabled() {
            return;
        }
        let mut jobs = None;
        let mut shown = String::new();
        let mut counted_at: Option<tokio::time::Instant> = None;
        loop {
            if counted_at.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
                jobs = match scheduler.job_count().await {
                    Ok(count) => Some(count),
                    Err(error) => {
                        tracing::debug!("Counting jobs for systemd's status failed: {error}");
                        None
                    }
                };
                counted_at = Some(tokio::time::Instant::now());
                shown.clear(); // sent again, changed or not
            }
            let line = status_line(scheduler.state(), jobs, scheduler.running_count());
            if line != shown {
                notifier.status(&line);
                shown = line;
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    })
}

/// `Scheduler running; 12 jobs, 1 running`.
fn status_line(state: RunState, jobs: Option<u64>, running: u32) -> String {
    let state = match state {
        RunState::Running => "running",
        RunState::Paused => "paused",
        RunState::Stopped => "stopped",
    };
    let jobs = match jobs {
        Some(1) => "1 job".to_owned(),
        Some(count) => format!("{count} jobs"),
        None => "jobs unknown (store unavailable)".to_owned(),
    };
    format!("Scheduler {state}; {jobs}, {running} running")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_the_state_the_jobs_and_the_runs() {
        assert_eq!(
            status_line(RunState::Running, Some(12), 1),
            "Scheduler running; 12 jobs, 1 running"
        );
        assert_eq!(
            status_line(RunState::Paused, Some(1), 0),
            "Scheduler paused; 1 job, 0 running"
        );
        assert_eq!(
            status_line(RunState::Stopped, None, 0),
            "Scheduler stopped; jobs unknown (store unavailable), 0 running"
        );
    }
}
