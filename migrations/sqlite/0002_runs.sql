-- One row per run of a job, including runs that did not happen (missed, skipped).
-- Times are microseconds since the epoch (UTC); scheduled_run_time also keeps its offset
-- text for display. UNIQUE(job_id, scheduled_micros) makes each (job, fire time) one run.
CREATE TABLE tickd_runs (
    id                 TEXT PRIMARY KEY NOT NULL,
    job_id             TEXT NOT NULL,
    scheduled_micros   INTEGER NULL,
    scheduled_run_time TEXT NULL,
    created_micros     INTEGER NOT NULL,
    started_micros     INTEGER NULL,
    finished_micros    INTEGER NULL,
    status             TEXT NOT NULL,
    reason             TEXT NULL,
    exit_code          INTEGER NULL,
    stdout             TEXT NOT NULL,
    stderr             TEXT NOT NULL,
    stdout_truncated   INTEGER NOT NULL,
    stderr_truncated   INTEGER NOT NULL,
    cause              TEXT NOT NULL,
    node               TEXT NOT NULL,
    UNIQUE (job_id, scheduled_micros)
);

CREATE INDEX tickd_runs_job ON tickd_runs (job_id, id);
CREATE INDEX tickd_runs_status ON tickd_runs (status, node);
CREATE INDEX tickd_runs_created ON tickd_runs (created_micros);
