-- The view column is named for what it holds: the object the API answers for the job, as the
-- API rendered it. Whether a job is pending (added while the scheduler was stopped) becomes a
-- column of its own, so a reader need not look inside either text (as
-- migrations/sqlite/0004_views.sql). A state that is not JSON is left alone, not a failed
-- migration.
ALTER TABLE tickd_jobs RENAME COLUMN job_json TO view_json;
ALTER TABLE tickd_jobs ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;
DO $$
DECLARE
    row RECORD;
BEGIN
    FOR row IN SELECT id, job_state FROM tickd_jobs WHERE job_state LIKE '%"pending":true%' LOOP
        BEGIN
            IF (row.job_state::jsonb ->> 'pending') = 'true' THEN
                UPDATE tickd_jobs SET pending = TRUE WHERE id = row.id;
            END IF;
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END LOOP;
END $$;
