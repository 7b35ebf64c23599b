-- API tokens, as migrations/sqlite/0005_tokens.sql: the public id, the name and role, the
-- SHA-256 of the secret as hex (never the secret), times in microseconds since the epoch.
-- Revoking a token deletes its row.
CREATE TABLE tickd_tokens (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL,
    secret_hash      TEXT NOT NULL,
    created_micros   BIGINT NOT NULL,
    expires_micros   BIGINT NULL,
    last_used_micros BIGINT NULL
);
