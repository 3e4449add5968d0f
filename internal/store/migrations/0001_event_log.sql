-- The one ordered log (invariant 2 of DESIGN.md).
--
-- events is partitioned by day on recorded_at: retention drops whole
-- partitions (store.Log.DropBefore) instead of deleting rows, and "the prefix
-- at time T" prunes to the partitions up to T. The table starts with the
-- catch-all partition pmax only; store.Log.MaintainPartitions splits day
-- partitions out of it ahead of time. MariaDB refuses a UNIQUE key without the
-- partition column, so event_id has a plain index: dedup is checked under the
-- log_counter row lock (see the package doc).
CREATE TABLE IF NOT EXISTS events (
    seq         BIGINT       NOT NULL,
    recorded_at DATETIME(6)  NOT NULL,
    event_id    VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    source      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind        VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    body        MEDIUMBLOB   NOT NULL,
    PRIMARY KEY (seq, recorded_at),
    KEY events_event_id (event_id),
    KEY events_recorded_at (recorded_at)
) ENGINE=InnoDB
  PARTITION BY RANGE COLUMNS (recorded_at) (
    PARTITION pmax VALUES LESS THAN (MAXVALUE)
);

-- The single counter row. Every writer of events locks it first
-- (SELECT ... FOR UPDATE), so writers are serialised and commit order equals
-- seq order. last_recorded_at keeps recorded_at non-decreasing along seq.
CREATE TABLE IF NOT EXISTS log_counter (
    id               TINYINT     NOT NULL,
    last_seq         BIGINT      NOT NULL,
    last_recorded_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT log_counter_single_row CHECK (id = 1)
) ENGINE=InnoDB;

INSERT IGNORE INTO log_counter (id, last_seq, last_recorded_at)
VALUES (1, 0, '1970-01-01 00:00:00.000000');
