-- recommendations' own tables (versions 100+; the event tables are 1-99): the signals the model
-- is built from, each merged from events in any order (a booking stays booked, how far someone
-- watched only grows, a rating is the latest version's), so a replica loads the same state
-- whatever order the events came in.

CREATE TABLE movies (
    movie_id    TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    genres      TEXT NOT NULL,              -- JSON array
    director    TEXT NOT NULL,
    cast_names  TEXT NOT NULL,              -- JSON array
    changed_at  BIGINT NOT NULL,            -- event time of the description kept
    deleted     INTEGER NOT NULL
);

-- One row per user and movie.
CREATE TABLE interactions (
    user_id         TEXT NOT NULL,
    movie_id        TEXT NOT NULL,
    booked          INTEGER NOT NULL,
    watched_permille BIGINT,                -- how far they watched, 0 to 1000; NULL: never played
    rating          BIGINT,                 -- 1 to 10; NULL: none (or deleted)
    rating_review   TEXT NOT NULL,          -- the review it is from (UUID v7; the nil UUID: none)
    rating_version  BIGINT NOT NULL,        -- that review's version
    last_at         BIGINT NOT NULL,
    PRIMARY KEY (user_id, movie_id)
);

CREATE TABLE showtimes (
    showtime_id  TEXT PRIMARY KEY,
    movie_id     TEXT NOT NULL,
    theater_id   TEXT NOT NULL,
    starts_at    BIGINT NOT NULL,
    cancelled    INTEGER NOT NULL
);

-- Which showtime each booking was for: a user's theaters are those of their bookings.
CREATE TABLE bookings (
    booking_id   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    showtime_id  TEXT NOT NULL
);
CREATE INDEX bookings_user ON bookings (user_id);
