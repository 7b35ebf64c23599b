-- A function job's return value (`func = "module:callable"`), as JSON text of at most 64 KiB
-- (MEDIUMTEXT: TEXT holds one byte less); NULL for scripts and for calls that did not return.
ALTER TABLE tickd_runs ADD COLUMN result MEDIUMTEXT NULL;
