-- reviews' own tables (versions 100+; the event tables are 1-99).

CREATE TABLE reviews (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    movie_id    TEXT NOT NULL,
    rating      BIGINT NOT NULL,            -- 1 to 10
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    verified    INTEGER NOT NULL,           -- the author booked or played the movie
    version     BIGINT NOT NULL,            -- 1 when posted, +1 on each change (and the delete)
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);
-- One live review per user and movie: the index decides, also between replicas.
CREATE UNIQUE INDEX reviews_one_per_user ON reviews (user_id, movie_id) WHERE deleted_at IS NULL;
CREATE INDEX reviews_movie ON reviews (movie_id, created_at);
CREATE INDEX reviews_user ON reviews (user_id, created_at);

-- Who saw what, from booking.confirmed and playback.started: what makes a review "verified".
CREATE TABLE watched (
    user_id   TEXT NOT NULL,
    movie_id  TEXT NOT NULL,
    how       TEXT NOT NULL,                -- booking | playback (the first that came)
    at        BIGINT NOT NULL,
    PRIMARY KEY (user_id, movie_id)
);
