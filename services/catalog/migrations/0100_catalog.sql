-- catalog's own tables (versions 100+; the event tables are 1-99).

-- The fixed list of genres (API.md); movies refer to them by slug.
CREATE TABLE genres (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
INSERT INTO genres (slug, name) VALUES
    ('action', 'Action'), ('adventure', 'Adventure'), ('animation', 'Animation'),
    ('comedy', 'Comedy'), ('crime', 'Crime'), ('documentary', 'Documentary'),
    ('drama', 'Drama'), ('family', 'Family'), ('fantasy', 'Fantasy'),
    ('history', 'History'), ('horror', 'Horror'), ('music', 'Music'),
    ('mystery', 'Mystery'), ('romance', 'Romance'), ('science-fiction', 'Science Fiction'),
    ('thriller', 'Thriller'), ('war', 'War'), ('western', 'Western');

CREATE TABLE movies (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    title_lower     TEXT NOT NULL,           -- for sorting and filtering without case
    synopsis        TEXT NOT NULL,
    runtime_minutes INTEGER NOT NULL,
    release_date    TEXT,                    -- YYYY-MM-DD
    release_year    INTEGER,
    director        TEXT NOT NULL,
    cast_names      TEXT NOT NULL,           -- JSON array of names
    genres          TEXT NOT NULL,           -- JSON array of slugs, as read (movie_genres filters)
    poster_url      TEXT,
    featured        INTEGER NOT NULL DEFAULT 0,
    streamable      INTEGER NOT NULL DEFAULT 0,
    imdb_id         TEXT,
    rating_sum      BIGINT NOT NULL DEFAULT 0,
    rating_count    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT,                  -- soft delete: gone from the API, kept for history
    CONSTRAINT movies_imdb_id_key UNIQUE (imdb_id)
);
CREATE INDEX movies_listing ON movies (deleted_at, title_lower);
CREATE INDEX movies_year ON movies (release_year);

CREATE TABLE movie_genres (
    movie_id   TEXT NOT NULL REFERENCES movies (id),
    genre_slug TEXT NOT NULL REFERENCES genres (slug),
    PRIMARY KEY (movie_id, genre_slug)
);
CREATE INDEX movie_genres_genre ON movie_genres (genre_slug);

-- The rating each review gives, so an update or deletion adjusts the average exactly once and in
-- any order: a deleted review stays as a tombstone that a late "posted" cannot revive.
CREATE TABLE movie_ratings (
    review_id TEXT PRIMARY KEY,
    movie_id  TEXT NOT NULL,
    rating    INTEGER NOT NULL,
    deleted   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX movie_ratings_movie ON movie_ratings (movie_id);
