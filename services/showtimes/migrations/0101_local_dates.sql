-- A showtime's zone (its theater's) and the day it starts on there, so `GET /showtimes?date=`
-- means the theater's day, not UTC's. The zone is copied from the theater, as movie_title is
-- from the catalog; local_date of rows from before this version is filled in by the service
-- at start (SQL has no time-zone database here), see store::fill_local_dates.
ALTER TABLE showtimes ADD COLUMN timezone TEXT;
ALTER TABLE showtimes ADD COLUMN local_date TEXT;
UPDATE showtimes SET timezone = (SELECT t.timezone FROM theaters t WHERE t.id = showtimes.theater_id);
CREATE INDEX showtimes_local_date ON showtimes (local_date, starts_at);
