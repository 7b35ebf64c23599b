-- One row per run of a job, as migrations/sqlite/0002_runs.sql: including runs that did not
-- happen (missed, skipped). Times are microseconds since the epoch (UTC); scheduled_run_time
-- also keeps its offset text for display. UNIQUE(job_id, scheduled_micros) makes each
-- (job, fire time) one run, whichever daemon takes it. `owner` is the daemon
-- (tickd_nodes.id) that runs it, so a survivor can tell a run whose daemon died.
-- Text compares byte for byte, as tickd_jobs (see 0001_jobs.sql).
CREATE TABLE tickd_runs (
    id                 VARCHAR(191) NOT NULL,
    job_id             VARCHAR(191) NOT NULL,
    scheduled_micros   BIGINT NULL,
    scheduled_run_time VARCHAR(64) NULL,
    created_micros     BIGINT NOT NULL,
    started_micros     BIGINT NULL,
    finished_micros    BIGINT NULL,
    status             VARCHAR(32) NOT NULL,
    reason             TEXT NULL,
    exit_code          INT NULL,
    stdout             MEDIUMTEXT NOT NULL,
    stderr             MEDIUMTEXT NOT NULL,
    stdout_truncated   BOOLEAN NOT NULL,
    stderr_truncated   BOOLEAN NOT NULL,
    cause              VARCHAR(32) NOT NULL,
    node               VARCHAR(255) NOT NULL,
    owner              VARCHAR(191) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY tickd_runs_fire (job_id, scheduled_micros),
    INDEX tickd_runs_job (job_id, id),
    INDEX tickd_runs_status (status, owner),
    INDEX tickd_runs_created (created_micros)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The daemons sharing this store, with their heartbeat.
CREATE TABLE tickd_nodes (
    id               VARCHAR(191) NOT NULL,
    host             VARCHAR(255) NOT NULL,
    pid              BIGINT NOT NULL,
    started_micros   BIGINT NOT NULL,
    heartbeat_micros BIGINT NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

SET @tickd_collation = COALESCE(
    (SELECT COLLATION_NAME FROM information_schema.COLLATIONS
     WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin') LIMIT 1),
    'utf8mb4_bin');
SET @tickd_ddl = CONCAT('ALTER TABLE tickd_runs CONVERT TO CHARACTER SET utf8mb4 COLLATE ',
    @tickd_collation);
PREPARE tickd_ddl FROM @tickd_ddl;
EXECUTE tickd_ddl;
DEALLOCATE PREPARE tickd_ddl;
SET @tickd_ddl = CONCAT('ALTER TABLE tickd_nodes CONVERT TO CHARACTER SET utf8mb4 COLLATE ',
    @tickd_collation);
PREPARE tickd_ddl FROM @tickd_ddl;
EXECUTE tickd_ddl;
DEALLOCATE PREPARE tickd_ddl;
