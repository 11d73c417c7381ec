-- streaming's own tables (versions 100+; the event tables are 1-99).

-- The media of a movie: the objects under `media/<movie_id>/<version>/` in the object store.
-- A new upload is a new version; the row points at the one that is served.
CREATE TABLE media (
    movie_id          TEXT PRIMARY KEY,
    version           TEXT NOT NULL,
    kind              TEXT NOT NULL,          -- file | hls
    entry             TEXT NOT NULL,          -- the object a stream URL opens: media.mp4, index.m3u8
    content_type      TEXT NOT NULL,          -- of the upload
    size_bytes        BIGINT NOT NULL,
    sha256            TEXT NOT NULL,
    duration_seconds  BIGINT,                 -- when the media says (MP4 header, HLS playlist)
    uploaded_by       TEXT NOT NULL,
    uploaded_at       BIGINT NOT NULL
);

-- Every object of a media version, so a range request needs no round trip to the store
-- before it starts streaming.
CREATE TABLE media_objects (
    movie_id      TEXT NOT NULL,
    version       TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    etag          TEXT NOT NULL,              -- quoted, strong: the content's SHA-256
    PRIMARY KEY (movie_id, version, name)
);

-- Playback sessions. While a session runs it holds a stream slot (0 .. max_streams-1) of its
-- user; the unique index is what stops two starts anywhere from taking the same slot, so a
-- plan's limit holds across replicas. Ending a session sets slot to NULL (NULLs never collide).
CREATE TABLE playback_sessions (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    movie_id          TEXT NOT NULL,
    slot              BIGINT,
    status            TEXT NOT NULL,          -- active | stopped | expired | revoked
    max_streams       BIGINT NOT NULL,        -- the plan's, when it was last asked
    entitled_until    BIGINT NOT NULL,        -- payments' answer holds until then (epoch ms)
    recheck           INTEGER NOT NULL DEFAULT 0,  -- a subscription event: ask payments again
    position_seconds  BIGINT NOT NULL,
    duration_seconds  BIGINT NOT NULL,
    url_expires_at    BIGINT NOT NULL,
    started_at        BIGINT NOT NULL,
    last_seen_at      BIGINT NOT NULL,        -- the start or the last heartbeat
    ended_at          BIGINT,
    end_reason        TEXT
);
CREATE UNIQUE INDEX playback_slots ON playback_sessions (user_id, slot);
CREATE INDEX playback_idle ON playback_sessions (last_seen_at) WHERE slot IS NOT NULL;

-- Where each user got to in each movie ("continue watching").
CREATE TABLE watch_progress (
    user_id           TEXT NOT NULL,
    movie_id          TEXT NOT NULL,
    position_seconds  BIGINT NOT NULL,
    duration_seconds  BIGINT NOT NULL,
    completed         INTEGER NOT NULL,
    last_watched_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, movie_id)
);
CREATE INDEX watch_progress_recent ON watch_progress (user_id, last_watched_at);

CREATE TABLE watchlist (
    user_id   TEXT NOT NULL,
    movie_id  TEXT NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, movie_id)
);
CREATE INDEX watchlist_recent ON watchlist (user_id, added_at);
