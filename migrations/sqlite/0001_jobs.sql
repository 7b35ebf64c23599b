-- One row per job, as APScheduler's SQLAlchemyJobStore shapes it: the id, the next fire
-- instant as an indexed number (microseconds since the epoch, UTC; NULL = paused) and the
-- job's state as versioned JSON text, and its rendered job object (the API's view, so listing
-- needs no decoding; NULL when a writer did not render it). `version` grows with every write, for compare-and-set
-- between daemons sharing the database.
CREATE TABLE tickd_jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    next_run_time INTEGER NULL,
    job_state     TEXT NOT NULL,
    job_json      TEXT NULL,
    version       INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX tickd_jobs_next_run_time ON tickd_jobs (next_run_time);
