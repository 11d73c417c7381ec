-- Set when a pay request is about to charge the card: a hold that expires with this set may
-- have been paid by a request that died before confirming, so the sweeper asks payments and
-- refunds what it finds before ending the booking.
ALTER TABLE bookings ADD COLUMN charging_at BIGINT;
