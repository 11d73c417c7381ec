-- analytics' own tables (versions 100+; the event tables are 1-99). Every table but `archive`
-- is a read model: derived from the archived events alone, deleted and refilled by a rebuild.
-- Each row is keyed by the business fact it records (a payment, a refund, a booking, a play),
-- and each event only sets the columns it knows, so events applied twice or in any order leave
-- the same rows. Times are Unix milliseconds; days are `YYYY-MM-DD` on the theater's clock.

-- Every event received, as it came.
CREATE TABLE archive (
    event_id     TEXT PRIMARY KEY,          -- UUID v7: sorts by when it was made
    event_type   TEXT NOT NULL,
    event_time   BIGINT NOT NULL,
    payload      TEXT NOT NULL,             -- the whole CloudEvent, JSON
    received_at  BIGINT NOT NULL
);

CREATE TABLE movies (
    movie_id    TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    genres      TEXT NOT NULL,              -- JSON array
    changed_at  BIGINT NOT NULL,            -- the event time of the change shown (0: none yet)
    deleted     INTEGER NOT NULL
);

CREATE TABLE showtimes (
    showtime_id  TEXT PRIMARY KEY,
    movie_id     TEXT NOT NULL,
    theater_id   TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    starts_at    BIGINT NOT NULL,
    local_day    TEXT NOT NULL,             -- the day it starts, on the theater's clock
    capacity     BIGINT NOT NULL,
    price_cents  BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    cancelled    INTEGER NOT NULL
);
CREATE INDEX showtimes_day ON showtimes (local_day);
CREATE INDEX showtimes_movie ON showtimes (movie_id);

-- One row per booking that was confirmed or ended (a hold that expired is kept for the
-- booking's showtime, so its payment, if any, is still placed in a theater).
CREATE TABLE bookings (
    booking_id      TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    showtime_id     TEXT NOT NULL,
    movie_id        TEXT NOT NULL,
    tickets         BIGINT NOT NULL,
    total_cents     BIGINT NOT NULL,        -- 0 until its confirmation is seen
    currency        TEXT NOT NULL,
    confirmed_at    BIGINT,
    cancelled_at    BIGINT,                 -- cancelled, refunded or expired
    refunded_cents  BIGINT NOT NULL,
    end_reason      TEXT,
    theater_id      TEXT,                   -- known once its showtime is
    local_day       TEXT                    -- the day it was confirmed, on the theater's clock
);
CREATE INDEX bookings_day ON bookings (local_day);
CREATE INDEX bookings_confirmed ON bookings (confirmed_at);
CREATE INDEX bookings_showtime ON bookings (showtime_id);
CREATE INDEX bookings_movie ON bookings (movie_id);
CREATE INDEX bookings_user ON bookings (user_id);

-- Money that moved: one row per capture (`payment.succeeded`) and per refund.
CREATE TABLE money (
    id            TEXT PRIMARY KEY,         -- the payment's id, or the refund's
    kind          TEXT NOT NULL,            -- capture | refund
    payment_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    reference     TEXT NOT NULL,
    booking_id    TEXT,                     -- when the reference is a booking's
    amount_cents  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    at            BIGINT NOT NULL,
    theater_id    TEXT,                     -- a booking's, once known
    local_day     TEXT NOT NULL             -- on the theater's clock; UTC until it is known
);
CREATE INDEX money_day ON money (local_day);
CREATE INDEX money_at ON money (at);
CREATE INDEX money_booking ON money (booking_id);
CREATE INDEX money_user ON money (user_id);

-- One row per playback session.
CREATE TABLE plays (
    session_id        TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    movie_id          TEXT NOT NULL,
    started_at        BIGINT,
    stopped_at        BIGINT,
    position_seconds  BIGINT NOT NULL,
    duration_seconds  BIGINT NOT NULL,
    completed         INTEGER NOT NULL,
    day               TEXT NOT NULL         -- UTC day it started (or stopped, if its start is unseen)
);
CREATE INDEX plays_day ON plays (day);
CREATE INDEX plays_movie ON plays (movie_id);
CREATE INDEX plays_user ON plays (user_id);

-- Each subscription event: a subscription is active at t when its latest event at or before t
-- says it is paid beyond t.
CREATE TABLE subscription_events (
    event_id         TEXT PRIMARY KEY,
    subscription_id  TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    plan_id          TEXT NOT NULL,
    kind             TEXT NOT NULL,         -- activated | cancelled
    at               BIGINT NOT NULL,
    period_end       BIGINT NOT NULL
);
CREATE INDEX subscription_events_sub ON subscription_events (subscription_id, at);
CREATE INDEX subscription_events_at ON subscription_events (at);

-- Per user: when they registered and were last seen doing something.
CREATE TABLE users (
    user_id         TEXT PRIMARY KEY,
    registered_at   BIGINT,
    last_active_at  BIGINT
);

-- Per user and currency: what they paid, less what was refunded (the spend segments).
CREATE TABLE spend (
    user_id    TEXT NOT NULL,
    currency   TEXT NOT NULL,
    net_cents  BIGINT NOT NULL,
    PRIMARY KEY (user_id, currency)
);

-- Rebuilds asked for: each runs in the background, in one transaction.
CREATE TABLE rebuilds (
    id           TEXT PRIMARY KEY,
    status       TEXT NOT NULL,             -- running | done | failed
    events       BIGINT NOT NULL,           -- archived events replayed
    took_ms      BIGINT NOT NULL,
    error        TEXT,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
