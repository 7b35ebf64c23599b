-- A function job's return value (`func = "module:callable"`), as JSON text of at most 64 KiB;
-- NULL for scripts and for calls that did not return.
ALTER TABLE tickd_runs ADD COLUMN result TEXT;
