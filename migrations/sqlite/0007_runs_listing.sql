-- `GET P/runs` lists runs of every job newest first (by id), often of one status or a few
-- ("what failed"): this index reads those rows in order and stops at the page's end, rather
-- than walking every newer run of another status. A job's runs use tickd_runs_job (job_id,
-- id), a time range tickd_runs_created, the unfiltered listing the primary key.
CREATE INDEX tickd_runs_status_id ON tickd_runs (status, id);
