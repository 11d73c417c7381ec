-- showtimes' own tables (versions 100+; the event tables are 1-99).

CREATE TABLE theaters (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    city       TEXT NOT NULL,
    address    TEXT NOT NULL,
    timezone   TEXT NOT NULL,                -- IANA name, e.g. Europe/Paris
    created_at BIGINT NOT NULL
);

CREATE TABLE rooms (
    id               TEXT PRIMARY KEY,
    theater_id       TEXT NOT NULL REFERENCES theaters (id),
    name             TEXT NOT NULL,
    row_labels       TEXT NOT NULL,          -- JSON ["A", "B", ...], front to back
    seats_per_row    INTEGER NOT NULL,
    premium_rows     TEXT NOT NULL,          -- JSON ["E"]
    accessible_seats TEXT NOT NULL,          -- JSON ["A1"]
    capacity         INTEGER NOT NULL,
    -- Bumped by every scheduling transaction: updating the room row first makes two
    -- transactions scheduling in one room take turns, so the overlap check cannot race.
    schedule_version BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    CONSTRAINT rooms_theater_name_key UNIQUE (theater_id, name)
);

CREATE TABLE showtimes (
    id           TEXT PRIMARY KEY,
    movie_id     TEXT NOT NULL,
    movie_title  TEXT NOT NULL,              -- as the catalog named it when scheduled
    room_id      TEXT NOT NULL REFERENCES rooms (id),
    theater_id   TEXT NOT NULL,
    starts_at    BIGINT NOT NULL,            -- epoch ms
    ends_at      BIGINT NOT NULL,            -- start + runtime + 15 minutes of cleaning
    price_cents  BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,              -- scheduled | cancelled
    created_at   BIGINT NOT NULL,
    cancelled_at BIGINT
);
CREATE INDEX showtimes_room_time ON showtimes (room_id, starts_at);
CREATE INDEX showtimes_movie_time ON showtimes (movie_id, starts_at);
CREATE INDEX showtimes_theater_time ON showtimes (theater_id, starts_at);
CREATE INDEX showtimes_time ON showtimes (starts_at);
