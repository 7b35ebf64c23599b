-- API tokens (`Authorization: Bearer tickd_<id>_<secret>`): the public id, the name and role,
-- the SHA-256 of the secret as hex (never the secret), and times in microseconds since the
-- epoch (UTC). Revoking a token deletes its row.
CREATE TABLE tickd_tokens (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL,
    secret_hash      TEXT NOT NULL,
    created_micros   INTEGER NOT NULL,
    expires_micros   INTEGER NULL,
    last_used_micros INTEGER NULL
);
