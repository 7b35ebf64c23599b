//! What the scheduler tells the world: APScheduler's events (`EVENT_JOB_MISSED`, ...), on a
//! broadcast channel. Tests listen to it; the run records in the store are the durable form.

use chrono::{DateTime, FixedOffset, Utc};

use crate::job::{JobId, RunId, RunRecord};

/// One thing that happened to a job.
#[derive(Debug, Clone)]
pub enum SchedulerEvent {
    /// A job entered the store.
    JobAdded { job_id: JobId },
    /// A job left the store (deleted, or its trigger ran out).
    JobRemoved { job_id: JobId },
    /// A run was handed to the executor's pool.
    JobSubmitted {
        job_id: JobId,
        run_id: RunId,
        scheduled: DateTime<FixedOffset>,
    },
    /// A run started later than `misfire_grace_time` allows and was skipped.
    JobMissed {
        job_id: JobId,
        run_id: RunId,
        scheduled: DateTime<FixedOffset>,
    },
    /// A run was skipped because `max_instances` runs were in flight.
    JobMaxInstances {
        job_id: JobId,
        run_id: RunId,
        scheduled: DateTime<FixedOffset>,
    },
    /// A fire was recorded and not run: the scheduler is in shadow mode.
    JobShadowed {
        job_id: JobId,
        run_id: RunId,
        scheduled: DateTime<FixedOffset>,
    },
    /// A script started.
    RunStarted {
        job_id: JobId,
        run_id: RunId,
        /// The fire time it was late from (the metrics' lateness): none for run-now and
        /// retries, nor for a fire time that waited in a queue.
        scheduled: Option<DateTime<FixedOffset>>,
        /// When the script was spawned.
        started_at: DateTime<Utc>,
    },
    /// A run ended; the record is as stored.
    RunFinished { job_id: JobId, run: Box<RunRecord> },
}
