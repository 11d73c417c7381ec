-- One row per thing paid for (`booking:<id>`, `subscription:<id>:<period start>`). A charge
-- locks its reference's row first, so captures for one reference take turns even across
-- replicas, and:
-- - kept_payment_id names the one capture the reference keeps; a second capture while that one
--   still holds money is refunded at once (a duplicate: a retry with another card after a slow
--   first charge, two renewal workers charging one period);
-- - closed_at fences the reference: once closed (its booking ended), everything captured is
--   refunded and no new charge is accepted, so a charge that arrives late cannot stay captured.
CREATE TABLE payment_references (
    reference       TEXT PRIMARY KEY,
    kept_payment_id TEXT,
    closed_at       BIGINT,
    closed_reason   TEXT,
    updated_at      BIGINT NOT NULL
);
INSERT INTO payment_references (reference, kept_payment_id, updated_at)
    SELECT reference, MIN(id), MAX(created_at) FROM payments WHERE status = 'succeeded' GROUP BY reference;

-- Why a refund was made: requested, duplicate-capture, or the reason its reference was closed.
ALTER TABLE refunds ADD COLUMN reason TEXT NOT NULL DEFAULT 'requested';
