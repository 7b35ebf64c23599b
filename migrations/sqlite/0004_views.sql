-- The view column is named for what it holds: the object the API answers for the job, as the
-- API rendered it (NULL where none was kept: the reader renders it from the state). Whether a
-- job is pending (added while the scheduler was stopped) becomes a column of its own, so a
-- reader need not look inside either text.
ALTER TABLE tickd_jobs RENAME COLUMN job_json TO view_json;
ALTER TABLE tickd_jobs ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
UPDATE tickd_jobs SET pending = 1
WHERE (CASE WHEN json_valid(job_state) THEN json_extract(job_state, '$.pending') END) = 1;
