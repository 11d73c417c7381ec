-- A session plays the media version it started with. A version replaced while sessions play it
-- is kept, listed here, until none does; the sweeper then deletes its objects.
ALTER TABLE playback_sessions ADD COLUMN media_version TEXT;
CREATE TABLE media_retired (
    movie_id    TEXT NOT NULL,
    version     TEXT NOT NULL,
    retired_at  BIGINT NOT NULL,
    PRIMARY KEY (movie_id, version)
);

-- One row per user who has started playback. A start locks it first, so one user's starts take
-- turns (on every replica) and the count of their running sessions is exact; the unique
-- (user, slot) index stays as a second guard.
CREATE TABLE playback_users (
    user_id  TEXT PRIMARY KEY,
    starts   BIGINT NOT NULL
);
