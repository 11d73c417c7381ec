-- Commands this service owes another one (a refund it must have payments make, say), written in
-- the same transaction as the state change that owes them. A relay carries each out, retrying
-- with backoff until the other side acknowledges; nothing is ever dropped. `key` makes a command
-- idempotent: owing the same thing twice (a redelivered event, a retried request) is one row.
CREATE TABLE commands (
    id              TEXT PRIMARY KEY,          -- UUID v7: sorts by creation
    kind            TEXT NOT NULL,             -- e.g. payments.close-reference
    key             TEXT NOT NULL UNIQUE,      -- what makes it the same command
    payload         TEXT NOT NULL,             -- JSON
    created_at      BIGINT NOT NULL,           -- epoch ms
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    done_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX commands_pending ON commands (next_attempt_at) WHERE done_at IS NULL;
