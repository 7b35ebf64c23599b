-- One row per job, as migrations/sqlite/0001_jobs.sql: the id, the next fire instant as an
-- indexed number (microseconds since the epoch, UTC; NULL = paused), the job's state as
-- versioned JSON text, and `version` for compare-and-set between daemons sharing the database.
--
-- Ids are VARCHAR(191): the longest utf8mb4 key every InnoDB row format can index. Every text
-- column compares byte for byte, as in SQLite: `Job1` and `job1` are two jobs, and ids sort
-- in byte order. utf8mb4_bin alone is not quite that: it is a PAD SPACE collation, so `a` and
-- `a ` would be one key. Where the server has a NO PAD binary collation (MariaDB:
-- utf8mb4_nopad_bin; MySQL 8: utf8mb4_0900_bin) the table is converted to it below.
CREATE TABLE tickd_jobs (
    id            VARCHAR(191) NOT NULL,
    next_run_time BIGINT NULL,
    job_state     MEDIUMTEXT NOT NULL,
    job_json      MEDIUMTEXT NULL,
    version       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    -- (next_run_time, id) is the claim's and the listing's order: the claim reads due rows in
    -- index order and stops at its limit, so it locks only the rows it takes.
    INDEX tickd_jobs_next_run_time (next_run_time, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

SET @tickd_collation = COALESCE(
    (SELECT COLLATION_NAME FROM information_schema.COLLATIONS
     WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin') LIMIT 1),
    'utf8mb4_bin');
SET @tickd_ddl = CONCAT('ALTER TABLE tickd_jobs CONVERT TO CHARACTER SET utf8mb4 COLLATE ',
    @tickd_collation);
PREPARE tickd_ddl FROM @tickd_ddl;
EXECUTE tickd_ddl;
DEALLOCATE PREPARE tickd_ddl;
