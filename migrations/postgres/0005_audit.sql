-- The audit log, as migrations/sqlite/0006_audit.sql: one row per change made through the API
-- and per refused attempt. `id` (a UUIDv7 of the record's time) orders and pages it;
-- `at_micros` is what retention deletes by. Ids, actors and targets are COLLATE "C" (byte
-- order, as in SQLite).
CREATE TABLE tickd_audit (
    id         TEXT COLLATE "C" PRIMARY KEY,
    at_micros  BIGINT NOT NULL,
    actor      TEXT COLLATE "C" NULL,
    credential TEXT NULL,
    source     TEXT NOT NULL,
    method     TEXT NOT NULL,
    route      TEXT NOT NULL,
    target     TEXT COLLATE "C" NULL,
    outcome    TEXT NOT NULL,
    status     INTEGER NOT NULL
);

CREATE INDEX tickd_audit_at ON tickd_audit (at_micros);
CREATE INDEX tickd_audit_actor ON tickd_audit (actor, id);
CREATE INDEX tickd_audit_target ON tickd_audit (target, id);
