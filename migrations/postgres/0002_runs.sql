-- One row per run of a job, as migrations/sqlite/0002_runs.sql: including runs that did not
-- happen (missed, skipped). Times are microseconds since the epoch (UTC); scheduled_run_time
-- also keeps its offset text for display. UNIQUE(job_id, scheduled_micros) makes each
-- (job, fire time) one run, whichever daemon takes it. `owner` is the daemon
-- (tickd_nodes.id) that runs it, so a survivor can tell a run whose daemon died.
-- Ids are COLLATE "C" (byte order: run ids page the history with `id < before`).
CREATE TABLE tickd_runs (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    job_id             TEXT COLLATE "C" NOT NULL,
    scheduled_micros   BIGINT NULL,
    scheduled_run_time TEXT NULL,
    created_micros     BIGINT NOT NULL,
    started_micros     BIGINT NULL,
    finished_micros    BIGINT NULL,
    status             TEXT NOT NULL,
    reason             TEXT NULL,
    exit_code          INTEGER NULL,
    stdout             TEXT NOT NULL,
    stderr             TEXT NOT NULL,
    stdout_truncated   BOOLEAN NOT NULL,
    stderr_truncated   BOOLEAN NOT NULL,
    cause              TEXT NOT NULL,
    node               TEXT NOT NULL,
    owner              TEXT COLLATE "C" NOT NULL,
    UNIQUE (job_id, scheduled_micros)
);

CREATE INDEX tickd_runs_job ON tickd_runs (job_id, id);
CREATE INDEX tickd_runs_status ON tickd_runs (status, owner);
CREATE INDEX tickd_runs_created ON tickd_runs (created_micros);

-- The daemons sharing this store, with their heartbeat.
CREATE TABLE tickd_nodes (
    id               TEXT COLLATE "C" PRIMARY KEY,
    host             TEXT NOT NULL,
    pid              BIGINT NOT NULL,
    started_micros   BIGINT NOT NULL,
    heartbeat_micros BIGINT NOT NULL
);
