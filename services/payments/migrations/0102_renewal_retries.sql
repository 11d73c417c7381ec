-- A declined renewal leaves a subscription past_due; the renewal worker tries the card again a
-- day later (retry_at), up to three times in all, then ends it. failed_renewals counts the
-- declines of the period that is due.
ALTER TABLE subscriptions ADD COLUMN failed_renewals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN retry_at BIGINT NOT NULL DEFAULT 0;
