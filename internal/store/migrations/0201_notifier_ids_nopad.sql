-- utf8mb4_bin pads with spaces when it compares: subscriptions 'ops' and
-- 'ops ', two in the registry, shared one row, one cursor and the primary
-- keys of their outbox rows here, and INSERT IGNORE dropped one side's
-- rows. utf8mb4_nopad_bin compares every byte.
ALTER TABLE notifier_subscriptions
    MODIFY id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
ALTER TABLE notifier_outbox
    MODIFY subscription_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
ALTER TABLE notifier_cursors
    MODIFY subscription_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
ALTER TABLE notifier_dead_letters
    MODIFY subscription_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
