-- Each review's version, from reviews' events: a rating (or its deletion) is applied only over
-- an older version, so an event that arrives late never undoes a newer one.
ALTER TABLE movie_ratings ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
