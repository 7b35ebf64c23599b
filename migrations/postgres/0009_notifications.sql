-- The notification outbox (issue 19): one row per webhook delivery owed, written beside the
-- runs it is about, delivered from here. A daemon claims a due row for a while
-- (`claimed_by`, `claimed_until`: compare-and-set) before it sends, so daemons sharing the
-- store deliver each once. The webhook's URL and secret stay in the config; `webhook` names
-- it. `id` (a UUIDv7) orders and pages the listing.
CREATE TABLE tickd_notifications (
    id              TEXT COLLATE "C" PRIMARY KEY,
    created_micros  BIGINT NOT NULL,
    event           TEXT NOT NULL,
    job_id          TEXT COLLATE "C" NOT NULL,
    run_id          TEXT COLLATE "C" NOT NULL,
    webhook         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_micros     BIGINT NULL,
    last_error      TEXT NULL,
    delivered_micros BIGINT NULL,
    claimed_by      TEXT NULL,
    claimed_until   BIGINT NULL
);

CREATE INDEX tickd_notifications_due ON tickd_notifications (status, next_micros);
CREATE INDEX tickd_notifications_created ON tickd_notifications (created_micros);
