-- One row per job, as migrations/sqlite/0001_jobs.sql: the id, the next fire instant as an
-- indexed number (microseconds since the epoch, UTC; NULL = paused), the job's state as
-- versioned JSON text, and `version` for compare-and-set between daemons sharing the database.
-- Ids are COLLATE "C": they compare and sort byte for byte whatever the database's locale, as
-- in SQLite.
CREATE TABLE tickd_jobs (
    id            TEXT COLLATE "C" PRIMARY KEY,
    next_run_time BIGINT NULL,
    job_state     TEXT NOT NULL,
    job_json      TEXT NULL,
    version       BIGINT NOT NULL DEFAULT 0
);

-- The claim's and the listing's order: due rows are read in index order up to the limit.
CREATE INDEX tickd_jobs_next_run_time ON tickd_jobs (next_run_time, id);
