-- The booking state machine (domain::Status): `charging` is a status of its own, and each pay
-- attempt has a number, so a pay request that was taken over (it died, a retry went on) cannot
-- confirm with its stale view.
ALTER TABLE bookings ADD COLUMN charge_attempt INTEGER NOT NULL DEFAULT 0;
CREATE INDEX bookings_charging ON bookings (charging_at) WHERE status = 'charging';
