-- Who is working on a key: the claim's own random id. Only the owner may record the answer or
-- give the key back, so a request that was taken over (it stalled past the stale time) cannot
-- overwrite the answer of the one that took over.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';
