-- The audit log, as migrations/sqlite/0006_audit.sql: one row per change made through the API
-- and per refused attempt. `id` (a UUIDv7 of the record's time) orders and pages it;
-- `at_micros` is what retention deletes by. `actor` and `target` are kept to 191 characters
-- (what an index of utf8mb4 text holds). Text compares byte for byte, as tickd_runs.
CREATE TABLE tickd_audit (
    id         VARCHAR(64) NOT NULL,
    at_micros  BIGINT NOT NULL,
    actor      VARCHAR(191) NULL,
    credential VARCHAR(32) NULL,
    source     VARCHAR(255) NOT NULL,
    method     VARCHAR(32) NOT NULL,
    route      TEXT NOT NULL,
    target     VARCHAR(191) NULL,
    outcome    VARCHAR(16) NOT NULL,
    status     INT NOT NULL,
    PRIMARY KEY (id),
    INDEX tickd_audit_at (at_micros),
    INDEX tickd_audit_actor (actor, id),
    INDEX tickd_audit_target (target, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

SET @tickd_collation = COALESCE(
    (SELECT COLLATION_NAME FROM information_schema.COLLATIONS
     WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin') LIMIT 1),
    'utf8mb4_bin');
SET @tickd_ddl = CONCAT('ALTER TABLE tickd_audit CONVERT TO CHARACTER SET utf8mb4 COLLATE ',
    @tickd_collation);
PREPARE tickd_ddl FROM @tickd_ddl;
EXECUTE tickd_ddl;
DEALLOCATE PREPARE tickd_ddl;
