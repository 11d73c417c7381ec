-- booking's own tables (versions 100+; the event tables are 1-99).

CREATE TABLE bookings (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    showtime_id  TEXT NOT NULL,
    movie_id     TEXT NOT NULL,
    seats        TEXT NOT NULL,              -- JSON ["E5", "E6"]
    status       TEXT NOT NULL,              -- held | confirmed | cancelled | expired
    total_cents  BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,            -- the hold's end (epoch ms)
    starts_at    BIGINT NOT NULL,            -- the show's start, for the cancellation rule
    payment_id   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX bookings_user ON bookings (user_id, created_at);
CREATE INDEX bookings_showtime ON bookings (showtime_id);
CREATE INDEX bookings_expiring ON bookings (expires_at) WHERE status = 'held';

-- One row per taken seat. The primary key on (showtime, seat) makes a double sale impossible by
-- construction, across replicas: the second claim fails in the database.
CREATE TABLE seat_claims (
    showtime_id TEXT NOT NULL,
    seat        TEXT NOT NULL,
    booking_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,               -- hold | sale
    expires_at  BIGINT NOT NULL,             -- holds only; a sale never expires (0)
    PRIMARY KEY (showtime_id, seat)
);
CREATE INDEX seat_claims_booking ON seat_claims (booking_id);

CREATE TABLE tickets (
    id         TEXT PRIMARY KEY,
    booking_id TEXT NOT NULL REFERENCES bookings (id),
    seat       TEXT NOT NULL,
    code       TEXT NOT NULL UNIQUE,         -- 128 random bits: unguessable
    created_at BIGINT NOT NULL
);
CREATE INDEX tickets_booking ON tickets (booking_id);
