-- The notification outbox (issue 19): one row per webhook delivery owed, written beside the
-- runs it is about, delivered from here. A daemon claims a due row for a while
-- (`claimed_by`, `claimed_until`: compare-and-set) before it sends, so daemons sharing the
-- store deliver each once. The webhook's URL and secret stay in the config; `webhook` names
-- it. `id` (a UUIDv7) orders and pages the listing.
CREATE TABLE tickd_notifications (
    id               VARCHAR(64) NOT NULL,
    created_micros   BIGINT NOT NULL,
    event            VARCHAR(32) NOT NULL,
    job_id           VARCHAR(191) NOT NULL,
    run_id           VARCHAR(64) NOT NULL,
    webhook          VARCHAR(191) NOT NULL,
    body             MEDIUMTEXT NOT NULL,
    status           VARCHAR(16) NOT NULL,
    attempts         INT NOT NULL,
    next_micros      BIGINT NULL,
    last_error       TEXT NULL,
    delivered_micros BIGINT NULL,
    claimed_by       VARCHAR(64) NULL,
    claimed_until    BIGINT NULL,
    PRIMARY KEY (id),
    INDEX tickd_notifications_due (status, next_micros),
    INDEX tickd_notifications_created (created_micros)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
