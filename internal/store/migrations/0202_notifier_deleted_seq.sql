-- The seq of a subscription's latest deletion, kept when the id is added
-- again: the rows derived before it belong to the deleted subscription and
-- go to the dead-letter table, even when the notifier never saw it deleted
-- (added again within one of its scans, or while it was down).
ALTER TABLE notifier_subscriptions ADD COLUMN IF NOT EXISTS deleted_seq BIGINT NOT NULL DEFAULT 0;
UPDATE notifier_subscriptions SET deleted_seq = seq WHERE deleted AND deleted_seq = 0;
