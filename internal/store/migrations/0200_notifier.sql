-- Webhook notifications (owned by package notifier; invariant 5 of DESIGN.md).
--
-- notifier_subscriptions mirrors the subscriptions in force as of the log
-- (subscription.put/delete events), written by the leader with the outbox
-- rows in one fenced transaction; the notifier reads URLs, headers and
-- policies from it. seq is the event that set the row: a write never moves
-- a row back to an older seq.
CREATE TABLE IF NOT EXISTS notifier_subscriptions (
    id         VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    seq        BIGINT      NOT NULL,
    deleted    BOOLEAN     NOT NULL DEFAULT FALSE,
    spec       MEDIUMBLOB  NULL,
    term       BIGINT      NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;

-- notifier_outbox holds one row per (subscription, alarm transition), in
-- log order: (seq, ord) with ord the transition's index among the
-- subscriber's rows of that seq. The key is derived from the log, so a new
-- leader writing the same seq again is ignored (INSERT IGNORE). webhook_id is
-- the Standard Webhooks id, stable across retries. Rows behind a
-- subscriber's cursor are delivered and are deleted by the notifier.
CREATE TABLE IF NOT EXISTS notifier_outbox (
    subscription_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    seq             BIGINT      NOT NULL,
    ord             INT         NOT NULL,
    webhook_id      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    recorded_at     DATETIME(6) NOT NULL,
    queued_at       DATETIME(6) NOT NULL,
    term            BIGINT      NOT NULL,
    payload         MEDIUMBLOB  NOT NULL,
    PRIMARY KEY (subscription_id, seq, ord),
    UNIQUE KEY notifier_outbox_webhook_id (webhook_id)
) ENGINE=InnoDB;

-- notifier_outbox_head is the last seq whose outbox rows are written (one
-- row, name 'outbox'): a new leader writes the rows of the seqs after it.
CREATE TABLE IF NOT EXISTS notifier_outbox_head (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    seq        BIGINT      NOT NULL,
    term       BIGINT      NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB;

-- notifier_cursors: per subscriber, the next row to deliver (next_seq,
-- next_ord), the lease that lets one notifier instance at a time drain it
-- (lease_expires in the database's UTC clock), and what `webhooks status`
-- shows. Updated once per delivered batch or state change, never per row.
CREATE TABLE IF NOT EXISTS notifier_cursors (
    subscription_id  VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    next_seq         BIGINT        NOT NULL DEFAULT 0,
    next_ord         INT           NOT NULL DEFAULT 0,
    lease_owner      VARCHAR(255)  NOT NULL DEFAULT '',
    lease_expires    DATETIME(6)   NOT NULL DEFAULT '1970-01-01 00:00:00',
    delivered        BIGINT        NOT NULL DEFAULT 0,
    dead_lettered    BIGINT        NOT NULL DEFAULT 0,
    backlog          BIGINT        NOT NULL DEFAULT 0,
    oldest_queued_at DATETIME(6)   NULL,
    failing_since    DATETIME(6)   NULL,
    last_error       VARCHAR(1024) NOT NULL DEFAULT '',
    last_success_at  DATETIME(6)   NULL,
    updated_at       DATETIME(6)   NULL,
    PRIMARY KEY (subscription_id)
) ENGINE=InnoDB;

-- notifier_dead_letters: rows that expired (max age), were pushed out by
-- the dead_letter backlog policy, or whose subscription was deleted while
-- they were pending, with the reason. `causeway webhooks redrive` sends them
-- again (same webhook_id) and deletes them once delivered.
CREATE TABLE IF NOT EXISTS notifier_dead_letters (
    id              BIGINT        NOT NULL AUTO_INCREMENT,
    subscription_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    seq             BIGINT        NOT NULL,
    ord             INT           NOT NULL,
    webhook_id      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    recorded_at     DATETIME(6)   NOT NULL,
    queued_at       DATETIME(6)   NOT NULL,
    payload         MEDIUMBLOB    NOT NULL,
    reason          VARCHAR(1024) NOT NULL,
    dead_at         DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY notifier_dead_letters_webhook_id (webhook_id),
    KEY notifier_dead_letters_sub (subscription_id, id)
) ENGINE=InnoDB;
