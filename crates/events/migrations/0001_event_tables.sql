-- The event tables every service has, in its own database.
-- Versions below 100 belong to this crate; a service's own migrations start at 100.

-- Events written in the same transaction as the state change they describe; the relay publishes
-- them and marks them sent. lease_until lets several relay replicas share the table.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,          -- the event id (UUID v7: sorts by creation)
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,             -- the CloudEvent as JSON
    created_at      BIGINT NOT NULL,           -- epoch ms
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Events this service has handled, written in the same transaction as their effect, so a
-- redelivered event has no second effect.
CREATE TABLE inbox (
    event_id   TEXT NOT NULL,
    consumer   TEXT NOT NULL,
    event_type TEXT NOT NULL,
    handled_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, consumer)
);

-- In-process delivery only (the broker has its own retry and dead-letter queues): events whose
-- handler failed, retried with backoff until max attempts, then kept as dead letters.
CREATE TABLE event_retries (
    event_id        TEXT NOT NULL,
    consumer        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT NOT NULL,
    dead            INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (event_id, consumer)
);
