-- Idempotency-Key handling (platform::idempotency), for every service that offers it: the first
-- answer to a key is kept and replayed; the same key with another body is refused. Keys are
-- scoped by caller and route so two users' keys never meet.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,                    -- null while the first request is still running
    body         TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
