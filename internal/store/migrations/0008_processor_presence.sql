-- Running processors, each refreshing its row every few seconds and
-- deleting it when it stops, so that a tool which must not run beside them
-- (causeway snapshots prune-stale) can tell whether any still runs.
-- instance tells apart two runs of one node id (an overlapping restart):
-- a run deletes only its own row.
CREATE TABLE IF NOT EXISTS processor_presence (
    node_id    VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    instance   CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    started_at DATETIME(6) NOT NULL,
    seen_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (node_id)
) ENGINE=InnoDB;
