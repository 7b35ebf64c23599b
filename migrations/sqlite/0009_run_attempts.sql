-- Retries and queued runs (job options `retry` and `overlap`). `attempt` counts a run's tries
-- (1 for the first); `retry_of` is the run this one retries. A `queued` run waits to start
-- until `due_micros` (a retry's backoff; for a queued fire time, when it was queued) and an
-- instance place; a daemon takes it by changing its status from `queued` with a
-- compare-and-set, so each starts once.
ALTER TABLE tickd_runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tickd_runs ADD COLUMN retry_of TEXT NULL;
ALTER TABLE tickd_runs ADD COLUMN due_micros INTEGER NULL;
CREATE INDEX tickd_runs_due ON tickd_runs (status, due_micros);
