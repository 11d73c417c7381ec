-- loyalty's own tables (versions 100+; the event tables are 1-99).

-- One row per member: the balance, lifetime points and tier, changed only together with a
-- ledger row in the same transaction, so points always equals the sum of the ledger.
CREATE TABLE accounts (
    user_id          TEXT PRIMARY KEY,
    points           BIGINT NOT NULL,       -- may go below 0 when a refund takes back points already spent
    lifetime_points  BIGINT NOT NULL,       -- earned minus reversed; redemptions do not lower it
    tier             TEXT NOT NULL,         -- bronze | silver | gold | platinum, from lifetime_points
    updated_at       BIGINT NOT NULL
);

-- Every movement of points.
CREATE TABLE ledger (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,           -- earned | reversed | redeemed
    points         BIGINT NOT NULL,         -- signed: + earned, - reversed or redeemed
    balance_after  BIGINT NOT NULL,
    booking_id     TEXT,
    redemption_id  TEXT,
    description    TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX ledger_user ON ledger (user_id, created_at);

-- What each booking earned, so a reversal takes back exactly that (whatever the tier is by
-- then), and what became of it. A cancellation that arrives before its confirmation leaves a
-- `void` row: the late confirmation then earns nothing.
CREATE TABLE booking_points (
    booking_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    tier        TEXT NOT NULL,              -- the tier whose multiplier applied
    points      BIGINT NOT NULL,            -- what it earned (0 when void)
    status      TEXT NOT NULL,              -- awarded | reversed | void
    updated_at  BIGINT NOT NULL
);

CREATE TABLE rewards (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    points_cost  BIGINT NOT NULL,
    stock        BIGINT,                    -- how many are left; NULL: no limit
    active       INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE redemptions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    reward_id     TEXT NOT NULL,
    code          TEXT NOT NULL UNIQUE,
    points_spent  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    used_at       BIGINT                    -- when the code was taken at the counter
);
CREATE INDEX redemptions_user ON redemptions (user_id, created_at);
