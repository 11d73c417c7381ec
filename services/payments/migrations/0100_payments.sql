-- payments' own tables (versions 100+; the event tables are 1-99).

CREATE TABLE payments (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    reference      TEXT NOT NULL,            -- what it pays for (a booking id, a subscription period)
    amount_cents   BIGINT NOT NULL,
    refunded_cents BIGINT NOT NULL DEFAULT 0, -- never more than amount_cents: refunds check it atomically
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL,            -- succeeded | failed
    failure_code   TEXT,                     -- card_declined | insufficient_funds | expired_card
    card_brand     TEXT NOT NULL,
    card_last4     TEXT NOT NULL,            -- the only part of a card number ever stored
    created_at     BIGINT NOT NULL
);
CREATE INDEX payments_user ON payments (user_id, created_at);
CREATE INDEX payments_reference ON payments (reference);

CREATE TABLE refunds (
    id           TEXT PRIMARY KEY,
    payment_id   TEXT NOT NULL REFERENCES payments (id),
    amount_cents BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id);

CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    max_streams INTEGER NOT NULL
);
INSERT INTO plans (id, name, price_cents, currency, max_streams) VALUES
    ('basic', 'Basic', 799, 'USD', 1),
    ('standard', 'Standard', 1299, 'USD', 2),
    ('premium', 'Premium', 1899, 'USD', 4);

CREATE TABLE subscriptions (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL,
    plan_id              TEXT NOT NULL REFERENCES plans (id),
    status               TEXT NOT NULL,      -- active | past_due | cancelled
    current_period_start BIGINT NOT NULL,
    current_period_end   BIGINT NOT NULL,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
    payment_token        TEXT NOT NULL,      -- the processor's reusable token, not the card
    card_last4           TEXT NOT NULL,
    renewal_lease_until  BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
-- One live subscription per user, decided by the database even under concurrent requests.
CREATE UNIQUE INDEX subscriptions_one_live ON subscriptions (user_id) WHERE status IN ('active', 'past_due');
CREATE INDEX subscriptions_due ON subscriptions (current_period_end) WHERE status = 'active';
