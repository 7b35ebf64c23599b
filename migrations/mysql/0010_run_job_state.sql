-- A queued run's job as it was when the run was queued (the job's portable state, as
-- tickd_jobs.job_state): a retry of a date job, whose trigger has run out and which is gone
-- from tickd_jobs, still knows what to run. NULL for every other run, and cleared when a
-- queued run starts.
ALTER TABLE tickd_runs ADD COLUMN job_state MEDIUMTEXT NULL;
