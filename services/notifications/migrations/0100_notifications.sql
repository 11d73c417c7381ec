-- notifications' own tables (versions 100+; the event tables are 1-99).

-- Who to write to, from user.registered (or asked of identity once, when an event for someone
-- comes first).
CREATE TABLE recipients (
    user_id     TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    name        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- What each user chose: the email kinds turned off, and a phone for SMS.
CREATE TABLE preferences (
    user_id      TEXT PRIMARY KEY,
    email_off    TEXT NOT NULL,             -- comma-separated kinds the user turned off
    sms_phone    TEXT,                      -- E.164, null: no SMS
    sms_on       INTEGER NOT NULL,          -- booking confirmations by SMS too
    updated_at   BIGINT NOT NULL
);

-- The in-app feed: one row per event that concerns a user, exactly once (the inbox).
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    data        TEXT NOT NULL,              -- the event's payload, JSON, for links in the UI
    created_at  BIGINT NOT NULL,
    read_at     BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

-- Every message to send (email, SMS), written with the feed row, sent by the delivery worker
-- outside any transaction: retried with backoff, never blocking other events; after the last
-- try `failed`, for admins to see and send again.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    notification_id  TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    channel          TEXT NOT NULL,         -- email | sms
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,         -- pending | sending | sent | failed
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT NOT NULL,       -- a replica's claim while it sends
    recipient        TEXT,                  -- the address or number it went to
    last_error       TEXT,
    provider_id      TEXT,                  -- the SMTP queue id / SMS message id
    event_at         BIGINT NOT NULL,       -- when the event that caused it happened
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_status ON deliveries (status, created_at);
