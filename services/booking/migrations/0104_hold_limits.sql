-- One row per user who has held seats: a hold locks its user's row first, so one user's holds
-- take turns and the cap on seats held at once (MARQUEE_MAX_HELD_SEATS*) cannot be outrun by
-- sending many holds in parallel.
CREATE TABLE holders (
    user_id    TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL
);
