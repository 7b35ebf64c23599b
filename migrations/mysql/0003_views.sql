-- The view column is named for what it holds: the object the API answers for the job, as the
-- API rendered it. Whether a job is pending (added while the scheduler was stopped) becomes a
-- column of its own, so a reader need not look inside either text (as
-- migrations/sqlite/0004_views.sql).
ALTER TABLE tickd_jobs
    CHANGE job_json view_json MEDIUMTEXT NULL,
    ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE tickd_jobs SET pending = TRUE
WHERE (CASE WHEN JSON_VALID(job_state) THEN JSON_VALUE(job_state, '$.pending') END) = 'true';
