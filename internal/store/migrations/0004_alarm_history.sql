-- Alarm history (owned by package history), written by the leader in fenced
-- transactions (store.CheckFence) so that `causeway alarms history` and
-- `alarms stats` answer without replaying the log.
--
-- alarm_history has one row per alarm occurrence: from the record that raised
-- the alarm (raised_seq) to the one that cleared it (cleared_seq, NULL while
-- it is active). id is derived from the log (alarm_key and raised_seq), so a
-- new leader writing the same seqs again is ignored (INSERT IGNORE), and the
-- clearing UPDATE only touches the open occurrence raised before it.
-- *_at are recorded_at of the record (the log's time); *_event_at the
-- alarm's own sample time as its source reported it.
CREATE TABLE IF NOT EXISTS alarm_history (
    id               VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    alarm_key        VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    vitrage_id       BIGINT       NOT NULL,
    alarm_type       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    alarm_id         VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    name             VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    resource_key     VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    resource_type    VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    resource_id      VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    resource_name    VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    deduced          BOOLEAN      NOT NULL,
    raised_severity  VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    severity         VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    severity_seq     BIGINT       NOT NULL,
    raised_seq       BIGINT       NOT NULL,
    raised_at        DATETIME(6)  NOT NULL,
    raised_event_at  DATETIME(6)  NULL,
    cleared_seq      BIGINT       NULL,
    cleared_at       DATETIME(6)  NULL,
    cleared_event_at DATETIME(6)  NULL,
    term             BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY alarm_history_key (alarm_key(191), raised_seq),
    KEY alarm_history_raised_at (raised_at),
    KEY alarm_history_cleared_at (cleared_at),
    KEY alarm_history_raised_seq (raised_seq)
) ENGINE=InnoDB;

-- alarm_severity_changes: one row per change of an active alarm's severity,
-- keyed by the alarm and the seq of the record that changed it.
CREATE TABLE IF NOT EXISTS alarm_severity_changes (
    id            VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    alarm_key     VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    seq           BIGINT       NOT NULL,
    recorded_at   DATETIME(6)  NOT NULL,
    prev_severity VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    severity      VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    term          BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY alarm_severity_changes_key (alarm_key(191), seq),
    KEY alarm_severity_changes_recorded_at (recorded_at)
) ENGINE=InnoDB;

-- alarm_causal_links: one row per period a `causes` edge held between two
-- alarms, from start_seq to end_seq (NULL while it holds); id is derived
-- from the two alarm keys and start_seq.
CREATE TABLE IF NOT EXISTS alarm_causal_links (
    id          VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    from_key    VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    to_key      VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    start_seq   BIGINT       NOT NULL,
    start_at    DATETIME(6)  NOT NULL,
    end_seq     BIGINT       NULL,
    end_at      DATETIME(6)  NULL,
    term        BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY alarm_causal_links_from (from_key(191), start_seq),
    KEY alarm_causal_links_to (to_key(191), start_seq),
    KEY alarm_causal_links_end_at (end_at)
) ENGINE=InnoDB;

-- alarm_history_head is the last seq whose history is written (one row,
-- name 'history'): a new leader writes the history of the seqs after it.
CREATE TABLE IF NOT EXISTS alarm_history_head (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    seq        BIGINT      NOT NULL,
    term       BIGINT      NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB;
