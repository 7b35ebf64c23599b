-- The API lists jobs by next fire instant, ties by id, jobs without one (paused, pending)
-- last by id. An index on exactly that order lets `GET P/jobs` stream the rows from one
-- statement without sorting them (or holding them) first. It also serves the scheduler's
-- reads (the earliest next fire time; the due jobs, a range of it), so it replaces the index
-- on `next_run_time` alone: every insert maintains one index fewer.
CREATE INDEX tickd_jobs_listing ON tickd_jobs (next_run_time IS NULL, next_run_time, id);
DROP INDEX tickd_jobs_next_run_time;
