-- API tokens, as migrations/sqlite/0005_tokens.sql: the public id, the name and role, the
-- SHA-256 of the secret as hex (never the secret), times in microseconds since the epoch.
-- Revoking a token deletes its row. Text compares byte for byte (utf8mb4_bin; ids are
-- lower-case hex, so PAD SPACE cannot matter).
CREATE TABLE tickd_tokens (
    id               VARCHAR(64) NOT NULL,
    name             VARCHAR(400) NOT NULL,
    role             VARCHAR(16) NOT NULL,
    secret_hash      VARCHAR(64) NOT NULL,
    created_micros   BIGINT NOT NULL,
    expires_micros   BIGINT NULL,
    last_used_micros BIGINT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
