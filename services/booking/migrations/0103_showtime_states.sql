-- What booking knows of a showtime's fate, for the race between a hold or a pay and the
-- showtime's cancellation. Holds and confirmations read the row under a shared lock (PostgreSQL
-- FOR SHARE; SQLite has one writer at a time); the `showtime.cancelled` consumer sets it under
-- an exclusive one before it ends the showtime's bookings. So either the hold or pay committed
-- first and the consumer finds its booking, or the consumer did and the hold or pay sees it.
CREATE TABLE showtime_states (
    showtime_id TEXT PRIMARY KEY,
    cancelled   INTEGER NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL
);
