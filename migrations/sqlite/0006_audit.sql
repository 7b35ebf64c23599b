-- The audit log: one row per change made through the API and per refused attempt (see
-- src/store/audit.rs). `id` is a UUIDv7 of the record's time, so it orders and pages the log
-- (newest first, `id < before`); `at_micros` (µs since the epoch, UTC) is what retention
-- deletes by. `actor` and `target` are kept to 191 characters; NULL where there was none.
CREATE TABLE tickd_audit (
    id         TEXT PRIMARY KEY NOT NULL,
    at_micros  INTEGER NOT NULL,
    actor      TEXT NULL,
    credential TEXT NULL,
    source     TEXT NOT NULL,
    method     TEXT NOT NULL,
    route      TEXT NOT NULL,
    target     TEXT NULL,
    outcome    TEXT NOT NULL,
    status     INTEGER NOT NULL
);

CREATE INDEX tickd_audit_at ON tickd_audit (at_micros);
CREATE INDEX tickd_audit_actor ON tickd_audit (actor, id);
CREATE INDEX tickd_audit_target ON tickd_audit (target, id);
